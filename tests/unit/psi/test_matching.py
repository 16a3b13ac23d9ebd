"""Set operations on byte keys, checked against Python sets and sorted()."""

from __future__ import annotations

import numpy as np

from veil.psi import matching


def _keys(rng: np.random.Generator, n: int, width: int, alphabet: int = 256) -> np.ndarray:
    return rng.integers(0, alphabet, size=(n, width), dtype=np.uint8)


def test_sort_order_is_bytewise(rng: np.random.Generator) -> None:
    for width in (16, 12, 32):
        k = _keys(rng, 500, width, alphabet=3)  # many shared prefixes
        order = matching.sort_order(k)
        assert [bytes(r) for r in k[order]] == sorted(bytes(r) for r in k)


def test_first_occurrences_and_duplicates(rng: np.random.Generator) -> None:
    k = _keys(rng, 400, 16, alphabet=2)
    k[:, 2:] = 0  # few distinct keys, so many duplicates
    k[::7, 5] = 1
    seen: set[bytes] = set()
    expect = []
    for r in k:
        expect.append(bytes(r) not in seen)
        seen.add(bytes(r))
    assert matching.first_occurrences(k).tolist() == expect
    assert matching.duplicate_rows(k).tolist() == [i for i, e in enumerate(expect) if not e]
    assert matching.first_occurrences(k[:1]).tolist() == [True]
    assert matching.first_occurrences(k[:0]).tolist() == []


def test_match_against_sets(rng: np.random.Generator) -> None:
    pool = np.unique(_keys(rng, 3000, 16, alphabet=4), axis=0)
    for na, nb, shift in [(100, 80, 50), (0, 10, 0), (10, 0, 0), (1, 1, 0), (200, 200, 0)]:
        a = pool[:na]
        b = pool[shift : shift + nb]
        ma, mb = matching.match(a, b)
        sb, sa = {bytes(r) for r in b}, {bytes(r) for r in a}
        assert ma.tolist() == [bytes(r) in sb for r in a]
        assert mb.tolist() == [bytes(r) in sa for r in b]
        assert matching.isin(a, b).tolist() == ma.tolist()


def test_fast_paths_against_sets_and_full_sort(rng: np.random.Generator) -> None:
    """Pseudorandom keys take the prefix fast paths; engineered prefix ties take the fallbacks."""
    pool = _keys(rng, 4000, 16)
    a, b = pool[:2500], pool[1500:]
    ma, mb = matching.match(a, b)
    assert ma.tolist() == [i >= 1500 for i in range(2500)]
    assert mb.tolist() == [i < 1000 for i in range(2500)]
    assert np.array_equal(ma, matching._match_full(a, b)[0])
    dup = np.concatenate([pool[:300], pool[100:150], pool[:10]])
    assert np.array_equal(matching.first_occurrences(dup), matching._first_occurrences_full(dup))
    assert matching.duplicate_rows(dup).tolist() == list(range(300, 360))
    tie = pool[:6].copy()
    tie[:, :8] = 7  # same 8-byte prefix, different keys
    tie[4] = tie[1]
    assert matching.first_occurrences(tie).tolist() == [True] * 4 + [False, True]
    two = pool[:4].copy()
    two[1, :8] = two[0, :8]  # one tie of two different keys: fast path, no duplicate
    assert matching.first_occurrences(two).all()
    ma, mb = matching.match(tie[[0, 2, 3]], tie[[0, 1, 5]])
    assert ma.tolist() == [True, False, False] and mb.tolist() == [True, False, False]
    ma, mb = matching.match(two[:2], two[1:])
    assert ma.tolist() == [False, True] and mb.tolist() == [True, False, False]

"""intersect_ids over the memory link (one thread per party): exactness against Python sets."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from psi_harness import RecordingLink, run_ok, run_parties

from veil.errors import ConfigError, DataError, PeerError
from veil.psi import PsiOptions, intersect_ids, run_psi
from veil.psi.ids import digest_ids
from veil.psi.options import Backend
from veil.transport.base import Link


def _psi(sets: dict[str, list[str]], options: PsiOptions | None = None) -> dict[str, list[str]]:
    parties = list(sets)

    def fn(link: Link, p: str) -> np.ndarray:
        return intersect_ids(link, "t", p, parties, sets[p], options)

    rows = run_ok(parties, fn)
    return {p: [sets[p][i] for i in rows[p]] for p in parties}


def _check(sets: dict[str, list[str]], options: PsiOptions | None = None) -> None:
    got = _psi(sets, options)
    expect = set.intersection(*(set(s) for s in sets.values()))
    first = next(iter(got.values()))
    assert len(first) == len(expect) and set(first) == expect
    assert all(g == first for g in got.values()), "parties disagree on the common order"


def _ids(rng: np.random.Generator, universe: int, n: int) -> list[str]:
    return [f"cust-{i:07d}" for i in rng.permutation(universe)[:n]]


@pytest.mark.parametrize(
    ("n_a", "n_b", "universe"),
    [(1, 1, 1), (1, 500, 500), (300, 300, 450), (2000, 700, 2500), (1000, 1000, 1000)],
)
def test_two_parties_exact(n_a: int, n_b: int, universe: int, rng: np.random.Generator) -> None:
    _check({"alice": _ids(rng, universe, n_a), "bob": _ids(rng, universe, n_b)})


def test_no_overlap_and_full_overlap() -> None:
    a = [f"a{i}" for i in range(200)]
    got = _psi({"alice": a, "bob": [f"b{i}" for i in range(150)]})
    assert got == {"alice": [], "bob": []}
    _check({"alice": a, "bob": list(reversed(a))})


def test_chunking_does_not_change_the_result(rng: np.random.Generator) -> None:
    sets = {"alice": _ids(rng, 900, 600), "bob": _ids(rng, 900, 500)}
    _check(sets, PsiOptions(chunk_rows=37))
    _check(sets, PsiOptions(chunk_rows=37, workers=2, parallel_min_rows=10))
    _check(
        sets, PsiOptions(chunk_rows=37, workers=2, parallel_min_rows=10, backend=Backend.OPENSSL)
    )


def test_parties_may_use_different_backends(rng: np.random.Generator) -> None:
    sets = {"alice": _ids(rng, 300, 200), "bob": _ids(rng, 300, 150)}
    parties = list(sets)

    def fn(link: Link, p: str) -> np.ndarray:
        backend = Backend.OPENSSL if p == "alice" else Backend.AUTO
        return intersect_ids(link, "t", p, parties, sets[p], PsiOptions(backend=backend))

    rows = run_ok(parties, fn)
    got = {p: [sets[p][i] for i in rows[p]] for p in parties}
    assert got["alice"] == got["bob"] and set(got["bob"]) == set(sets["alice"]) & set(sets["bob"])


@pytest.mark.parametrize("n_parties", [3, 4])
def test_n_parties_exact(n_parties: int, rng: np.random.Generator) -> None:
    sets = {f"p{k}": _ids(rng, 800, 300 + 100 * k) for k in range(n_parties)}
    _check(sets, PsiOptions(chunk_rows=128))


def test_receiver_only(rng: np.random.Generator) -> None:
    sets = {"bank": _ids(rng, 500, 300), "ext1": _ids(rng, 500, 250), "ext2": _ids(rng, 500, 400)}
    parties = list(sets)
    opts = PsiOptions(receiver_only=True)

    def fn(link: Link, p: str) -> object:
        return run_psi(link, "t", p, parties, digest_ids(sets[p], p, opts), opts)

    out = run_ok(parties, fn)
    assert out["ext1"].rows is None and out["ext2"].rows is None
    assert out["ext1"].n_intersection is None
    expect = set(sets["bank"]) & set(sets["ext1"]) & set(sets["ext2"])
    assert {sets["bank"][i] for i in out["bank"].rows} == expect
    assert out["bank"].n_intersection == len(expect)


def test_normalisation() -> None:
    a = ["  Alice", "BOB ", "carol", "Dave"]
    b = ["alice", "bob", "CAROL  ", "eve"]
    assert _psi({"a": a, "b": b}, PsiOptions(strip=True, casefold=False))["a"] == []
    got = _psi({"a": a, "b": b}, PsiOptions(strip=True, casefold=True))
    assert sorted(got["a"]) == ["  Alice", "BOB ", "carol"]
    assert [s.strip().casefold() for s in got["a"]] == [s.strip().casefold() for s in got["b"]]
    got = _psi({"a": ["x ", "y"], "b": ["x", "y"]}, PsiOptions(strip=False))
    assert got["a"] == ["y"]


def test_duplicates_error_or_dedupe() -> None:
    a = ["k1", "k2", "k1", "k3", "k1 "]
    with pytest.raises(DataError, match=r"party 'a'.*2 duplicate id.*'k1'.*dedupe"):
        digest_ids(a, "a", PsiOptions())
    got = _psi({"a": a, "b": ["k1", "k3"]}, PsiOptions(dedupe=True))
    assert sorted(got["a"]) == ["k1", "k3"]


def test_bad_inputs_name_the_party() -> None:
    with pytest.raises(DataError, match=r"party 'a'.*no rows"):
        digest_ids([], "a", PsiOptions())
    with pytest.raises(
        DataError, match=r"party 'a'.*2 row\(s\) have an empty or missing id.*\[1, 2\]"
    ):
        digest_ids(["x", "  ", None], "a", PsiOptions())  # type: ignore[list-item]


def test_options_mismatch_fails_every_party() -> None:
    parties = ["a", "b"]

    def fn(link: Link, p: str) -> np.ndarray:
        return intersect_ids(link, "t", p, parties, ["x", "y"], PsiOptions(casefold=p == "b"))

    _, errors = run_parties(parties, fn)
    assert isinstance(errors["a"], ConfigError) and "casefold" in str(errors["a"])
    assert isinstance(errors["b"], PeerError)


def test_bad_party_lists() -> None:
    def fn(link: Link, p: str) -> np.ndarray:
        return intersect_ids(link, "t", p, ["a", "a"], ["x"])

    _, errors = run_parties(["a", "b"], fn)
    assert isinstance(errors["a"], ConfigError)

    def fn2(link: Link, p: str) -> np.ndarray:
        return intersect_ids(link, "t", p, ["a", "zed"], ["x"])

    _, errors = run_parties(["a", "b"], fn2)
    assert isinstance(errors["a"], ConfigError) and "zed" in str(errors["a"])


def test_numeric_ids_and_missing_values() -> None:
    got = _psi({"a": np.array([1, 2, 3, 40]), "b": ["2", "3", "4", "40"]})  # type: ignore[dict-item]
    assert sorted(got["b"]) == ["2", "3", "40"]
    with pytest.raises(DataError, match=r"1 row\(s\) have an empty or missing id .*\[1\]"):
        digest_ids([1.5, float("nan")], "a", PsiOptions())  # type: ignore[list-item]


def test_unicode_ids(rng: np.random.Generator) -> None:
    alphabet = ["ß", "é", "Σ", "中", "a", "Z", " ", "🙂", "\u00a0"]
    ids = {"".join(rng.choice(alphabet, size=rng.integers(1, 5))) for _ in range(400)}
    ids = {s for s in ids if s.strip()}
    pool = sorted(ids)
    a = [pool[i] for i in rng.permutation(len(pool))[: len(pool) // 2 + 20]]
    b = [pool[i] for i in rng.permutation(len(pool))[: len(pool) // 2 + 20]]
    opts = PsiOptions(strip=False)
    got = _psi({"a": a, "b": b}, opts)
    assert set(got["a"]) == set(a) & set(b) and got["a"] == got["b"]
    fold = PsiOptions(casefold=True, dedupe=True)
    got = _psi({"a": ["STRASSE", "x"], "b": ["straße", "y"]}, fold)
    assert got == {"a": ["STRASSE"], "b": ["straße"]}


@pytest.mark.slow
@pytest.mark.parametrize("backend", [Backend.AUTO, Backend.OPENSSL])
def test_two_parties_large_with_workers(backend: Backend) -> None:
    rng = np.random.default_rng(7)
    sets = {"alice": _ids(rng, 150_000, 100_000), "bob": _ids(rng, 150_000, 90_000)}
    _check(sets, PsiOptions(workers=2, backend=backend))


def test_deviating_peer_with_small_order_points_is_named() -> None:
    """A follower that sends small-order points makes the leader fail naming it."""
    parties = ["lead", "evil"]

    class Evil(RecordingLink):
        def send_array(self, to: str, key: str, arr: np.ndarray) -> None:
            if key.endswith("/points"):
                arr = np.zeros_like(arr)  # u = 0: small order
            super().send_array(to, key, arr)

    def fn(link: Link, p: str) -> np.ndarray:
        if p == "evil":
            link = Evil(link, [], threading.Lock())
        return intersect_ids(link, "t", p, parties, [f"x{i}" for i in range(20)])

    _, errors = run_parties(parties, fn)
    assert isinstance(errors["lead"], PeerError) and "'evil'" in str(errors["lead"])
    assert "small order" in str(errors["lead"])

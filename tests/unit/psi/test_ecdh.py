"""The state machines piped by hand, without any link (sans-I/O)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from veil.errors import ConfigError, PeerError, ProtocolError
from veil.psi.ecdh import Follower, Leader, common_order
from veil.psi.messages import Hello, Points, Result, Welcome
from veil.psi.options import PsiOptions
from veil.psi.parallel import Masker


def _digests(ids: list[str]) -> np.ndarray:
    raw = b"".join(hashlib.blake2b(s.encode(), digest_size=16).digest() for s in ids)
    return np.frombuffer(raw, dtype=np.uint8).reshape(-1, 16).copy()


def _pipe(sets: list[list[str]], options: PsiOptions, chunk: int = 7) -> list[np.ndarray | None]:
    """Run a leader (sets[0]) and followers by passing encoded messages around by hand."""
    names = tuple(f"p{i}" for i in range(len(sets)))
    agreed = options.agreed(names)
    m = Masker()
    lead = Leader(names[0], names[1:], _digests(sets[0]), agreed, m, chunk)
    fols = [
        Follower(n, names[0], _digests(s), agreed, m, chunk)
        for n, s in zip(names[1:], sets[1:], strict=True)
    ]
    for f in fols:
        lead.on_hello(f.party, Hello.decode(f.hello().encode(), f.party))
    w = lead.welcome().encode()
    for f in fols:
        f.on_welcome(Welcome.decode(w, names[0]))
    for chunk_msg in lead.own_points():
        for f in fols:
            reply = f.on_leader_points(Points.decode(chunk_msg.encode(), 32, names[0], 10**6))
            lead.on_answer(f.party, Points.decode(reply.encode(), 16, f.party, 10**6))
    for f in fols:
        for c in f.own_points():
            lead.on_follower_points(f.party, c)
    rows, results = lead.finish()
    out: list[np.ndarray | None] = [rows]
    for f in fols:
        if options.receiver_only:
            assert f.party not in results
            out.append(None)
        else:
            res = Result.decode(results[f.party].encode(), f.n, names[0])
            out.append(f.on_result(res))
    return out


@pytest.mark.parametrize("n_parties", [2, 3, 4])
def test_exact_and_same_order(n_parties: int, rng: np.random.Generator) -> None:
    universe = [f"u{i}" for i in range(60)]
    sets = [[universe[i] for i in rng.permutation(60)[: 30 + 5 * k]] for k in range(n_parties)]
    out = _pipe(sets, PsiOptions())
    expect = set.intersection(*(set(s) for s in sets))
    got = [[s[i] for i in rows] for s, rows in zip(sets, out, strict=True)]
    assert set(got[0]) == expect and len(got[0]) == len(expect)
    assert all(g == got[0] for g in got)


def test_receiver_only_followers_get_nothing() -> None:
    out = _pipe([["a", "b", "c"], ["c", "d", "a"]], PsiOptions(receiver_only=True))
    assert out[1] is None
    assert sorted(["a", "b", "c"][i] for i in out[0]) == ["a", "c"]


def test_common_order_is_independent_of_row_order() -> None:
    d = _digests([f"x{i}" for i in range(50)])
    perm = np.random.default_rng(3).permutation(50)
    o1 = d[common_order(b"s" * 32, d)]
    o2 = d[perm][common_order(b"s" * 32, d[perm])]
    assert np.array_equal(o1, o2)


def test_options_must_agree() -> None:
    names = ("L", "F")
    m = Masker()
    lead = Leader("L", ["F"], _digests(["a"]), PsiOptions().agreed(names), m)
    fol = Follower("F", "L", _digests(["a"]), PsiOptions(casefold=True).agreed(names), m)
    with pytest.raises(ConfigError, match=r"party 'F' .*casefold"):
        lead.on_hello("F", fol.hello())


def test_misuse_and_bad_messages() -> None:
    names = ("L", "F")
    agreed = PsiOptions().agreed(names)
    m = Masker()
    lead = Leader("L", ["F"], _digests(["a", "b"]), agreed, m)
    with pytest.raises(ProtocolError, match="no PSI hello"):
        lead.welcome()
    fol = Follower("F", "L", _digests(["a"]), agreed, m)
    with pytest.raises(ProtocolError, match="salt"):
        next(fol.own_points())
    lead.on_hello("F", fol.hello())
    with pytest.raises(PeerError, match="unexpected"):
        lead.on_hello("F", fol.hello())
    with pytest.raises(PeerError, match="nonce"):
        fol.on_welcome(Welcome((b"\0" * 32,), 2))
    fol.on_welcome(lead.welcome())
    with pytest.raises(PeerError, match="more PSI points"):
        fol.on_leader_points(Points(np.zeros((3, 32), dtype=np.uint8)))
    with pytest.raises(ProtocolError, match="not complete"):
        lead.finish()
    with pytest.raises(PeerError, match="malformed|not a PSI"):
        Hello.decode(b"\x93garbage", "F")
    with pytest.raises(PeerError, match="expected uint8"):
        Points.check(np.zeros((2, 32), dtype=np.int32), 32, "F", 10)
    with pytest.raises(PeerError, match="malformed PSI point chunk"):
        Points.decode(b"VLA1garbage", 32, "F", 10)
    with pytest.raises(PeerError, match="malformed PSI point chunk"):  # declares too much
        Points.decode(Points(np.zeros((5, 32), dtype=np.uint8)).encode(), 32, "F", 4)
    with pytest.raises(PeerError, match="malformed PSI result"):
        Result.decode(b"", 3, "L")
    with pytest.raises(PeerError, match="at most 1 remain"):
        Points.check(np.zeros((2, 32), dtype=np.uint8), 32, "F", 1)
    with pytest.raises(PeerError, match="out of range"):
        Result.check(np.array([0, 5], dtype=np.uint64), 3, "L")
    with pytest.raises(PeerError, match="not ascending"):
        Result.check(np.array([1, 1], dtype=np.uint64), 3, "L")


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.sets(st.text(alphabet="abcXYZ0 é", min_size=1, max_size=4), min_size=0, max_size=25),
        min_size=2,
        max_size=4,
    ),
    st.integers(1, 9),
)
def test_property_exact_vs_python_sets(sets: list[set[str]], chunk: int) -> None:
    lists = [sorted(s) for s in sets]
    out = _pipe(lists, PsiOptions(), chunk=chunk)
    expect = set.intersection(*sets)
    got = [[s[i] for i in rows] for s, rows in zip(lists, out, strict=True)]
    assert set(got[0]) == expect and len(got[0]) == len(expect)
    assert all(g == got[0] for g in got)

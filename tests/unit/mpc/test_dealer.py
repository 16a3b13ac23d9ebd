"""The dealer's PRG-compressed correlations reconstruct to what they claim."""

import numpy as np

from veil.core.ringmatmul import ring_matmul
from veil.mpc.comm import Comm
from veil.mpc.correlated.dealer import DealerSource
from veil.mpc.local import LocalParty, run_parties
from veil.mpc.protocols.semi2k.boolean import bit_reverse

PARTIES = ("p0", "p1", "p2")


def _collect() -> dict:
    def body(lp: LocalParty) -> tuple:
        comm = Comm(lp.link, lp.next_key, "t")
        d = DealerSource(comm, PARTIES, "dealer", "setup")
        return (
            d.beaver("k1", (4, 3), (4, 3), (4, 3), matmul=False),
            d.beaver("k2", (2, 5), (5, 3), (2, 3), matmul=True),
            d.and_triple("k3", (50,), np.uint16),
            d.trunc_pair("k4", (100,), 18),
            d.masked_bits("k5", (30,), bit_reverse),
            d.bit_pair("k6", (40,)),
            d.and_triple_shared("k7", 25, np.uint32),
            d.beaver_trunc("k8", (6,), (6,), (6,), False, 18) + d.mask_pair("k8", (6,)),
        )

    return run_parties((*PARTIES, "dealer", "outsider"), body)


def test_correlations_reconstruct() -> None:
    res = _collect()
    assert res["outsider"] == ((),) * 8
    parts = [res[p] for p in PARTIES]

    def add(i: int, j: int) -> np.ndarray:
        return sum((p[i][j] for p in parts[1:]), parts[0][i][j].copy())

    def xor(i: int, j: int) -> np.ndarray:
        out = parts[0][i][j].copy()
        for p in parts[1:]:
            out ^= p[i][j]
        return out

    a, b, c = add(0, 0), add(0, 1), add(0, 2)
    assert np.array_equal(c, a * b)
    a, b, c = add(1, 0), add(1, 1), add(1, 2)
    assert np.array_equal(c, ring_matmul(a, b))
    a, b, c = xor(2, 0), xor(2, 1), xor(2, 2)
    assert c.dtype == np.uint16 and np.array_equal(c, a & b)
    r, rt, m = add(3, 0), add(3, 1), add(3, 2)
    assert np.array_equal(rt, (r & np.uint64(2**63 - 1)) >> np.uint64(18))
    assert np.array_equal(m, r >> np.uint64(63))
    assert np.array_equal(res["dealer"][3][0], r)  # the dealer's (r,)
    r, rb = add(4, 0), xor(4, 1)
    assert np.array_equal(rb, bit_reverse(r))
    bit_b, bit_a = xor(5, 0), add(5, 1)
    assert set(np.unique(bit_b)) <= {0, 1} and np.array_equal(bit_a, bit_b.astype(np.uint64))
    a, b, c = xor(6, 0), xor(6, 1), xor(6, 2)
    assert a.shape == (25,) and np.array_equal(c, np.concatenate([a & b[:25], a & b[25:]]))
    a, b, c, rt, m = (add(7, j) for j in range(5))
    r = c - a * b  # the dealer's hidden mask
    assert np.array_equal(rt, (r & np.uint64(2**63 - 1)) >> np.uint64(18))
    assert np.array_equal(m, r >> np.uint64(63))


def _fixed_triples(shift_dealer_rows: int) -> dict:
    """A reused mask A (8 × 3) and two fixed-operand triples on row blocks of it; the dealer
    slices its A ``shift_dealer_rows`` further down than the parties (a misaligned reuse)."""

    def body(lp: LocalParty) -> tuple:
        comm = Comm(lp.link, lp.next_key, "t")
        d = DealerSource(comm, PARTIES, "dealer", "setup")
        mask = d.fixed_mask((8, 3))
        out = [mask]
        for k, (lo, tr) in enumerate(((0, False), (4, True))):
            a = None
            if d.is_dealer:
                lo = (lo + shift_dealer_rows) % 5
                a = mask[0][lo : lo + 4]
                a = a.T if tr else a
            sb, sc = ((4, 2), (3, 2)) if tr else ((3,), (4,))
            out.append(d.beaver_trunc_fixed(f"f{k}", a, sb, sc, 18) + d.mask_pair(f"f{k}", sc))
        return tuple(out)

    return run_parties((*PARTIES, "dealer", "outsider"), body)


def _fixed_ok(res: dict) -> list[bool]:
    parts = [res[p] for p in PARTIES]

    def add(i: int, j: int) -> np.ndarray:
        return sum((p[i][j] for p in parts[1:]), parts[0][i][j].copy())

    a_full = add(0, 0)
    assert np.array_equal(a_full, res["dealer"][0][0])  # the dealer's A is the shares' sum
    ok = []
    for i, (lo, tr) in enumerate(((0, False), (4, True)), start=1):
        a = a_full[lo : lo + 4]
        a = a.T if tr else a
        b, c, rt, m = (add(i, j) for j in range(4))
        r = c - ring_matmul(a, b)  # what the mask must be if the triple is consistent
        ok.append(
            bool(
                np.array_equal(rt, (r & np.uint64(2**63 - 1)) >> np.uint64(18))
                and np.array_equal(m, r >> np.uint64(63))
            )
        )
    return ok


def test_fixed_mask_triples_reconstruct() -> None:
    res = _fixed_triples(0)
    assert res["outsider"] == ((), (), ())
    assert _fixed_ok(res) == [True, True]


def test_misaligned_fixed_mask_reuse_is_detected() -> None:
    # the dealer multiplies the wrong rows of A: c − A_R·b is then not the mask of the pair
    assert _fixed_ok(_fixed_triples(1)) == [False, False]

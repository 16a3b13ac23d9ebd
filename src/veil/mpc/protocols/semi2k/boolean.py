"""semi2k boolean kernels on XOR shares of packed words: AND gates and the carry tree.

Bits are packed: one machine word holds the bits of one element, and every gate works on whole
numpy arrays of words, so a level of the circuit is a handful of vectorised operations.

The carry tree computes, for each element, the group-generate bit of 64 positions (the carry
of a 64-bit addition) from its generate/propagate words ``(g, p)`` in six levels. The words are
stored **bit-reversed**: position ``q`` holds significance ``rev6(q)``. Then the two halves of a
word are exactly the less and the more significant neighbours of each group at every level
(``rev(q + W/2) = rev(q) + 1``), so pairing is a shift and a mask — no bit gathering:
``G = g_hi ^ (p_hi & g_lo)`` and ``P = p_hi & p_lo``. Both ANDs share ``p_hi``, so a level is
*one* AND gate on ``[p_hi, p_hi] & [g_lo, p_lo]`` over words of half the width: 32-, 16- and
8-bit words, then bytes. Six rounds; the traffic of all levels is about twice that of the first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from veil.mpc.protocols.base import Shape, numel

if TYPE_CHECKING:
    from veil.mpc.protocols.semi2k.protocol import Semi2k

Arr = np.ndarray[Any, Any]

#: (word dtype, width in bits) entering each level of the carry tree.
LEVELS: tuple[tuple[Any, int], ...] = (
    (np.uint64, 64),
    (np.uint32, 32),
    (np.uint16, 16),
    (np.uint8, 8),
    (np.uint8, 4),
    (np.uint8, 2),
)


def _swap_mask(i: int, j: int) -> int:
    """Positions whose index has bit ``i`` set and bit ``j`` clear."""
    return sum(1 << q for q in range(64) if (q >> i) & 1 and not (q >> j) & 1)


#: Delta swaps (mask, shift) exchanging index bits (0,5), (1,4), (2,3).
_SWAPS = tuple(
    (np.uint64(_swap_mask(i, j)), np.uint64((1 << j) - (1 << i)))
    for i, j in ((0, 5), (1, 4), (2, 3))
)


def bit_reverse(x: Arr) -> Arr:
    """Move the bit of significance ``s`` to position ``rev6(s)`` (6-bit index reversal).

    An involution; three delta swaps. Significances 0 and 63 stay in place.
    """
    y = np.array(x, dtype=np.uint64, copy=True)
    t = np.empty_like(y)
    for mask, shift in _SWAPS:
        np.right_shift(y, shift, out=t)
        t ^= y
        t &= mask
        y ^= t
        t <<= shift
        y ^= t
    return y


def _out_dtype(level: int) -> Any:
    return LEVELS[level + 1][0] if level + 1 < len(LEVELS) else np.uint8


def halves(x: Arr, width: int, out_dtype: Any) -> tuple[Arr, Arr]:
    """(low half, high half) of ``width``-bit words, as ``out_dtype``."""
    half = width // 2
    lo = (x & x.dtype.type((1 << half) - 1)).astype(out_dtype)
    hi = (x >> x.dtype.type(half)).astype(out_dtype)
    return lo, hi


def and_gate(
    eng: Semi2k, key: str, x: Arr | None, y: Arr | None, shape: Shape, dtype: Any
) -> Arr | None:
    """Beaver AND of XOR-shared words (one round: open ``x ^ a`` and ``y ^ b``)."""
    tri = eng.dealer.and_triple(key + "/t", shape, dtype)
    if x is None or y is None:
        return None
    a, b, c = tri
    n = numel(shape)
    buf = np.empty(2 * n, dtype=dtype)
    np.bitwise_xor(x.reshape(-1), a.reshape(-1), out=buf[:n])
    np.bitwise_xor(y.reshape(-1), b.reshape(-1), out=buf[n:])
    ef = eng.comm.exchange_sum(eng.parties, key, buf, xor=True)
    e, f = ef[:n].reshape(shape), ef[n:].reshape(shape)
    if eng.rank == 0:
        b ^= f
    b &= e
    a &= f
    c ^= b
    c ^= a
    return c


def and_gate_shared(
    eng: Semi2k, key: str, x: Arr | None, y: Arr | None, n: int, dtype: Any
) -> Arr | None:
    """``[x & y[:n], x & y[n:]]`` for XOR-shared ``x`` (n words) and ``y`` (2n words).

    One round; the shared operand is masked once (``e = x ^ a`` has n words, ``f = y ^ b`` has
    2n), so it costs three quarters of a plain AND gate on 2n words.
    """
    tri = eng.dealer.and_triple_shared(key + "/t", n, dtype)
    if x is None or y is None:
        return None
    a, b, c = tri
    buf = np.empty(3 * n, dtype=dtype)
    np.bitwise_xor(x, a, out=buf[:n])
    np.bitwise_xor(y, b, out=buf[n:])
    ef = eng.comm.exchange_sum(eng.parties, key, buf, xor=True)
    e, f = ef[:n], ef[n:]
    # z = c ^ (e & b) ^ (f & a) (^ e & f at party 0), with e and a repeated for both halves
    if eng.rank == 0:
        b ^= f
    b[:n] &= e
    b[n:] &= e
    f[:n] &= a
    f[n:] &= a
    c ^= b
    c ^= f
    return c


def carry_out(eng: Semi2k, key: str, g: Arr | None, p: Arr | None, n: int) -> Arr | None:
    """XOR shares (uint8 0/1) of the group-generate bit of bit-reversed words ``(g, p)``.

    ``g`` and ``p`` are XOR-shared ``uint64`` arrays of ``n`` elements (``None`` at the dealer,
    which only supplies the AND triples). Six rounds.
    """
    for level, (_dt, width) in enumerate(LEVELS):
        last = level == len(LEVELS) - 1
        odt = _out_dtype(level)
        if g is None or p is None:
            if last:
                eng.dealer.and_triple(f"{key}/{level}/t", (n,), odt)
            else:
                eng.dealer.and_triple_shared(f"{key}/{level}/t", n, odt)
            continue
        g_lo, g_hi = halves(g, width, odt)
        p_lo, p_hi = halves(p, width, odt)
        if last:
            z = and_gate(eng, f"{key}/{level}", p_hi, g_lo, (n,), odt)
            assert z is not None
            return g_hi ^ z
        z = and_gate_shared(eng, f"{key}/{level}", p_hi, np.concatenate([g_lo, p_lo]), n, odt)
        assert z is not None
        g_hi ^= z[:n]
        g, p = g_hi, z[n:]
    return None


def prefix_generate(eng: Semi2k, key: str, g: Arr | None, p: Arr | None, n: int) -> Arr | None:
    """Kogge–Stone prefix on natural-layout ``uint64`` words: bit ``i`` of the result is the
    group-generate of bits ``[0..i]`` (the carry out of bit ``i``). Six rounds, one AND gate per
    level (``p & [g << d, p << d]``, shared operand; the last level needs ``g`` only)."""
    for level, d in enumerate((1, 2, 4, 8, 16, 32)):
        last = d == 32
        sh = np.uint64(d)
        if g is None or p is None:
            if last:
                eng.dealer.and_triple(f"{key}/{level}/t", (n,), np.uint64)
            else:
                eng.dealer.and_triple_shared(f"{key}/{level}/t", n, np.uint64)
            continue
        if last:
            z = and_gate(eng, f"{key}/{level}", p, g << sh, (n,), np.uint64)
            assert z is not None
            return g ^ z
        z = and_gate_shared(
            eng, f"{key}/{level}", p, np.concatenate([g << sh, p << sh]), n, np.uint64
        )
        assert z is not None
        g = g ^ z[:n]
        p = z[n:]
    return None


def prefix_cost_bytes(nparties: int, n: int, header: int) -> int:
    """Bytes of :func:`prefix_generate` on ``n`` elements."""
    pairs = nparties * (nparties - 1)
    shared = pairs * (24 * n + header) + 16 * n + header
    return 5 * shared + and_cost_bytes(nparties, n, 8, header)


def and_cost_bytes(nparties: int, count: int, itemsize: int, header: int) -> int:
    """Bytes of one AND gate on ``count`` words: the all-to-all opening plus the correction."""
    return nparties * (nparties - 1) * (2 * count * itemsize + header) + count * itemsize + header


def carry_cost_bytes(nparties: int, n: int, header: int) -> int:
    """Bytes of :func:`carry_out` on ``n`` elements."""
    total = 0
    pairs = nparties * (nparties - 1)
    for level in range(len(LEVELS)):
        isz = np.dtype(_out_dtype(level)).itemsize
        if level == len(LEVELS) - 1:
            total += and_cost_bytes(nparties, n, isz, header)
        else:  # shared-operand gate: 3n words opened, 2n words of correction
            total += pairs * (3 * n * isz + header) + 2 * n * isz + header
    return total


__all__ = [
    "LEVELS",
    "and_gate",
    "and_gate_shared",
    "bit_reverse",
    "carry_cost_bytes",
    "carry_out",
    "halves",
    "prefix_cost_bytes",
    "prefix_generate",
]

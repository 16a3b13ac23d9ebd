"""semi2k share conversions: arithmetic → boolean MSB extraction and boolean bit → arithmetic.

MSB extraction (used by every comparison) masks instead of decomposing: the dealer supplies a
uniform ``r`` in both arithmetic and XOR-shared form; the parties open ``c = x + r`` (uniform,
reveals nothing) and evaluate ``msb(c − r) = msb(c + ¬r + 1)`` with ``c`` public. The first
level of the adder is then local (``g = c & ¬r``, ``p = c ^ ¬r``), only the carry into bit 63
needs AND gates (``carry_out`` of :mod:`~veil.mpc.protocols.semi2k.boolean`: six rounds on
packed, bit-reversed, shrinking words), and one more round turns the bit into an arithmetic
share. Eight rounds in all, for any number of parties.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from veil.mpc.protocols.base import Shape, Shares, numel
from veil.mpc.protocols.semi2k.boolean import and_gate, bit_reverse, carry_out, prefix_generate

if TYPE_CHECKING:
    from veil.mpc.protocols.semi2k.protocol import Semi2k

_ONES = np.uint64(0xFFFFFFFFFFFFFFFF)
_LOW63 = np.uint64((1 << 63) - 1)
_TOP = np.uint64(1 << 63)


def b2a_bit(eng: Semi2k, key: str, b: np.ndarray | None, shape: Shape) -> Shares:
    """Arithmetic shares of XOR-shared bits ``b`` (uint8 0/1). One round.

    With a dealer bit ``r`` in both forms, the parties open ``e = b ^ r`` (uniform) and set
    ``b = e + r − 2·e·r``.
    """
    pair = eng.dealer.bit_pair(key + "/t", shape)
    if b is None:
        return ()
    rb, ra = pair
    e = eng.comm.exchange_sum(eng.parties, key, (b ^ rb).astype(np.uint8), xor=True)
    e64 = e.astype(np.uint64)
    out = ra * (np.uint64(1) - (e64 << np.uint64(1)))
    if eng.rank == 0:
        out += e64
    return (out,)


def msb(eng: Semi2k, x: Shares, shape: Shape) -> Shares:
    """Arithmetic shares of ``msb(x)`` (0/1). Eight rounds; see the module docstring."""
    key = eng.comm.key("msb")
    n = numel(shape)
    mb = eng.dealer.masked_bits(key + "/m", (n,), bit_reverse)
    if not x:
        if eng.dealer.is_dealer:
            carry_out(eng, key + "/c", None, None, n)
            b2a_bit(eng, key + "/b", None, (n,))
        return ()
    r, rb = mb  # rb: XOR shares of bit_reverse(r); significances 0 and 63 stay in place
    r += x[0].reshape(-1)
    c = bit_reverse(eng.comm.exchange_sum(eng.parties, key, r))
    nr = rb ^ _ONES if eng.rank == 0 else rb  # XOR shares of ¬r (bit-reversed)
    g = c & nr
    p = nr ^ c if eng.rank == 0 else nr
    top = (p >> np.uint64(63)).astype(np.uint8)  # shares of c63 ^ ¬r63
    g = (g ^ (p & np.uint64(1))) & _LOW63  # carry-in 1 at bit 0: g0 | p0 == g0 ^ p0
    p = p & _LOW63
    if eng.rank == 0:
        p = p | _TOP  # bit 63: propagate only, so the group carry is the carry into bit 63
    carry = carry_out(eng, key + "/c", g, p, n)
    assert carry is not None
    out = b2a_bit(eng, key + "/b", top ^ carry, (n,))
    return (out[0].reshape(shape),)


def _sum_bits(
    eng: Semi2k, key: str, g: np.ndarray | None, p: np.ndarray | None, n: int
) -> np.ndarray | None:
    """XOR shares of ``a + b + 1`` from the XOR-shared ``g = a & b`` and ``p = a ^ b``."""
    if g is None or p is None:
        prefix_generate(eng, key, None, None, n)
        return None
    g = g ^ (p & np.uint64(1))  # carry-in 1: g0 | p0 == g0 ^ p0
    carries = prefix_generate(eng, key, g, p, n)
    assert carries is not None
    s: np.ndarray = p ^ (carries << np.uint64(1))
    if eng.rank == 0:
        s ^= np.uint64(1)
    return s


def a2b(eng: Semi2k, x: Shares, shape: Shape) -> Shares:
    """XOR shares (``uint64`` words) of the bits of ``x``. Seven rounds.

    Open ``c = x + r`` (uniform) for a dealer ``r`` given in both forms, then ``x = c + ¬r + 1``
    with a Kogge–Stone adder whose generate/propagate inputs are local (``c`` is public).
    """
    key = eng.comm.key("a2b")
    n = numel(shape)
    mb = eng.dealer.masked_bits(key + "/m", (n,))
    if not x:
        if eng.dealer.is_dealer:
            _sum_bits(eng, key + "/s", None, None, n)
        return ()
    r, rb = mb
    r += x[0].reshape(-1)
    c = eng.comm.exchange_sum(eng.parties, key, r)
    nr = rb ^ _ONES if eng.rank == 0 else rb
    g = c & nr
    p = nr ^ c if eng.rank == 0 else nr
    s = _sum_bits(eng, key + "/s", g, p, n)
    assert s is not None
    return (s.reshape(shape),)


def b2a(eng: Semi2k, b: Shares, shape: Shape) -> Shares:
    """Arithmetic shares of XOR-shared ``uint64`` words ``b``. Eight rounds.

    With a dealer ``r`` in both forms, compute ``d = b + ¬r + 1 = b − r`` in a boolean adder
    (one AND gate for the generate bits, then the prefix), open ``d`` (uniform, reveals nothing)
    and set ``b = d + r``.
    """
    key = eng.comm.key("b2a")
    n = numel(shape)
    mb = eng.dealer.masked_bits(key + "/m", (n,))
    if not b:
        if eng.dealer.is_dealer:
            and_gate(eng, key + "/g", None, None, (n,), np.uint64)
            _sum_bits(eng, key + "/s", None, None, n)
        return ()
    r, rb = mb
    words = b[0].reshape(-1)
    nr = rb ^ _ONES if eng.rank == 0 else rb
    g = and_gate(eng, key + "/g", words, nr, (n,), np.uint64)
    s = _sum_bits(eng, key + "/s", g, words ^ nr, n)
    assert s is not None
    d = eng.comm.exchange_sum(eng.parties, key + "/d", s, xor=True)
    if eng.rank == 0:
        r += d
    return (r.reshape(shape),)


__all__ = ["a2b", "b2a", "b2a_bit", "msb"]

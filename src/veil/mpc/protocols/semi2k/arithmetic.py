"""semi2k arithmetic kernels on additive shares: Beaver multiplication and truncation.

Every function takes the engine (:class:`~veil.mpc.protocols.semi2k.protocol.Semi2k`) and
runs at every party of the device: computing parties exchange masked values, the dealer
generates its correlations (and returns ``()``), other parties return ``()`` at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from veil.core.ring import Ring, arshift
from veil.core.ringmatmul import ring_matmul
from veil.mpc.correlated.dealer import finish_trunc_pair
from veil.mpc.protocols.base import (
    Fixed,
    Rows,
    Shape,
    Shares,
    matmul_shape,
    select_rows,
    selected_shape,
)

if TYPE_CHECKING:
    from veil.mpc.protocols.semi2k.protocol import Semi2k


def _beaver_open(
    eng: Semi2k, key: str, x: Shares, y: Shares, a: Ring, b: Ring
) -> tuple[Ring, Ring]:
    """Open ``e = x − a`` and ``f = y − b`` (one round, one frame per peer)."""
    nx, ny = a.size, b.size
    buf = np.empty(nx + ny, dtype=np.uint64)
    np.subtract(x[0].reshape(-1), a.reshape(-1), out=buf[:nx])
    np.subtract(y[0].reshape(-1), b.reshape(-1), out=buf[nx:])
    ef = eng.comm.exchange_sum(eng.parties, key, buf)
    return ef[:nx].reshape(a.shape), ef[nx:].reshape(b.shape)


def _beaver_mul(eng: Semi2k, e: Ring, f: Ring, a: Ring, b: Ring, c: Ring) -> Ring:
    """``c + e·b + f·a (+ e·f at party 0)``, in place on the triple."""
    if eng.rank == 0:
        b += f
    np.multiply(b, e, out=b)
    np.multiply(a, f, out=a)
    c += b
    c += a
    return c


def _beaver_matmul(eng: Semi2k, e: Ring, f: Ring, a: Ring, b: Ring, c: Ring) -> Ring:
    """``c + e @ b + a @ f (+ e @ f at party 0)``: two ring matmuls."""
    if eng.rank == 0:
        b += f
    c += ring_matmul(e, b)
    c += ring_matmul(a, f)
    return c


def mul(eng: Semi2k, x: Shares, y: Shares, shape: Shape) -> Shares:
    """Beaver product of two secrets of ``shape`` (one round: open ``x − a`` and ``y − b``).

    Reveals nothing: the opened values are masked by the dealer's uniform ``a`` and ``b``.
    """
    key = eng.comm.key("mul")
    tri = eng.dealer.beaver(key + "/t", shape, shape, shape, matmul=False)
    if not x:
        return ()
    a, b, c = tri
    e, f = _beaver_open(eng, key, x, y, a, b)
    return (_beaver_mul(eng, e, f, a, b, c),)


def matmul(eng: Semi2k, x: Shares, y: Shares, sx: Shape, sy: Shape) -> Shares:
    """Beaver matrix product (one round: open ``x − A`` and ``y − B``); two ring matmuls per
    party (``e @ (B_i + f) + A_i @ f`` at party 0, ``e @ B_i + A_i @ f`` elsewhere)."""
    key = eng.comm.key("matmul")
    so = matmul_shape(sx, sy)
    tri = eng.dealer.beaver(key + "/t", sx, sy, so, matmul=True)
    if not x:
        return ()
    a, b, c = tri
    e, f = _beaver_open(eng, key, x, y, a, b)
    return (_beaver_matmul(eng, e, f, a, b, c),)


def mul_trunc(
    eng: Semi2k, x: Shares, y: Shares, sx: Shape, sy: Shape, bits: int, matmul: bool
) -> Shares:
    """Fixed-point product with pair truncation, fused (two rounds).

    The dealer's triple carries the truncation mask (``Σ c_i = a·b + r``), so after the Beaver
    round the parties hold shares of ``x·y + r`` and open it at once (see
    :func:`trunc_pair` for the arithmetic). Same guarantee as ``trunc_pair``.
    """
    key = eng.comm.key("mulT")
    so = matmul_shape(sx, sy) if matmul else sx
    tri = eng.dealer.beaver_trunc(key + "/t", sx, sy, so, matmul, bits)
    if not x:
        return ()
    a, b, c = tri
    e, f = _beaver_open(eng, key, x, y, a, b)
    z = (_beaver_matmul if matmul else _beaver_mul)(eng, e, f, a, b, c)
    rt, m = eng.dealer.mask_pair(key + "/t", so)
    return (_open_and_fix(eng, key + "/o", z, rt, m, bits),)


def fix(eng: Semi2k, x: Shares, shape: Shape) -> Fixed:
    """Open ``E = x − A`` once for a dealer mask ``A`` that every later product reuses (one
    round; "matrix triple reuse", as in SecureML and SPU's Beaver cache).

    Reveals nothing: ``A`` is uniform and used to mask ``x`` only this once; each later product
    :func:`fixed_matmul_trunc` masks its other operand with a fresh ``b`` and its result with
    a fresh ``r``, so every opened value stays uniform and independent of the data. The parties
    keep ``(E, A_i)``, the dealer keeps ``A``.
    """
    key = eng.comm.key("fix")
    mask = eng.dealer.fixed_mask(shape)
    if eng.dealer.is_dealer:
        return Fixed(shape, mask)
    if not x:
        return Fixed(shape, ())
    a = mask[0]
    e = eng.comm.exchange_sum(eng.parties, key, np.subtract(x[0], a))
    return Fixed(shape, (e, a))


def fixed_matmul_trunc(
    eng: Semi2k, fx: Fixed, rows: Rows, transpose: bool, y: Shares, sy: Shape, bits: int
) -> Shares:
    """``trunc(op(x[rows]) @ y)`` for a fixed ``x`` (:func:`fix`): two rounds, like
    :func:`mul_trunc`, but only ``y − b`` is opened (``|y|`` elements instead of
    ``|x[rows]| + |y|``) and the dealer draws only ``b`` and ``r``. Party ``i`` computes
    ``c_i + op(E)@b_i + op(A_i)@f`` (``+ op(E)@f`` at party 0), which sums to ``op(x)@y + r``.
    """
    key = eng.comm.key("fixmmT")
    sx = selected_shape(fx.shape, rows, transpose)
    so = matmul_shape(sx, sy)
    a_dealer = select_rows(fx.parts[0], rows, transpose) if eng.dealer.is_dealer else None
    tri = eng.dealer.beaver_trunc_fixed(key + "/t", a_dealer, sy, so, bits)
    if not y:
        return ()
    b, c = tri
    f = eng.comm.exchange_sum(eng.parties, key, np.subtract(y[0].reshape(sy), b))
    e, a = (select_rows(p, rows, transpose) for p in fx.parts)
    if eng.rank == 0:
        b += f
    c += ring_matmul(e, b)
    c += ring_matmul(a, f)
    rt, m = eng.dealer.mask_pair(key + "/t", so)
    return (_open_and_fix(eng, key + "/o", c, rt, m, bits),)


def _open_and_fix(eng: Semi2k, key: str, masked: Ring, rt: Ring, m: Ring, bits: int) -> Ring:
    """Open ``c = x + r + 2^62`` from shares ``masked`` of ``x + r`` and finish the truncation."""
    if eng.rank == 0:
        masked += np.uint64(1 << 62)
    c = eng.comm.exchange_sum(eng.parties, key, masked)
    return finish_trunc_pair(c, rt, m, bits, leader=eng.rank == 0)


def trunc_local(eng: Semi2k, x: Shares, shape: Shape, bits: int) -> Shares:
    """SecureML share-local truncation (2 parties only, no communication).

    Party 0 shifts its share arithmetically, party 1 shifts the negation of its share. The result
    is ``floor(x / 2^bits)`` up to ±1 in the last place, *except* with probability about
    ``|x| / 2^63`` per element, when it is off by ≈ 2^(64−bits) (a wrap of the shares). For a
    product of two fixed-point values with ``|x·y| < 2^k`` that is ``2^(k + 2f − 63)``
    (2^-20 for k = 7, f = 18): rare but not negligible over millions of elements, so
    ``trunc="pair"`` is the default.
    """
    eng.comm.key("trunc")  # keep key counters aligned with the pair variant
    if not x:
        return ()
    if eng.rank == 0:
        return (arshift(x[0], bits),)
    return ((-arshift(-x[0], bits)).astype(np.uint64),)


def trunc_pair(eng: Semi2k, x: Shares, shape: Shape, bits: int) -> Shares:
    """Truncation with a dealer pair ``(r, (r mod 2^63) >> bits, msb(r))`` (one round).

    The parties open ``c = x + 2^62 + r`` (uniform, reveals nothing) and compute
    ``floor((x + 2^62) / 2^bits) − 2^(62−bits)`` from ``c`` and the pair; the wrap bit of
    ``c`` is recovered exactly from ``msb(c)`` and ``msb(r)``. Exact up to −1 in the last place,
    no failure probability, for any N, provided ``|x| < 2^62``.
    """
    key = eng.comm.key("trunc")
    pair = eng.dealer.trunc_pair(key + "/t", shape, bits)
    if not x:
        return ()
    r, rt, m = pair
    r += x[0]
    return (_open_and_fix(eng, key, r, rt, m, bits),)


__all__ = [
    "fix",
    "fixed_matmul_trunc",
    "matmul",
    "mul",
    "mul_trunc",
    "trunc_local",
    "trunc_pair",
]

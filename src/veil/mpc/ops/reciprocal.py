"""Reciprocal, division, square root and inverse square root on secret fixed-point tensors."""

from __future__ import annotations

import numpy as np

from veil.mpc.ops.compare import msb
from veil.mpc.ops.normalize import normalize
from veil.mpc.tensor import FXP, SecretTensor

# Minimax linear start for Newton on m ∈ [1/16, 1): |1 − m·y0| ≤ 0.6374 (0.6374^32 ≈ 6e-7).
_RECIP_A, _RECIP_B = 6.164306, 5.801700
# Least-squares linear start for 1/sqrt(m) on [1/4, 1]: |1 − m·y0²| ≲ 0.22.
_RSQRT_A, _RSQRT_B = 2.0740963, 1.18520741


_EXTRA = 4  # extra fractional bits of the mantissa (m ≥ 1/16 keeps 18 significant bits)


def _times_m(m: SecretTensor, y: SecretTensor) -> SecretTensor:
    """``m·y`` for ``m`` with ``f + _EXTRA`` fractional bits and ``y`` in fixed point."""
    eng = m.engine
    bits = eng.fxp.frac_bits + _EXTRA
    return SecretTensor(
        eng, eng.protocol.mul_trunc(m.shares, y.shares, m.pshape, bits), m.shape, FXP
    )


def _recip_mantissa(m: SecretTensor, iters: int) -> SecretTensor:
    y = _RECIP_A - _times_m(m, m.engine.constant(np.full(m.shape, _RECIP_B)))
    for _ in range(iters):
        y = y * (2.0 - _times_m(m, y))
    return y


def reciprocal(x: SecretTensor, *, lo_exp: int = -8, hi_exp: int = 16) -> SecretTensor:
    """``1/x`` for ``2^lo_exp ≤ |x| < 2^hi_exp`` (either sign).

    Method: sign by one MSB extraction, ``|x| = m·16^e`` by batched comparisons against powers
    of 16 (:func:`~veil.mpc.ops.normalize.normalize`; 6 comparisons for the default range),
    five Newton steps ``y ← y(2 − m·y)`` from a minimax linear start on [1/16, 1) (error
    0.64^32 ≈ 6e-7), rescale by ``16^−e``.

    Error: ``|error| ≤ 2e-5·|1/x| + 2·2^-f`` (relative 2e-5 while ``1/|x| ≫ 2^-f``, an absolute
    floor of two units in the last place otherwise). Inputs outside the range (including 0)
    give wrong results (not detected).
    """
    x = x.to_fxp()
    s = msb(x)
    ax = x - 2 * (s * x)
    nrm = normalize(ax, lo_exp, hi_exp, step=4, extra_bits=_EXTRA)
    y = _recip_mantissa(nrm.m, 5)
    r = nrm.rescale(y, 4)
    return r - 2 * (s * r)


def div(a: SecretTensor, b: SecretTensor, **range_kw: int) -> SecretTensor:
    """``a / b`` as ``a · reciprocal(b)`` (``b``'s range as in :func:`reciprocal`)."""
    return a * reciprocal(b, **range_kw)


def rsqrt(x: SecretTensor, *, lo_exp: int = -8, hi_exp: int = 16) -> SecretTensor:
    """``1/sqrt(x)`` for ``2^lo_exp ≤ x < 2^hi_exp``.

    Method: ``x = m·4^e``; three Newton steps ``y ← y(3 − m·y²)/2`` from a linear start
    (quadratic convergence from 0.11); rescale by ``2^−e``. Relative error ≲ 3e-5 in range.
    """
    nrm = normalize(x.to_fxp(), lo_exp, hi_exp)
    m = nrm.m
    y = _RSQRT_A - m * _RSQRT_B
    for _ in range(3):
        y = y * (1.5 - (m * (y * y)) * 0.5)
    return nrm.rescale(y, 1)


def sqrt(x: SecretTensor, *, lo_exp: int = -8, hi_exp: int = 16) -> SecretTensor:
    """``sqrt(x)`` as ``x · rsqrt(x)`` for ``x = 0`` or ``2^lo_exp ≤ x < 2^hi_exp``.

    Relative error ≲ 3e-5 in range; exactly 0 at 0.
    """
    x = x.to_fxp()
    return x * rsqrt(x, lo_exp=lo_exp, hi_exp=hi_exp)


__all__ = ["div", "reciprocal", "rsqrt", "sqrt"]

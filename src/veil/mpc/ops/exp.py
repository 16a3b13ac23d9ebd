"""Exponential and natural logarithm on secret fixed-point tensors."""

from __future__ import annotations

import math

from veil.errors import ConfigError
from veil.mpc.ops.normalize import normalize
from veil.mpc.ops.poly import polyval
from veil.mpc.tensor import FXP, SecretTensor

#: e^z on |z| ≤ 2: degree-8 Chebyshev fit weighted by e^−z (relative error 1.3e-5).
_EXP8 = (
    0.9999967462823687,
    1.0000018990010435,
    0.5000400600739536,
    0.16668394283325677,
    0.04160255416550269,
    0.008296017929648531,
    0.0014173425055909196,
    0.0002176760092951494,
    2.20302751368419e-05,
)

#: Chebyshev fit of log(m) on m ∈ [1/4, 1] in u = (m − 0.625)/0.375, degree 9 (error 1.3e-5).
_LOG_COEFFS = (
    -0.4700056872353433,
    0.6000070659265461,
    -0.1798907480231539,
    0.07185266665620497,
    -0.033298912218976344,
    0.016387640780565843,
    -0.005298212672993302,
    0.0021474252688825513,
    -0.004643458193545215,
    0.002749155169736596,
)


def exp(x: SecretTensor, *, bound: float = 8.0) -> SecretTensor:
    """``e^x`` for ``|x| ≤ bound``.

    Method: with ``2^L ≥ bound``, ``e^x = q(x/2^s)^(2^s)`` for ``s = L − 1`` where ``q`` is a
    degree-8 polynomial fit of ``e^z`` on ``|z| ≤ 2`` (relative error 1.3e-5). The powers are
    taken of ``w = x/2^t`` (``t = L − 2``, so ``|w| ≤ 4`` and no power overflows; ``|w|`` is
    smaller when f > 22) and the factor ``2^-(s−t)k`` is folded into the coefficients, encoded
    with up to 16 extra fractional bits.
    Products: 3 power levels, one truncation, ``s`` squarings (plus one truncation when
    ``t > 0``): for ``bound = 4`` that is 9 rounds in semi2k and 10 in aby3.

    Error: relative ≲ ``2^s·(1.3e-5 + 2^-f·e^2)`` (≈ 6e-5 for bound 4, 1.7e-4 for bound 8) plus
    an absolute floor of about ``2^-f``; relative error ≤ 1e-3 wherever ``e^x ≥ 1e-2``.
    Inputs beyond ``bound`` give wrong results (not detected).
    """
    if bound <= 0 or not math.isfinite(bound):
        raise ConfigError(f"exp bound must be a positive number, got {bound}")
    f = x.engine.fxp.frac_bits
    if bound * math.log2(math.e) >= 61 - 2 * f:
        limit = (61 - 2 * f) / math.log2(math.e)
        raise ConfigError(f"exp bound {bound} overflows the fixed-point range (use < {limit:.1f})")
    big = max(0, math.ceil(math.log2(bound)))
    # |w| ≤ 2^j keeps w^8 = w^4·w^4 below 2^62 at scale 2f (j = 2 for f ≤ 22)
    j = max(0, min(2, (60 - 2 * f) // 8))
    s, t = max(0, big - 1), max(0, big - j)
    x = x.to_fxp()
    eng = x.engine
    w = SecretTensor(eng, eng.protocol.trunc(x.shares, x.pshape, t), x.shape, FXP) if t else x
    coeffs = [c * 2.0 ** ((t - s) * k) for k, c in enumerate(_EXP8)]
    # Σ c_k z^k ≤ e^2 < 2^3 at scale 2f + extra must stay below 2^62
    r = polyval(coeffs, w, extra_bits=max(0, min(16, 58 - 2 * f)))
    for _ in range(s):
        r = r * r
    return r


def log(x: SecretTensor, *, lo_exp: int = -8, hi_exp: int = 16) -> SecretTensor:
    """Natural logarithm for ``2^lo_exp ≤ x < 2^hi_exp`` (x > 0).

    Method: normalise ``x = m·4^e`` with ``m ∈ [1/4, 1)`` (batched comparisons against powers of
    four, :func:`~veil.mpc.ops.normalize.normalize`), then ``log m`` by a degree-9 Chebyshev
    polynomial (error 1.3e-5) plus ``e·log 4``. Absolute error ≲ 2e-5 in range; inputs outside
    the range give wrong results (not detected).
    """
    nrm = normalize(x.to_fxp(), lo_exp, hi_exp)
    u = (nrm.m - 0.625) * (1.0 / 0.375)
    return polyval(_LOG_COEFFS, u) + nrm.e.to_fxp() * math.log(4.0)


__all__ = ["exp", "log"]

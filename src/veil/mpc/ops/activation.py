"""Activations: sigmoid (accurate and cheap modes) and softmax."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from veil.errors import ConfigError
from veil.mpc.ops.compare import max as smax
from veil.mpc.ops.compare import maximum, msb_many
from veil.mpc.ops.exp import exp
from veil.mpc.ops.poly import lincomb, polyval
from veil.mpc.ops.reciprocal import reciprocal
from veil.mpc.tensor import FXP, INT, SecretTensor, concatenate

#: Saturation point: for |x| > 8, σ is within 3.4e-4 of 0 or 1.
_SAT = 8.0
#: Chebyshev fit of σ(t) on t ∈ [0, 8] in u = t/4 − 1, degree 5 (error 8.2e-3).
_SIG5 = (
    0.9836369088301778,
    0.06480639716355126,
    -0.16713279520559102,
    0.2210719692555071,
    -0.07263709520392035,
    -0.03375978739388993,
)
#: The same polynomial expanded in powers of t itself (no truncation for u = t/4 − 1).
_SIG5_T = (
    0.4917484393954981,
    0.2960093347968715,
    -0.058035837516045935,
    0.002719101189567019,
    0.00037563219439659874,
    -3.296854237684563e-05,
)
#: e^z on z ∈ [−2, 0], Chebyshev degree 6 (absolute error 3.0e-6; 1.2e-5 after two squarings).
_EXPNEG6 = (
    0.9999969990251165,
    0.9999142739806036,
    0.4994055998923764,
    0.16495173519447384,
    0.039169498348945245,
    0.006354925700023611,
    0.0005282279720588954,
)
# Minimax linear start for 1/z on z ∈ [1, 2]: |1 − z·y0| ≤ 0.059.
_INV12_A, _INV12_B = 1.4117647, 0.4705882


def _exp_neg(t: SecretTensor) -> SecretTensor:
    """``e^−t`` for ``t ∈ [0, 8]`` to absolute error ≈ 1.2e-5 (garbage beyond; callers mask it).

    ``(q(−t/4))^4`` with the powers taken of ``t`` itself (no truncation first) and ``(−1/4)^k``
    folded into the coefficients: five products, one truncation, two squarings.
    """
    f = t.engine.fxp.frac_bits
    if 18 + 2 * f > 61:  # t^6 products would overflow; use the general exp
        return exp(-t, bound=_SAT)
    coeffs = [c * (-0.25) ** k for k, c in enumerate(_EXPNEG6)]
    q = polyval(coeffs, t, extra_bits=max(0, min(16, 58 - 2 * f)))
    q2 = q * q
    return q2 * q2


def _public_times_bits(bits: SecretTensor, c: float) -> SecretTensor:
    """``c · bits`` as fixed point for an integer secret ``bits`` (local: ring × encoded ``c``)."""
    eng = bits.engine
    enc = eng.fxp.encode(np.asarray(c, dtype=np.float64)).reshape(())
    return SecretTensor(eng, tuple(s * enc for s in bits.shares), bits.shape, FXP)


def _batched_int_mul(pairs: list[tuple[SecretTensor, SecretTensor]]) -> list[SecretTensor]:
    """Ring products ``a·b`` of several pairs, each with at least one *integer* factor, in one
    round (no truncation: the product keeps the fixed-point scale of the other factor)."""
    eng = pairs[0][0].engine
    sizes = [a.size for a, _ in pairs]

    def cat(ts: list[SecretTensor]) -> tuple[np.ndarray[Any, Any], ...]:
        return tuple(
            np.concatenate([t.shares[k].reshape(-1) for t in ts]) for k in range(len(ts[0].shares))
        )

    lhs, rhs = cat([a for a, _ in pairs]), cat([b for _, b in pairs])
    prod = eng.protocol.mul(lhs, rhs, (sum(sizes),))
    out, start = [], 0
    for (a, b), n in zip(pairs, sizes, strict=True):
        dtype = FXP if FXP in (a.dtype, b.dtype) else INT
        shares = tuple(c[start : start + n].reshape(a.pshape) for c in prod)
        out.append(SecretTensor(eng, shares, a.shape, dtype))
        start += n
    return out


def _times_keep_sign_poly(
    x: SecretTensor, keep: SecretTensor, s: SecretTensor, coeffs: list[float], extra_bits: int
) -> SecretTensor:
    """``(k·s)·q(t)`` for ``t = x·s`` (``s = ±1``, ``k`` 0/1 integers) and a degree-5 ``q``.

    The factor ``k·s`` rides along the powers instead of costing a final product: one batched
    integer product gives ``t``, ``k·s`` and ``k·s·t = k·x``; three levels of products give
    ``t²`` and ``k·s·t^j`` for ``j ≤ 5``; one truncation combines them. Where ``k = 0``
    every term is exactly 0, whatever ``t`` (no overflow garbage).
    """
    t, ks, kt = _batched_int_mul([(x, s), (keep, s), (keep, x)])
    n = x.size
    tf, ktf = t.reshape(-1), kt.reshape(-1)
    lvl1 = concatenate([tf, ktf]) * concatenate([tf, tf])  # t², k·s·t²
    t2, kt2 = lvl1[:n], lvl1[n:]
    lvl2 = concatenate([ktf, kt2]) * concatenate([t2, t2])  # k·s·t³, k·s·t⁴
    kt3, kt4 = lvl2[:n], lvl2[n:]
    kt5 = kt3 * t2
    pws = [ks.to_fxp().reshape(-1), ktf, kt2, kt3, kt4, kt5]
    return lincomb([0.0, *coeffs], pws, extra_bits=extra_bits).reshape(x.shape)


def sigmoid(x: SecretTensor, *, mode: str = "accurate", scale: float = 1.0) -> SecretTensor:
    """Logistic function ``scale / (1 + e^−x)`` for any input within the fixed-point range.

    Both modes use ``σ(x) = 1 − σ(−x)``: one batched MSB extraction gives the sign and whether
    ``|x| > 8`` (then σ saturates to 0/1, error ≤ 3.4e-4), and ``t = |x|``.

    * ``"accurate"``: ``e = e^−t`` for ``t ∈ [0, 8]`` (a degree-6 fit of ``e^z`` on [−2, 0] and
      two squarings; absolute error 1.2e-5), then ``1/(1 + e)`` with ``1 + e ∈ [1, 2]`` by two
      Newton steps from a minimax linear start. Max absolute error ≤ 4e-4 (saturation beyond
      ±8), ≲ 5e-5 for |x| ≤ 8. A ``scale`` other than 1 costs one more truncation.
    * ``"cheap"``: a degree-5 Chebyshev polynomial of σ on [0, 8], evaluated on the powers of
      ``t`` itself; max absolute error ≤ 9e-3. With ``s = 1 − 2·[x < 0]`` and ``k = [|x| < 8]``
      it computes ``scale·(1 − [x < 0]) + (k·s)·(scale·(p(t) − 1))`` with ``t = x·s``;
      ``scale`` is folded into the coefficients (free)
      and ``k·s`` rides along the powers (:func:`_times_keep_sign_poly`), so the rounds are
      one MSB extraction + 1 + three levels of products + 1 truncation (semi2k: 16; aby3:
      18), about half the accurate mode's.

    ``scale`` lets a caller fold a public factor (SGD's learning rate) into σ at no cost in
    the cheap mode.
    """
    if mode not in ("accurate", "cheap"):
        raise ConfigError(f"sigmoid mode must be 'accurate' or 'cheap', got {mode!r}")
    x = x.to_fxp()
    neg, below, above = msb_many([x, x - _SAT, -x - _SAT])
    keep = below + above - 1  # 1 where |x| < 8 (at least one of the two bits is always 1)
    if mode == "accurate":
        t = x - 2 * (neg * x)
        e = keep * _exp_neg(t)
        z = e + 1.0
        r = _INV12_A - z * _INV12_B
        for _ in range(2):
            r = r * (2.0 - z * r)
        out = r + neg * (1.0 - 2.0 * r)
        return out if scale == 1.0 else out * scale
    s = 1 - 2 * neg
    f = x.engine.fxp.frac_bits
    if 16 + 2 * f <= 61:  # t^5 ≤ 2^15 before truncation: powers of t itself fit the ring
        coeffs = [(_SIG5_T[0] - 1.0) * scale, *(c * scale for c in _SIG5_T[1:])]
        big = max(0, math.ceil(math.log2(max(abs(scale), 1.0))))
        extra = max(0, min(16, 57 - 2 * f - big))
        return _public_times_bits(1 - neg, scale) + _times_keep_sign_poly(x, keep, s, coeffs, extra)
    t, ks = _batched_int_mul([(x, s), (keep, s)])
    coeffs = [(_SIG5[0] - 1.0) * scale, *(c * scale for c in _SIG5[1:])]
    return _public_times_bits(1 - neg, scale) + polyval(coeffs, t * 0.25 - 1.0) * ks


def softmax(x: SecretTensor, axis: int = -1, *, bound: float = 16.0) -> SecretTensor:
    """``exp(x − max) / Σ exp(x − max)`` along ``axis``.

    Differences below ``−bound`` are clipped (their weight ``e^−bound`` = 1e-7 for 16 is treated
    as such). Absolute error ≲ 1e-4 per output; uses :func:`max`, :func:`exp` and
    :func:`reciprocal` (of a sum in [1, k]).
    """
    x = x.to_fxp()
    ax = axis % x.ndim
    m = smax(x, ax)
    shape_k = list(x.shape)
    shape_k[ax] = 1
    d = maximum(x - m.reshape(tuple(shape_k)), -bound)
    e = exp(d, bound=bound)
    s = e.sum(axis=ax, keepdims=True)
    k = x.shape[ax]
    r = reciprocal(s, lo_exp=-1, hi_exp=max(2, math.ceil(math.log2(k + 1)) + 1))
    return e * r


__all__ = ["sigmoid", "softmax"]

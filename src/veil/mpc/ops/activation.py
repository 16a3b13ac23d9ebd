"""Activations: sigmoid (accurate and cheap modes) and softmax."""

from __future__ import annotations

import math

from veil.errors import ConfigError
from veil.mpc.ops.compare import max as smax
from veil.mpc.ops.compare import maximum, msb_many
from veil.mpc.ops.exp import exp
from veil.mpc.ops.poly import polyval
from veil.mpc.ops.reciprocal import reciprocal
from veil.mpc.tensor import SecretTensor

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


def sigmoid(x: SecretTensor, *, mode: str = "accurate") -> SecretTensor:
    """Logistic function ``1/(1 + e^−x)`` for any input within the fixed-point range.

    Both modes use ``σ(x) = 1 − σ(−x)``: one batched MSB extraction gives the sign and whether
    ``|x| > 8`` (then σ saturates to 0/1, error ≤ 3.4e-4), and ``t = |x|``.

    * ``"accurate"``: ``e = e^−t`` for ``t ∈ [0, 8]`` (a degree-6 fit of ``e^z`` on [−2, 0] and
      two squarings; absolute error 1.2e-5), then ``1/(1 + e)`` with ``1 + e ∈ [1, 2]`` by two
      Newton steps from a minimax linear start. Max absolute error ≤ 4e-4 (saturation beyond
      ±8), ≲ 5e-5 for |x| ≤ 8.
    * ``"cheap"``: a degree-5 Chebyshev polynomial of σ on [0, 8]; max absolute error ≤ 9e-3,
      about half the rounds.
    """
    if mode not in ("accurate", "cheap"):
        raise ConfigError(f"sigmoid mode must be 'accurate' or 'cheap', got {mode!r}")
    x = x.to_fxp()
    neg, below, above = msb_many([x, x - _SAT, -x - _SAT])
    keep = below + above - 1  # 1 where |x| < 8 (at least one of the two bits is always 1)
    t = x - 2 * (neg * x)
    if mode == "accurate":
        e = keep * _exp_neg(t)
        z = e + 1.0
        r = _INV12_A - z * _INV12_B
        for _ in range(2):
            r = r * (2.0 - z * r)
    else:
        p = polyval(_SIG5, t * 0.25 - 1.0)
        r = keep * (p - 1.0) + 1.0
    return r + neg * (1.0 - 2.0 * r)


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

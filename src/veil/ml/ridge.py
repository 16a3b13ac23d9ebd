"""Ridge regression trained under MPC in closed form: Gram matrix + a secure matrix inverse.

``SSRidge(mpc, alpha).fit(X, y)`` takes a secret ``n × d`` matrix and secret targets (columns
of different parties concatenated inside the device) and returns secret coefficients: the
model equals ``sklearn.linear_model.Ridge(alpha, fit_intercept=True)`` on the same numbers, up
to fixed-point error. :func:`ridge_plain` is that model in float64 (the test oracle and the
plaintext baselines).

Method (all steps on secret shares; ``s = 2^round(log2 n)`` is a public power of two, exact in
fixed point):

1. Centre: ``x̄ = Σ x / n`` and ``ȳ`` (a sum, then ``2^-k`` and ``2^k/n`` so that the public
   factor keeps full relative precision), ``Xc = X − x̄``, ``yc = y − ȳ``.
2. ``A = (Xcᵀ Xc + α I) / s`` and ``b = Xcᵀ yc / s``, the products summed over row chunks so
   every partial sum stays inside the fixed-point range.
3. Newton–Schulz inverse: ``M₀ = I / tr(A)`` (a secure reciprocal), ``M ← M (2I − A M)``.
   Because ``A`` is symmetric positive definite and ``tr(A) ≥ λ_max``,
   ``I − M_k A = (I − M₀ A)^(2^k)`` has eigenvalues in ``[0, 1)`` and converges
   quadratically once ``2^k λ_min / tr(A) ≳ 1``. The number of steps is public:
   ``⌈log2(d · n / α)⌉ + 4`` by default, enough when the columns have unit variance (standardise
   first); fewer steps only slow step 4 down, never make it diverge.
4. Iterative refinement: ``w = M b``, then ``w ← w + M (b − A w)`` a few times. This removes the
   error of the approximate inverse; what remains is the fixed-point error of the residual,
   about ``√d · 2^-f`` per entry, amplified by at most ``1/λ_min(A)`` in the directions the
   data barely span — which move predictions by only about ``2^-f · √d / √λ_min``.
5. ``intercept = ȳ − x̄ · w``.

:meth:`SSRidge.fit_stats` starts from sufficient statistics instead (``XᵀX``, ``Xᵀy``, ``Σx``,
``Σy``): in a vertical split each owner computes the blocks over its own columns in plaintext
and only the cross-party blocks need secure products (:func:`gram`) — the demand job's utility
block is 103 of 145 columns, which saves about 70 % of the secure Gram work. With
``lead_inverse`` (the owner of the first ``q`` columns inverts its penalised block in plaintext,
:func:`lead_block_inverse`, and shares the inverse ``P``), step 3 becomes block elimination:
only the Schur complement ``S = A_rr − A_ru P A_ur`` (``(d−q)²``) is inverted by Newton–Schulz,
and ``M`` is applied as ``t_r = S⁻¹(r_r − A_ru P r_u)``, ``t_u = P r_u − P A_ur t_r``; step 4
refines against the full ``A`` as before. ``P`` is a function of the owner's own columns only.

Cost: ``⌈n / chunk⌉`` products ``d × m @ m × d`` for the Gram matrix, one reciprocal, then
``2`` ``d × d`` products per Newton–Schulz step and ``2`` ``d × d @ d`` products per refinement.

Threat model: that of the device's protocol (semi2k: semi-honest, dishonest majority, trusted
dealer; aby3: semi-honest, honest majority). Nothing is opened: the coefficients, intercept and
predictions stay secret until the job reveals them with ``ctx.reveal``. Public: ``n``, ``d``,
``alpha`` and the step counts.

Range: values of order one (standardised columns). The Newton–Schulz iterate holds
``(A)⁻¹`` with entries up to ``s / α``, which must stay below ``2^16`` (``ConfigError``
otherwise: raise ``alpha``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from veil.errors import ConfigError, DataError
from veil.mpc import SecretTensor, reciprocal

Array = np.ndarray[Any, Any]

#: Largest allowed ``s / alpha`` (the largest entry of the inverse, see module docstring).
MAX_INVERSE = 2.0**16


def lead_block_inverse(U: Array, alpha: float) -> Array:
    """At the owner of the first ``q`` columns: ``A[:q, :q]⁻¹`` of :meth:`SSRidge.fit_stats`'s
    system, ``s · (UcᵀUc + αI)⁻¹`` over the training rows ``U`` (plaintext, float64)."""
    U = np.asarray(U, dtype=np.float64)
    Uc = U - U.mean(axis=0)
    s = 2.0 ** _pow2_scale(U.shape[0])
    out: Array = s * np.linalg.inv(Uc.T @ Uc + alpha * np.eye(U.shape[1]))
    return out


def ridge_plain(X: Array, y: Array, alpha: float) -> tuple[Array, float]:
    """Ridge with an unpenalised intercept in float64: ``(coef, intercept)``.

    Same model as ``sklearn.linear_model.Ridge(alpha=alpha)``: centre ``X`` and ``y``, solve
    ``(XcᵀXc + αI) w = Xcᵀ yc``, intercept ``ȳ − x̄·w``.
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if X.ndim != 2 or X.shape[0] != y.shape[0] or X.shape[0] < 2:
        raise DataError(f"ridge needs X (n × d) and y (n,), got {X.shape} and {y.shape}")
    mx, my = X.mean(axis=0), float(y.mean())
    Xc = X - mx
    A = Xc.T @ Xc + alpha * np.eye(X.shape[1])
    w = np.linalg.solve(A, Xc.T @ (y - my))
    return w, my - float(mx @ w)


def _pow2_scale(n: int) -> int:
    """``k`` with ``2^k`` the power of two nearest ``n``."""
    return max(0, round(math.log2(max(n, 1))))


def secure_mean(x: SecretTensor, n: int) -> SecretTensor:
    """Column means of a secret ``n × …`` tensor, with full relative precision of ``1/n``.

    ``x.sum(0)`` is exact; multiplying by ``2^-k`` is exact in fixed point and ``2^k / n`` lies
    in ``(0.7, 1.5)``, so its encoding keeps ``f`` bits (a plain ``× 1/n`` would keep only
    ``f − log2 n``).
    """
    k = _pow2_scale(n)
    return (x.to_fxp().sum(axis=0) * 2.0**-k) * (2.0**k / n)


def gram(a: SecretTensor, b: SecretTensor, chunk_rows: int = 4096, scale: float = 1.0) -> Any:
    """``aᵀ b`` of two secret tensors with the same rows, summed over chunks of ``chunk_rows``
    rows (each partial product stays inside the fixed-point range), each times ``scale``."""
    n = a.shape[0]
    if b.shape[0] != n:
        raise DataError(f"gram needs the same rows, got {a.shape} and {b.shape}")
    out = None
    for start in range(0, n, chunk_rows):
        part = a[start : start + chunk_rows].T @ b[start : start + chunk_rows]
        if scale != 1.0:
            part = part * scale
        out = part if out is None else out + part
    return out


@dataclass
class SSRidge:
    """Closed-form ridge regression on secret-shared data (see module docstring).

    Parameters
    ----------
    device:
        The MPC device holding the data.
    alpha:
        L2 penalty on the coefficients (sklearn's ``alpha``); the intercept is not penalised.
    ns_steps:
        Newton–Schulz steps (public); default ``⌈log2(d · n / α)⌉ + 4``.
    refine_steps:
        Iterative-refinement steps after the inverse.
    chunk_rows:
        Rows per partial Gram product (bounds the fixed-point magnitude of each partial sum).
    """

    device: Any
    alpha: float = 1.0
    ns_steps: int | None = None
    refine_steps: int = 3
    chunk_rows: int = 4096

    def __post_init__(self) -> None:
        if not self.alpha > 0 or self.refine_steps < 0 or self.chunk_rows < 1:
            raise ConfigError("need alpha > 0, refine_steps >= 0 and chunk_rows >= 1")
        if self.ns_steps is not None and self.ns_steps < 1:
            raise ConfigError("ns_steps must be at least 1")
        self.coef_: SecretTensor | None = None
        self.intercept_: SecretTensor | None = None
        self.ns_steps_used_ = 0

    def _check_range(self, n: int) -> int:
        k = _pow2_scale(n)
        if 2.0**k / self.alpha > MAX_INVERSE:
            raise ConfigError(
                f"alpha={self.alpha:g} is too small for {n} rows in fixed point: the inverse "
                f"would exceed 2^16; use alpha >= {2.0**k / MAX_INVERSE:g}"
            )
        return k

    def fit(self, X: SecretTensor, y: SecretTensor) -> SSRidge:
        """Fit on secret ``X`` (n × d) and ``y`` (n,); the results stay secret."""
        if X.ndim != 2:
            raise DataError(f"X must be a matrix, got shape {X.shape}")
        n = X.shape[0]
        if n < 2:
            raise DataError("ridge needs at least two rows")
        y = y.reshape(n) if y.shape != (n,) else y
        k = self._check_range(n)
        X = X.to_fxp()
        mx = secure_mean(X, n)
        my = secure_mean(y.to_fxp(), n)
        Xc = X - mx
        yc = (y.to_fxp() - my).reshape(n, 1)
        A = gram(Xc, Xc, self.chunk_rows, scale=2.0**-k)
        b = gram(Xc, yc, self.chunk_rows, scale=2.0**-k)
        return self._solve(A, b, mx, my, n, k)

    def fit_stats(
        self,
        xtx: SecretTensor,
        xty: SecretTensor,
        x_sum: SecretTensor,
        y_sum: SecretTensor,
        n: int,
        *,
        lead_inverse: SecretTensor | None = None,
    ) -> SSRidge:
        """Fit from sufficient statistics of the training rows: ``XᵀX`` (d × d), ``Xᵀy`` (d,),
        ``Σx`` (d,) and ``Σy`` — uncentred, unscaled, secret.

        In a vertical split each owner computes the blocks of ``XᵀX`` and ``Σx`` over its own
        columns in plaintext and shares them; only cross-party blocks need secure products
        (see :func:`gram`). Centring happens here: ``XcᵀXc = XᵀX − n·x̄x̄ᵀ``. The raw sums must
        stay inside the fixed-point range (below about ``2^(26 + log2 n)``): centre or
        standardise columns at their owners first.

        ``lead_inverse``: the inverse of the leading ``q × q`` block of the system, computed in
        plaintext by the owner of those ``q`` columns (:func:`lead_block_inverse`) and shared.
        The solve then inverts only the ``(d − q) × (d − q)`` Schur complement securely (block
        elimination), and refinement against the full system removes the approximation.
        """
        d = xtx.shape[0]
        if xtx.shape != (d, d) or xty.size != d or x_sum.size != d:
            raise DataError(f"inconsistent statistics: {xtx.shape}, {xty.shape}, {x_sum.shape}")
        k = self._check_range(n)
        sc, ratio = 2.0**-k, 2.0**k / n
        mx = (x_sum.to_fxp().reshape(d) * sc) * ratio
        my = (y_sum.to_fxp().reshape(()) * sc) * ratio
        outer = mx.reshape(d, 1) @ mx.reshape(1, d)
        A = xtx.to_fxp() * sc - outer * (n * sc)
        b = (xty.to_fxp().reshape(d, 1) * sc) - mx.reshape(d, 1) * (my * (n * sc))
        return self._solve(A, b, mx, my, n, k, lead_inverse)

    def _newton_schulz(self, A: SecretTensor, n: int) -> SecretTensor:
        """Approximate ``A⁻¹`` of a symmetric positive definite secret matrix."""
        d = A.shape[0]
        eye = np.eye(d)
        M = reciprocal((A * eye).sum()) * eye
        steps = self.ns_steps or math.ceil(math.log2(d * n / self.alpha)) + 4
        for _ in range(steps):
            M = M @ (-(A @ M) + 2.0 * eye)
        self.ns_steps_used_ = steps
        return M

    def _schur(self, A: SecretTensor, P: SecretTensor, n: int) -> Callable[[Any], Any]:
        """Block-elimination inverse of ``A`` given ``P ≈ A[:q, :q]⁻¹`` (as an operator)."""
        from veil.mpc import concatenate

        q = P.shape[0]
        A_ur, A_ru = A[:q, q:], A[q:, :q]
        PA = P @ A_ur
        S_inv = self._newton_schulz(A[q:, q:] - A_ru @ PA, n)

        def apply(r: Any) -> Any:
            Pr = P @ r[:q]
            t_r = S_inv @ (r[q:] - A_ru @ Pr)
            return concatenate([Pr - PA @ t_r, t_r])

        return apply

    def _solve(
        self,
        A: SecretTensor,
        b: SecretTensor,
        mx: SecretTensor,
        my: SecretTensor,
        n: int,
        k: int,
        lead_inverse: SecretTensor | None = None,
    ) -> SSRidge:
        """``(A + α/s I) w = b`` by Newton–Schulz + refinement; ``A``, ``b`` centred and / s."""
        d = A.shape[0]
        A = A + np.eye(d) * (self.alpha * 2.0**-k)
        apply: Callable[[Any], Any]
        if lead_inverse is None:
            M = self._newton_schulz(A, n)
            apply = M.__matmul__
        else:
            q = lead_inverse.shape
            if len(q) != 2 or q[0] != q[1] or q[0] >= d:
                raise DataError(f"lead_inverse must be q × q with q < {d}, got {q}")
            apply = self._schur(A, lead_inverse.to_fxp(), n)
        w = apply(b)
        for _ in range(self.refine_steps):
            w = w + apply(b - A @ w)
        w = w.reshape(d)
        self.coef_ = w
        self.intercept_ = my.reshape(()) - (mx.reshape(1, d) @ w.reshape(d, 1)).reshape(())
        return self

    def predict(self, X: SecretTensor) -> SecretTensor:
        """Secret predictions ``X w + b`` (n,)."""
        if self.coef_ is None or self.intercept_ is None:
            raise ConfigError("fit the model first")
        d = self.coef_.shape[0]
        if X.ndim != 2 or X.shape[1] != d:
            raise DataError(f"X must have {d} columns, got shape {X.shape}")
        return (X.to_fxp() @ self.coef_.reshape(d, 1)).reshape(X.shape[0]) + self.intercept_


__all__ = ["MAX_INVERSE", "SSRidge", "gram", "lead_block_inverse", "ridge_plain", "secure_mean"]

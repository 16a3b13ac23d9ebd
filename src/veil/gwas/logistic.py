"""Pooled logistic regression (PLINK ``--logistic``) driven only by summed derivatives.

:class:`LogisticFit` is a sans-I/O state machine for Newton-Raphson over all variants at once.
Each round it asks for the score and information of the variants still iterating, evaluated at
coefficients it publishes (:meth:`LogisticFit.request`); the sites compute them on their own
subjects (:func:`veil.gwas.suffstats.site_logistic_derivatives`) and only their **sums** are
fed to :meth:`LogisticFit.step`. The MLE therefore equals the pooled fit exactly.

Convergence follows PLINK 1.9's ``logistic_regression`` (``plink_glm.c``), in float64:

* step ``d = H^-1 g``, ``delta = sum |d|``; NaN -> failure;
* after iteration 4: failure if ``delta > 20`` and ``delta > 2 * min(delta)``, or (from
  iteration 8) ``|1 - delta| < 1e-3`` (the signature of perfect separation); at iteration 15
  stop, failing if any ``|coef| > 8e3`` or if ``delta >= 1e-4`` (PLINK's single-precision
  tolerance: in single precision PLINK's fitted probabilities saturate under perfect
  separation and the fit fails; in double precision they do not, so a fit that still moves
  at the limit is reported as failed, which gives NA where PLINK gives NA);
* converged when ``delta < tol`` (PLINK: 1e-4 in single precision; here 1e-10 by default so the
  result matches a double-precision pooled fit to ~1e-10), failing if any ``|coef| > 6e4``;
* the covariance is ``H^-1`` from the last round (as PLINK); it fails PLINK's
  ``validParameters`` check when a variance is < 1e-20 or a correlation exceeds 0.99999.

A failed variant (monomorphic, perfectly separated, singular design, ``N <= p``) reports NA.
Unlike PLINK (which starts every variant at zero) the fit may start at the covariates-only
MLE, which saves rounds and does not change any converged result (the MLE is unique).

Reveals: the coefficients of each round are public to all sites (they must evaluate at them);
together with the summed derivatives they reveal no more than the final pooled fit does about
the pooled data's likelihood surface, but nothing per site.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.special import ndtr

from veil.errors import ProtocolError

F64 = npt.NDArray[np.float64]

ACTIVE, CONVERGED, FAILED = 0, 1, 2
#: determinant of the unit-diagonal scaled matrix below which it is treated as singular
SINGULAR_DET = 1e-13
#: PLINK's own convergence threshold (single precision); a fit still moving by more at the
#: iteration limit has not converged (perfect separation: the coefficients keep growing)
PLINK_TOL = 1e-4


@dataclass(frozen=True)
class LogisticResult:
    """Per-variant result of the genotype (ADD) term.

    Attributes
    ----------
    beta, se, z, p:
        ``(V,)`` coefficient, standard error, Wald statistic and two-sided P (NaN where failed).
    odds_ratio:
        ``exp(beta)``.
    nobs:
        Subjects used per variant.
    coef:
        ``(V, p)`` all coefficients (``[ADD, intercept, covariates]``); NaN rows where failed.
    iterations:
        Newton rounds run in total (the number of federated rounds).
    """

    beta: F64
    se: F64
    z: F64
    p: F64
    odds_ratio: F64
    nobs: F64
    coef: F64
    iterations: int


class LogisticFit:
    """Newton-Raphson for ``V`` logistic regressions with ``p`` parameters, on summed inputs.

    Parameters
    ----------
    nobs:
        ``(V,)`` subjects with a call per variant (summed over sites).
    n_params:
        ``p``, the number of coefficients per variant.
    start:
        ``(p,)`` or ``(V, p)`` starting coefficients (default zeros, as PLINK).
    intercept:
        Index of the intercept column (excluded from the variance check, as in PLINK).
    tol:
        Convergence threshold on ``sum |step|``.
    max_iter:
        PLINK's hard stop (15).
    """

    def __init__(
        self,
        nobs: F64,
        n_params: int,
        start: F64 | None = None,
        *,
        intercept: int = 1,
        tol: float = 1e-10,
        max_iter: int = 15,
    ) -> None:
        v = int(nobs.shape[0])
        self.n_params = n_params
        self.intercept = intercept
        self.tol = tol
        self.max_iter = max_iter
        self.nobs = np.asarray(nobs, dtype=np.float64)
        self.coef = np.zeros((v, n_params))
        if start is not None:
            self.coef[:] = start
        self.cov = np.full((v, n_params, n_params), np.nan)
        self.status = np.full(v, ACTIVE, dtype=np.int8)
        self.status[self.nobs <= n_params] = FAILED
        self.min_delta = np.full(v, 1e9)
        self.iteration = 0

    @property
    def done(self) -> bool:
        """True when no variant is still iterating."""
        return not bool(np.any(self.status == ACTIVE))

    def request(self) -> tuple[npt.NDArray[np.intp], F64]:
        """The variants to evaluate next and their current coefficients ``(A,)``, ``(A, p)``."""
        idx = np.flatnonzero(self.status == ACTIVE)
        return idx, self.coef[idx]

    def step(self, summed_grad: F64, summed_hess: F64) -> bool:
        """Apply one Newton step from the summed score ``(A, p)`` and information ``(A, p, p)``.

        The rows must be those of the last :meth:`request`. Returns :attr:`done`.
        """
        idx = np.flatnonzero(self.status == ACTIVE)
        p = self.n_params
        if summed_grad.shape != (idx.size, p) or summed_hess.shape != (idx.size, p, p):
            raise ProtocolError(
                f"logistic step expects ({idx.size}, {p}) and ({idx.size}, {p}, {p}) arrays, got "
                f"{summed_grad.shape} and {summed_hess.shape}"
            )
        self.iteration += 1
        it = self.iteration
        inv, ok = spd_inverse(summed_hess)
        d = np.einsum("ijk,ik->ij", np.where(ok[:, None, None], inv, 0.0), summed_grad)
        delta = np.abs(d).sum(axis=1)
        fail = ~ok | ~np.isfinite(delta)
        delta = np.where(fail, np.inf, delta)
        self.min_delta[idx] = np.minimum(self.min_delta[idx], delta)
        coef = self.coef[idx] + np.where(fail[:, None], 0.0, d)
        self.coef[idx] = coef
        big = np.abs(coef)
        finished = np.zeros(idx.size, dtype=np.bool_)
        if it > 4:
            diverge = (delta > 20.0) & (delta > 2.0 * self.min_delta[idx])
            diverge |= (it >= 8) & (np.abs(1.0 - delta) < 1e-3)
            fail |= diverge
            if it >= self.max_iter:
                fail |= np.any(big > 8e3, axis=1) | ~(delta < PLINK_TOL)
                finished |= ~fail
        conv = ~fail & ~finished & (delta < self.tol)
        fail |= conv & np.any(big > 6e4, axis=1)
        finished |= conv & ~fail
        if np.any(finished):
            cov = inv[finished]
            good = _valid_covariance(cov, self.intercept)
            f_idx = idx[finished]
            self.cov[f_idx] = cov
            self.status[f_idx] = np.where(good, CONVERGED, FAILED)
        self.status[idx[fail]] = FAILED
        return self.done

    def result(self) -> LogisticResult:
        """The ADD term of every variant (NaN where the fit failed)."""
        if not self.done:
            raise ProtocolError("logistic fit asked for its result before it converged")
        good = self.status == CONVERGED
        beta = np.where(good, self.coef[:, 0], np.nan)
        se = np.where(good, np.sqrt(self.cov[:, 0, 0]), np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            z = beta / se
        pval = 2.0 * ndtr(-np.abs(z))
        coef = np.where(good[:, None], self.coef, np.nan)
        return LogisticResult(beta, se, z, pval, np.exp(beta), self.nobs, coef, self.iteration)


def spd_inverse(a: F64) -> tuple[F64, npt.NDArray[np.bool_]]:
    """Invert stacked symmetric positive definite matrices ``(n, p, p)``.

    The matrices are scaled to unit diagonal first; a row whose scaled determinant is below
    ``1e-13`` (or with a non-positive diagonal) is reported singular (``ok`` False, inverse
    NaN) instead of raising for the whole stack. ``p <= 3`` uses closed forms (fast, batched).
    """
    p = a.shape[1]
    diag = np.einsum("ijj->ij", a)
    ok = np.all(diag > 0, axis=1) & np.all(np.isfinite(a), axis=(1, 2))
    s = 1.0 / np.sqrt(np.where(diag > 0, diag, 1.0))
    c = a * s[:, :, None] * s[:, None, :]
    c = np.where(ok[:, None, None], c, np.eye(p))
    inv, det = _unit_inverse(c)
    ok &= det > SINGULAR_DET
    inv = inv * s[:, :, None] * s[:, None, :]
    inv[~ok] = np.nan
    return inv, ok


def _unit_inverse(c: F64) -> tuple[F64, F64]:
    p = c.shape[1]
    if p == 1:
        return 1.0 / c, c[:, 0, 0]
    if p == 2:
        det = c[:, 0, 0] * c[:, 1, 1] - c[:, 0, 1] * c[:, 1, 0]
        safe = np.where(det > 0, det, 1.0)
        inv = np.empty_like(c)
        inv[:, 0, 0] = c[:, 1, 1] / safe
        inv[:, 1, 1] = c[:, 0, 0] / safe
        inv[:, 0, 1] = -c[:, 0, 1] / safe
        inv[:, 1, 0] = -c[:, 1, 0] / safe
        return inv, det
    if p == 3:
        a, b, cc = c[:, 0, 0], c[:, 0, 1], c[:, 0, 2]
        d, e, f = c[:, 1, 1], c[:, 1, 2], c[:, 2, 2]
        m00 = d * f - e * e
        m01 = cc * e - b * f
        m02 = b * e - cc * d
        m11 = a * f - cc * cc
        m12 = b * cc - a * e
        m22 = a * d - b * b
        det = a * m00 + b * m01 + cc * m02
        safe = np.where(det > 0, det, 1.0)
        inv = (
            np.stack(
                [
                    np.stack([m00, m01, m02], -1),
                    np.stack([m01, m11, m12], -1),
                    np.stack([m02, m12, m22], -1),
                ],
                axis=1,
            )
            / safe[:, None, None]
        )
        return inv, det
    sign, logdet = np.linalg.slogdet(c)
    det = np.where(sign > 0, np.exp(logdet), 0.0)
    inv = np.full_like(c, np.nan)
    good = det > SINGULAR_DET
    if np.any(good):
        inv[good] = np.linalg.inv(c[good])
    return inv, det


def solve_spd(a: F64, b: F64) -> tuple[F64, npt.NDArray[np.bool_]]:
    """Solve stacked ``a[i] x[i] = b[i]`` (SPD ``a``); ``ok`` False (``x`` 0) where singular."""
    inv, ok = spd_inverse(a)
    x = np.einsum("ijk,ik->ij", np.where(ok[:, None, None], inv, 0.0), b)
    return x, ok


def _valid_covariance(cov: F64, intercept: int) -> npt.NDArray[np.bool_]:
    diag = np.einsum("ijj->ij", cov)
    check = np.delete(diag, intercept, axis=1)
    good = np.all(np.isfinite(check) & (check >= 1e-20), axis=1)
    sd = np.sqrt(np.abs(diag))
    corr_bound = 0.99999 * sd[:, :, None] * sd[:, None, :]
    tri = np.tril(np.ones(cov.shape[1:], dtype=np.bool_), k=-1)
    too_corr = np.any((cov > corr_bound) & tri, axis=(1, 2))
    out: npt.NDArray[np.bool_] = good & ~too_corr
    return out

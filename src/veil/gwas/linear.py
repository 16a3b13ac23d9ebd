"""Pooled linear regression (PLINK ``--linear``) from summed ``X'X``, ``X'y``, ``y'y``.

The per-variant design is ``[ADD, intercept, covariates]`` over the subjects with a call;
the sites' :class:`~veil.gwas.suffstats.LinearMoments` are summed (securely) and this module
solves all variants at once. PLINK 1.9's validity checks (``plink_glm.c``) are reproduced from
the moments alone: the VIF check on the predictors' correlation matrix (any correlation >
0.999 or VIF > 50 -> NA), ``N > p``, positive variances and no parameter correlation above
0.99999 in ``(X'X)^-1``, and ``sigma^2 S_ii >= 1e-20``.

Reveals: only the summed moments (and the results derived from them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.special import stdtr

from veil.gwas.logistic import solve_spd
from veil.gwas.suffstats import LinearMoments

F64 = npt.NDArray[np.float64]
#: PLINK's default --vif threshold
VIF_THRESHOLD = 50.0


@dataclass(frozen=True)
class LinearResult:
    """ADD term per variant (NaN = NA): BETA, SE, T (STAT), P, and NMISS."""

    beta: F64
    se: F64
    t: F64
    p: F64
    nobs: F64


def vif_ok(
    m: LinearMoments, intercept: int = 1, threshold: float = VIF_THRESHOLD
) -> npt.NDArray[np.bool_]:
    """PLINK's ``glm_check_vif`` per variant, from the moments (predictors without intercept)."""
    n = m.nobs
    keep = [j for j in range(m.xtx.shape[1]) if j != intercept]
    sums = m.xtx[:, intercept, keep]
    cross = m.xtx[:, keep][:, :, keep]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = sums / n[:, None]
        cov = (cross - n[:, None, None] * mean[:, :, None] * mean[:, None, :]) / (
            n[:, None, None] - 1.0
        )
        var = np.einsum("ijj->ij", cov)
        good = np.all(np.isfinite(var) & (var != 0), axis=1)
        sd = np.sqrt(np.where(good[:, None], var, 1.0))
        corr = cov / (sd[:, :, None] * sd[:, None, :])
    k = len(keep)
    if k == 1:
        only: npt.NDArray[np.bool_] = good
        return only
    tri = np.triu(np.ones((k, k), dtype=np.bool_), k=1)
    good &= ~np.any((corr > 0.999) & tri, axis=(1, 2))
    corr = np.where(good[:, None, None], corr, np.eye(k))
    corr[:, np.arange(k), np.arange(k)] = 1.0
    _, inv_ok = solve_spd(corr, np.zeros((corr.shape[0], k)))
    good &= inv_ok
    vif = np.full((corr.shape[0], k), np.inf)
    if np.any(good):
        vif[good] = np.einsum("ijj->ij", np.linalg.inv(corr[good]))
    out: npt.NDArray[np.bool_] = good & np.all(vif <= threshold, axis=1)
    return out


def pooled_linear(m: LinearMoments, intercept: int = 1) -> LinearResult:
    """Solve every variant's least squares from summed moments; NA where PLINK gives NA."""
    v, p, _ = m.xtx.shape
    good = (m.nobs > p) & vif_ok(m, intercept)
    beta_all, solved = solve_spd(m.xtx, m.xty)
    good &= solved
    beta = np.full(v, np.nan)
    se = np.full(v, np.nan)
    if np.any(good):
        xtx = m.xtx[good]
        b = beta_all[good]
        inv = np.linalg.inv(xtx)
        rss = m.yty[good] - np.einsum("ij,ij->i", b, m.xty[good])
        sigma2 = rss / (m.nobs[good] - p)
        diag = np.einsum("ijj->ij", inv)
        sd = np.sqrt(np.abs(diag))
        tri = np.tril(np.ones((p, p), dtype=np.bool_), k=-1)
        ok = ~np.any((inv > 0.99999 * sd[:, :, None] * sd[:, None, :]) & tri, axis=(1, 2))
        others = np.delete(diag, intercept, axis=1)
        ok &= np.all(others > 0, axis=1) & np.all(sigma2[:, None] * others >= 1e-20, axis=1)
        idx = np.flatnonzero(good)
        beta[idx[ok]] = b[ok, 0]
        se[idx[ok]] = np.sqrt(sigma2[ok] * diag[ok, 0])
    with np.errstate(invalid="ignore", divide="ignore"):
        t = beta / se
    df = m.nobs - p
    pval = np.where(np.isfinite(t), 2.0 * stdtr(np.maximum(df, 1.0), -np.abs(t)), np.nan)
    return LinearResult(beta, se, t, pval, m.nobs)

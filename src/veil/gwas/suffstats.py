"""Per-site sufficient statistics for federated GWAS, vectorised over all variants.

Every ``site_*`` function runs inside one hospital on its own subjects and returns arrays whose
**sum over hospitals** is all the pooled computation needs (the ``pooled_*`` functions of
:mod:`veil.gwas.qc`, :mod:`veil.gwas.assoc`, :mod:`veil.gwas.linear` and
:class:`veil.gwas.logistic.LogisticFit` consume only such sums). Nothing here talks to a peer.

Conventions
-----------
* ``genotypes``: ``(V, n)`` int8 count of the analysis allele (A1), ``-1`` for a missing call.
  A subject with a missing call drops out of that variant's statistics only, so every
  per-variant array carries its own subject count.
* Regression design: parameters are ordered ``[ADD, intercept, covariates...]``; ``Z`` is the
  ``(n, q)`` matrix ``[1, covariates]`` of the analysed subjects (no missing values).

Threat model / what is revealed: these arrays are per-site and must only leave the site through
secure aggregation (only their sums are revealed). Their sums are exactly what pooled PLINK
computes from: genotype counts per phenotype class, and per Newton iteration the gradient and
Hessian of the log-likelihood at public coefficients (or ``X'X``, ``X'y``, ``y'y``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.special import expit

#: variants per block in the streamed kernels (keeps a block of float64 rows in cache)
BLOCK = 256
#: float64 elements per block of the dense logistic kernel: small enough to stay in L2 and to
#: keep BLAS single-threaded on its skinny products (which thrash when threaded)
BLOCK_ELEMENTS = 1 << 16

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

#: group axis of :func:`site_genotype_counts`
GROUP_ALL, GROUP_CASE, GROUP_CONTROL = 0, 1, 2
#: genotype axis of :func:`site_genotype_counts` (``MISSING`` is the last slot)
MISSING = 3


def site_group_counts(
    genotypes: npt.NDArray[np.int8], group: npt.NDArray[np.intp], n_groups: int
) -> I64:
    """Count each genotype per variant within each subject group (local, exact).

    Parameters
    ----------
    genotypes:
        ``(V, n)`` A1 counts, ``-1`` missing.
    group:
        ``(n,)`` group id of each subject in ``[0, n_groups)``.

    Returns
    -------
    ``(V, n_groups, 3)`` int64: subjects of the group with 0, 1, 2 copies (missing calls are
    the group size minus their sum). The subjects are ordered by group once, then each group's
    contiguous columns are counted with ``count_nonzero`` (no BLAS, exact).
    """
    v = genotypes.shape[0]
    order = np.argsort(group, kind="stable")
    bounds = np.searchsorted(group[order], np.arange(n_groups + 1))
    out = np.zeros((v, n_groups, 3), dtype=np.int64)
    step = 16 * BLOCK
    for start in range(0, v, step):
        block = genotypes[start : start + step][:, order]
        for g in range(n_groups):
            cols = block[:, bounds[g] : bounds[g + 1]]
            if cols.shape[1] == 0:
                continue
            for k in (0, 1, 2):
                out[start : start + step, g, k] = np.count_nonzero(cols == k, axis=1)
    return out


def site_genotype_counts(genotypes: npt.NDArray[np.int8], status: npt.NDArray[np.int8]) -> I64:
    """Genotype counts per variant for all subjects, cases and controls.

    Parameters
    ----------
    genotypes:
        ``(V, n)`` A1 counts, ``-1`` missing.
    status:
        ``(n,)`` 1 case, 0 control, -1 anything else (missing or quantitative phenotype).

    Returns
    -------
    ``(V, 3, 4)`` int64: ``[group, genotype]`` with groups ``(all, case, control)`` and genotype
    slots ``(0, 1, 2, missing)``.
    """
    group = np.where(status == 1, 1, np.where(status == 0, 2, 0)).astype(np.intp)
    fine = site_group_counts(genotypes, group, 3)
    sizes = np.bincount(group, minlength=3)
    return counts_by_status(fine, sizes, np.array([2, 1, 0]))


def counts_by_status(fine: I64, sizes: I64, group_status: npt.NDArray[np.intp]) -> I64:
    """Collapse per-group counts ``(V, G, 3)`` to ``(V, 3, 4)`` (all, case, control).

    ``group_status[g]`` is 1 for a group of cases, 0 for controls, anything else otherwise.
    """
    v = fine.shape[0]
    out = np.zeros((v, 3, 4), dtype=np.int64)
    for slot, sel in (
        (GROUP_ALL, np.ones(group_status.shape, dtype=np.bool_)),
        (GROUP_CASE, group_status == 1),
        (GROUP_CONTROL, group_status == 0),
    ):
        out[:, slot, :3] = fine[:, sel].sum(axis=1)
        out[:, slot, MISSING] = int(sizes[sel].sum()) - out[:, slot, :3].sum(axis=1)
    return out


def site_sample_missing(genotypes: npt.NDArray[np.int8]) -> I64:
    """Missing calls per subject, ``(n,)`` (local; used for ``--mind``, never sent)."""
    out: I64 = np.asarray(np.count_nonzero(genotypes < 0, axis=0), dtype=np.int64)
    return out


@dataclass(frozen=True)
class LinearMoments:
    """Per-variant moments of one site (or, summed, of all sites) for ``--linear``.

    Attributes
    ----------
    xtx: ``(V, p, p)``; xty: ``(V, p)``; yty: ``(V,)``; nobs: ``(V,)`` subjects used.
    """

    xtx: F64
    xty: F64
    yty: F64
    nobs: F64

    def __add__(self, other: LinearMoments) -> LinearMoments:
        return LinearMoments(
            self.xtx + other.xtx,
            self.xty + other.xty,
            self.yty + other.yty,
            self.nobs + other.nobs,
        )


def _block(genotypes: npt.NDArray[np.int8], rows: slice | npt.NDArray[np.intp]) -> tuple[F64, F64]:
    gc = genotypes[rows]
    mask = (gc >= 0).astype(np.float64)
    g = np.maximum(gc, 0).astype(np.float64)
    return g, mask


def site_linear_moments(genotypes: npt.NDArray[np.int8], y: F64, Z: F64) -> LinearMoments:
    """``X'X``, ``X'y``, ``y'y`` and the subject count per variant over non-missing calls.

    ``X = [g, Z]`` per variant, restricted to the subjects whose call is not missing.
    """
    v = genotypes.shape[0]
    q = Z.shape[1]
    p = q + 1
    zz = (Z[:, :, None] * Z[:, None, :]).reshape(Z.shape[0], q * q)
    right_m = np.concatenate([zz, Z * y[:, None], (y * y)[:, None], np.ones((Z.shape[0], 1))], 1)
    right_g = np.concatenate([Z, y[:, None]], axis=1)
    xtx = np.empty((v, p, p))
    xty = np.empty((v, p))
    yty = np.empty(v)
    nobs = np.empty(v)
    block = int(np.clip(BLOCK_ELEMENTS // max(Z.shape[0], 1), 8, BLOCK))
    for start in range(0, v, block):
        sl = slice(start, min(start + block, v))
        g, mask = _block(genotypes, sl)
        am = mask @ right_m
        ag = g @ right_g
        xtx[sl, 0, 0] = np.einsum("ij,ij->i", g, g)
        xtx[sl, 0, 1:] = ag[:, :q]
        xtx[sl, 1:, 0] = ag[:, :q]
        xtx[sl, 1:, 1:] = am[:, : q * q].reshape(-1, q, q)
        xty[sl, 0] = ag[:, q]
        xty[sl, 1:] = am[:, q * q : q * q + q]
        yty[sl] = am[:, q * q + q]
        nobs[sl] = am[:, q * q + q + 1]
    return LinearMoments(xtx, xty, yty, nobs)


def site_nonmissing(genotypes: npt.NDArray[np.int8]) -> F64:
    """Subjects with a call, per variant, ``(V,)`` float64 (summed: the NMISS column)."""
    out: F64 = np.asarray(np.count_nonzero(genotypes >= 0, axis=1), dtype=np.float64)
    return out


@dataclass(frozen=True)
class DenseDesign:
    """A site's regression data laid out for the dense logistic kernel (local only).

    Attributes
    ----------
    g:
        ``(V, n)`` int8 A1 counts with missing calls set to 0 (so they add nothing to the
        genotype terms).
    miss_ptr, miss_col:
        The missing calls in CSR form: variant ``v`` misses subjects
        ``miss_col[miss_ptr[v]:miss_ptr[v + 1]]`` (their intercept/covariate terms are
        subtracted after the dense pass).
    y, Z:
        ``(n,)`` 0/1 phenotype and ``(n, q)`` ``[1, covariates]``.
    """

    g: npt.NDArray[np.int8]
    miss_ptr: npt.NDArray[np.intp]
    miss_col: npt.NDArray[np.intp]
    y: F64
    Z: F64


def dense_design(genotypes: npt.NDArray[np.int8], y: F64, Z: F64) -> DenseDesign:
    """Build :class:`DenseDesign` from ``(V, n)`` genotypes (``-1`` missing)."""
    missing = genotypes < 0
    rows, cols = np.nonzero(missing)
    ptr = np.zeros(genotypes.shape[0] + 1, dtype=np.intp)
    np.cumsum(np.bincount(rows, minlength=genotypes.shape[0]), out=ptr[1:])
    g = np.where(missing, 0, genotypes).astype(np.int8)
    return DenseDesign(g, ptr, cols.astype(np.intp), y, Z)


def dense_logistic_derivatives(
    design: DenseDesign, coef: F64, variants: npt.NDArray[np.intp] | None = None
) -> tuple[F64, F64]:
    """Score and information of the logistic log-likelihood at ``coef``, per variant.

    Parameters
    ----------
    design:
        The site's :class:`DenseDesign`.
    coef:
        ``(A, q + 1)`` coefficients ``[ADD, intercept, covariates]`` of the ``A`` variants asked.
    variants:
        ``(A,)`` rows the coefficients belong to (default: all, ``A = V``).

    Returns
    -------
    (grad, hess):
        ``(A, p)`` score ``X'(y - mu)`` and ``(A, p, p)`` information ``X' W X`` over this
        site's subjects with a call, ``p = q + 1``.
    """
    Z, y = design.Z, design.y
    rows_all = np.arange(design.g.shape[0]) if variants is None else variants
    a = rows_all.shape[0]
    n, q = Z.shape
    p = q + 1
    grad = np.empty((a, p))
    hess = np.empty((a, p, p))
    zz = (Z[:, :, None] * Z[:, None, :]).reshape(n, q * q)
    zt = np.ascontiguousarray(Z.T)
    block = int(np.clip(BLOCK_ELEMENTS // max(n, 1), 8, BLOCK))
    buf = np.empty((block, n))
    for start in range(0, a, block):
        stop = min(start + block, a)
        rows = rows_all[start:stop]
        b = coef[start:stop]
        g = design.g[rows].astype(np.float64)
        tmp = buf[: stop - start]
        neg = -b
        minus_eta = neg[:, 1:] @ zt
        np.multiply(g, neg[:, :1], out=tmp)
        minus_eta += tmp
        w, r = _weights_residuals(minus_eta, tmp, y)
        grad[start:stop, 0] = np.einsum("ij,ij->i", r, g)
        grad[start:stop, 1:] = r @ Z
        hess[start:stop, 1:, 1:] = (w @ zz).reshape(-1, q, q)
        wg = np.multiply(w, g, out=w)
        hgz = wg @ Z
        hess[start:stop, 0, 0] = np.einsum("ij,ij->i", wg, g)
        hess[start:stop, 0, 1:] = hgz
        hess[start:stop, 1:, 0] = hgz
        _remove_missing(design, rows, b, grad[start:stop], hess[start:stop], zz)
    return grad, hess


def _weights_residuals(minus_eta: F64, buf: F64, y: F64) -> tuple[F64, F64]:
    """Logistic weights ``mu (1 - mu)`` and residuals ``y - mu`` from ``-eta``, in place.

    ``w = mu^2 e`` with ``e = exp(-eta)`` keeps full relative precision where ``mu`` is close
    to 1 (``1 - mu`` would cancel); ``-eta`` is capped at 700 so ``e`` stays finite (``mu``
    and ``w`` are then 0 to double precision anyway; below, ``e`` underflows harmlessly to 0).
    ``minus_eta`` becomes ``w`` and ``buf`` becomes ``r``.
    """
    np.minimum(minus_eta, 700.0, out=minus_eta)
    e = np.exp(minus_eta, out=minus_eta)
    np.add(e, 1.0, out=buf)
    mu = np.reciprocal(buf, out=buf)
    np.multiply(e, mu, out=e)
    w = np.multiply(e, mu, out=e)
    r = np.subtract(y, mu, out=mu)
    return w, r


def _remove_missing(
    design: DenseDesign, rows: npt.NDArray[np.intp], b: F64, grad: F64, hess: F64, zz: F64
) -> None:
    """Subtract the intercept/covariate terms the dense pass gave subjects with no call."""
    counts = design.miss_ptr[rows + 1] - design.miss_ptr[rows]
    total = int(counts.sum())
    if total == 0:
        return
    local = np.repeat(np.arange(rows.size), counts)
    offsets = np.repeat(design.miss_ptr[rows] - np.cumsum(counts) + counts, counts)
    cols = design.miss_col[offsets + np.arange(total)]
    z = design.Z[cols]
    mu = expit(np.einsum("ij,ij->i", b[local, 1:], z))
    r = design.y[cols] - mu
    w = mu * (1.0 - mu)
    q = z.shape[1]
    for j in range(q):
        grad[:, 1 + j] -= np.bincount(local, weights=r * z[:, j], minlength=rows.size)
    wzz = w[:, None] * zz[cols]
    for j in range(q * q):
        hess[:, 1 + j // q, 1 + j % q] -= np.bincount(local, weights=wzz[:, j], minlength=rows.size)


def site_logistic_derivatives(
    genotypes: npt.NDArray[np.int8],
    y: F64,
    Z: F64,
    coef: F64,
    variants: npt.NDArray[np.intp] | None = None,
) -> tuple[F64, F64]:
    """Score ``(A, p)`` and information ``(A, p, p)`` at ``coef`` from ``(V, n)`` genotypes.

    Convenience form of :func:`dense_logistic_derivatives` (builds the design each call).
    """
    return dense_logistic_derivatives(dense_design(genotypes, y, Z), coef, variants)


def site_null_logistic_derivatives(y: F64, Z: F64, coef: F64) -> tuple[F64, F64]:
    """Score ``(q,)`` and information ``(q, q)`` of the covariates-only logistic model."""
    mu = expit(Z @ coef)
    w = mu * (1.0 - mu)
    return Z.T @ (y - mu), (Z * w[:, None]).T @ Z


@dataclass(frozen=True)
class CellCounts:
    """A site's subjects grouped by (covariate pattern, genotype, outcome), per variant.

    When the covariates take few distinct values (strata, site indicators), the logistic
    likelihood depends on a subject only through its cell, so the score and information can be
    computed from these local counts exactly, in ``O(V x cells)`` instead of ``O(V x n)``.
    Never sent anywhere: only the derivatives computed from it are aggregated.

    Attributes
    ----------
    patterns:
        ``(U, q)`` distinct rows of ``Z``.
    counts:
        ``(V, U, 3, 2)`` subjects with pattern ``u``, genotype ``k`` and outcome ``y``
        (built from :func:`site_group_counts` with one group per pattern and outcome).
    """

    patterns: F64
    counts: F64


def distinct_patterns(
    Z: F64, max_cells: int | None = None
) -> tuple[F64, npt.NDArray[np.intp]] | None:
    """Distinct rows of ``Z`` and each subject's row index, or None if there are too many.

    The cell kernel pays off when ``3 x patterns`` is well below the number of subjects
    (default bound ``n / 8``).
    """
    n = Z.shape[0]
    patterns, inverse = np.unique(Z, axis=0, return_inverse=True)
    limit = max(n // 8, 6) if max_cells is None else max_cells
    if patterns.shape[0] * 3 > limit:
        return None
    return patterns, inverse.reshape(-1).astype(np.intp)


def cell_logistic_derivatives(
    cells: CellCounts, coef: F64, variants: npt.NDArray[np.intp] | None = None
) -> tuple[F64, F64]:
    """Same score and information as :func:`site_logistic_derivatives`, from cell counts."""
    c = cells.counts if variants is None else cells.counts[variants]
    a, u = c.shape[0], c.shape[1]
    zp = cells.patterns
    q = zp.shape[1]
    k = np.array([0.0, 1.0, 2.0])
    eta = (coef[:, 1:] @ zp.T)[:, :, None] + coef[:, :1, None] * k[None, None, :]
    mu = expit(eta)
    n1 = c[..., 1]
    tot = c[..., 0] + n1
    r = (n1 - tot * mu).reshape(a, u * 3)
    w = (tot * mu * (1.0 - mu)).reshape(a, u * 3)
    xk = np.tile(k, u)  # genotype of each cell
    xz = np.repeat(zp, 3, axis=0)  # pattern of each cell, (u*3, q)
    zz = (xz[:, :, None] * xz[:, None, :]).reshape(u * 3, q * q)
    grad = np.empty((a, q + 1))
    hess = np.empty((a, q + 1, q + 1))
    grad[:, 0] = r @ xk
    grad[:, 1:] = r @ xz
    wk = w * xk
    hgz = wk @ xz
    hess[:, 0, 0] = wk @ xk
    hess[:, 0, 1:] = hgz
    hess[:, 1:, 0] = hgz
    hess[:, 1:, 1:] = (w @ zz).reshape(a, q, q)
    return grad, hess

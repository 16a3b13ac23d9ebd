"""One hospital's side of a federated GWAS: its data, prepared once, and its local statistics.

:class:`SiteAnalysis` holds a site's aligned genotypes, phenotype and covariates and exposes the
``site_*`` statistics of :mod:`veil.gwas.suffstats` for them. It never sees another site's data
and never sends anything itself: the orchestration (:mod:`veil.gwas.session`) passes its arrays
to an aggregator that reveals only sums.

One counting pass serves QC, ``--assoc``/trend and (when the covariates take few values)
the whole logistic fit: genotypes are counted per subject group, a group being a combination
of phenotype status, regression eligibility and covariate pattern.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from veil.errors import DataError
from veil.gwas.plinkio import MISSING_PHENO, Fileset
from veil.gwas.qc import site_mind_keep
from veil.gwas.suffstats import (
    CellCounts,
    DenseDesign,
    LinearMoments,
    cell_logistic_derivatives,
    counts_by_status,
    dense_design,
    dense_logistic_derivatives,
    distinct_patterns,
    site_group_counts,
    site_linear_moments,
    site_null_logistic_derivatives,
    site_sample_missing,
)
from veil.gwas.variants import SiteAlignment, align_genotypes, orient_genotypes

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class SiteCovariates:
    """A site's covariates aligned to its ``.fam``: ``(n, k)`` values (NaN missing) and names."""

    values: F64
    names: tuple[str, ...]


class SiteAnalysis:
    """A site's inputs prepared for the pooled tests.

    Parameters
    ----------
    fileset:
        The site's PLINK fileset.
    alignment:
        How its variants map onto the aligned list (:func:`veil.gwas.variants.match_variants`).
    covariates:
        Optional covariates aligned to the ``.fam``.
    mind:
        ``--mind`` threshold applied locally (None: off).
    site_index, n_sites, site_covariate:
        When ``site_covariate`` is True, ``n_sites - 1`` indicator columns (site 0 is the
        reference) are appended to the covariates: the hospital as a covariate.
    use_cells:
        Use the exact cell-count logistic kernel when the covariates take few values.
    """

    def __init__(
        self,
        fileset: Fileset,
        alignment: SiteAlignment,
        covariates: SiteCovariates | None = None,
        *,
        mind: float | None = None,
        site_index: int = 0,
        n_sites: int = 1,
        site_covariate: bool = False,
        use_cells: bool = True,
    ) -> None:
        self.site = fileset.site
        self.use_cells = use_cells
        geno = align_genotypes(fileset.genotypes, alignment)
        has = alignment.index >= 0
        if mind is None:
            keep = np.ones(geno.shape[1], dtype=np.bool_)
        else:
            keep = site_mind_keep(site_sample_missing(geno[has]), int(has.sum()), mind)
        self.n_removed_mind = int(np.count_nonzero(~keep))
        self.genotypes = geno if bool(np.all(keep)) else np.ascontiguousarray(geno[:, keep])
        raw = fileset.samples.pheno[keep]
        self.raw_pheno = np.where(np.isfinite(raw) & (raw != MISSING_PHENO), raw, np.nan)
        present = self.raw_pheno[~np.isnan(self.raw_pheno)]
        self.looks_binary = bool(np.all(np.isin(present, (0.0, 1.0, 2.0))))
        if covariates is not None:
            cov = covariates.values[keep]
            names = list(covariates.names)
        else:
            cov = np.empty((int(keep.sum()), 0))
            names = []
        if site_covariate and n_sites > 1:
            dummies = np.zeros((cov.shape[0], n_sites - 1))
            if site_index > 0:
                dummies[:, site_index - 1] = 1.0
            cov = np.concatenate([cov, dummies], axis=1)
            names += [f"SITE{j}" for j in range(1, n_sites)]
        self.covariates = cov
        self.covariate_names = tuple(names)
        self.binary = self.looks_binary
        self._rows: npt.NDArray[np.intp] = np.arange(self.genotypes.shape[0])
        self._swap = np.zeros(self.genotypes.shape[0], dtype=np.bool_)
        self._fine: I64 | None = None
        self._reg_geno: npt.NDArray[np.int8] | None = None
        self._dense: DenseDesign | None = None
        # subject groups (status x regression eligibility x covariate pattern), set_trait()
        self._patterns: F64 | None = None
        self._group = np.zeros(self.n_subjects, dtype=np.intp)
        self._group_key = np.zeros((1, 3), dtype=np.intp)
        self._eligible = np.zeros(self.n_subjects, dtype=np.bool_)
        self._y = np.empty(0)
        self._z = np.empty((0, 1))

    @property
    def n_subjects(self) -> int:
        """Subjects kept after ``--mind``."""
        return int(self.genotypes.shape[1])

    def set_trait(self, binary: bool) -> None:
        """Fix the trait type agreed by all sites (binary only if every site's looks binary)."""
        self.binary = binary
        if not np.any(np.isfinite(self.phenotype())):
            raise DataError(f"site {self.site!r}: every phenotype in its .fam is missing")
        self._groups()

    def phenotype(self) -> F64:
        """``(n,)`` 0/1 for case/control (1/2 coding; 0 missing), the value if quantitative."""
        if self.binary:
            return np.where(self.raw_pheno == 2, 1.0, np.where(self.raw_pheno == 1, 0.0, np.nan))
        return self.raw_pheno.copy()

    def _groups(self) -> None:
        y = self.phenotype()
        status = np.full(y.shape, 2, dtype=np.intp)
        if self.binary:
            status = np.where(np.isnan(y), 2, y).astype(np.intp)
        eligible = ~np.isnan(y) & np.all(np.isfinite(self.covariates), axis=1)
        z = np.concatenate([np.ones((int(eligible.sum()), 1)), self.covariates[eligible]], axis=1)
        pattern = np.zeros(y.shape, dtype=np.intp)
        self._patterns = None
        if self.binary and self.use_cells:
            found = distinct_patterns(z)
            if found is not None:
                self._patterns, pattern[eligible] = found
        key = np.stack([status, eligible.astype(np.intp), pattern], axis=1)
        uniq, inverse = np.unique(key, axis=0, return_inverse=True)
        self._group = inverse.reshape(-1).astype(np.intp)
        self._group_key = uniq
        self._eligible = eligible
        self._y = y[eligible]
        self._z = z

    def genotype_counts(self) -> I64:
        """``(V, 3, 4)`` genotype counts (all, case, control) of the aligned variants.

        Counted per subject group once; later statistics reuse these local counts.
        """
        n_groups = self._group_key.shape[0]
        self._fine = site_group_counts(self.genotypes, self._group, n_groups)
        sizes = np.bincount(self._group, minlength=n_groups)
        status = self._group_key[:, 0]
        return counts_by_status(self._fine, sizes, np.where(status == 2, -1, status))

    def restrict(self, keep: npt.NDArray[np.bool_], swap: npt.NDArray[np.bool_]) -> None:
        """Keep the variants passing QC and count the pooled minor allele (A1) from now on."""
        self._rows = np.flatnonzero(keep)
        self._swap = swap[keep]

    def regression_nobs(self) -> F64:
        """Per-variant subjects in the regression (a call, a phenotype, all covariates)."""
        if self._fine is None:
            raise DataError(f"site {self.site!r}: genotype counts must be computed first")
        reg_groups = self._group_key[:, 1] == 1
        out: F64 = self._fine[self._rows][:, reg_groups].sum(axis=(1, 2)).astype(np.float64)
        return out

    @property
    def n_params(self) -> int:
        """Coefficients per variant: ADD, intercept and covariates."""
        return int(self._z.shape[1]) + 1

    def regression_design(self) -> tuple[F64, F64]:
        """``(y, Z)`` of the subjects entering the regression (local only)."""
        return self._y, self._z

    def _regression_genotypes(self) -> npt.NDArray[np.int8]:
        if self._reg_geno is None:
            rows = self.genotypes[self._rows]
            self._reg_geno = orient_genotypes(
                np.ascontiguousarray(rows[:, self._eligible]), self._swap
            )
        return self._reg_geno

    def cells(self) -> CellCounts | None:
        """Cell counts of the kept variants for the cell logistic kernel (None if not usable)."""
        if self._patterns is None or self._fine is None:
            return None
        u = self._patterns.shape[0]
        counts = np.zeros((self._rows.size, u, 3, 2))
        fine = self._fine[self._rows]
        for g, (status, eligible, pattern) in enumerate(self._group_key):
            if eligible == 1 and status in (0, 1):
                counts[:, pattern, :, status] = fine[:, g, :]
        counts[self._swap] = counts[self._swap][:, :, ::-1, :]
        return CellCounts(self._patterns, counts)

    def linear_moments(self) -> LinearMoments:
        """:func:`~veil.gwas.suffstats.site_linear_moments` on the regression subjects."""
        return site_linear_moments(self._regression_genotypes(), self._y, self._z)

    def null_logistic_derivatives(self, coef: F64) -> tuple[F64, F64]:
        """Score and information of the covariates-only model at ``coef``."""
        return site_null_logistic_derivatives(self._y, self._z, coef)

    def logistic_derivatives(
        self, variants: npt.NDArray[np.intp], coef: F64, cells: CellCounts | None = None
    ) -> tuple[F64, F64]:
        """Score and information of the per-variant models at ``coef`` (kept-variant rows)."""
        if cells is not None:
            return cell_logistic_derivatives(cells, coef, variants)
        if self._dense is None:
            self._dense = dense_design(self._regression_genotypes(), self._y, self._z)
        return dense_logistic_derivatives(self._dense, coef, variants)

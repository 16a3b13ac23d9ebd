"""Allelic chi-square (PLINK ``--assoc``) and Cochran-Armitage trend (``--model trend-only``).

Both are functions of the summed case/control genotype counts only, with PLINK 1.9's formulas
and NA rules (``plink_assoc.c`` / ``plink_stats.c``):

* ``--assoc``: 1-df allelic chi-square without continuity correction; CHISQ/P are NA when the
  variant is monomorphic in cases+controls; F_A (F_U) NA without case (control) alleles; OR is
  ``(A1_case * A2_ctrl) / (A1_ctrl * A2_case)``, NA when the denominator is 0.
* trend: ``CHISQ = T (C_dom T - D C)^2 / ((T (het + 4 hom) - D^2) C (T - C))``; NA when the
  variance is 0.

Genomic control: ``lambda = median(CHISQ) / 0.456`` over the tested variants (PLINK's
``--adjust`` convention).

Reveals: these functions only transform the summed counts they are given (which every site
already learns); they see no per-site value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.special import chdtrc

from veil.gwas.suffstats import GROUP_CASE, GROUP_CONTROL

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
#: median of chi-square(1) as rounded by PLINK's --adjust
CHISQ1_MEDIAN = 0.456


@dataclass(frozen=True)
class AssocResult:
    """``--assoc`` columns per variant (NaN = NA)."""

    f_a: F64
    f_u: F64
    chisq: F64
    p: F64
    odds_ratio: F64
    #: alleles called in cases / in controls (twice the subjects with a call; DP sensitivity)
    case_alleles: F64 | None = None
    ctrl_alleles: F64 | None = None


@dataclass(frozen=True)
class TrendResult:
    """Trend test per variant: allele counts (A1, A2) in cases and controls, CHISQ, P."""

    case_a1: I64
    case_a2: I64
    ctrl_a1: I64
    ctrl_a2: I64
    chisq: F64
    p: F64


def _allele_counts(counts: I64) -> tuple[F64, F64, F64, F64]:
    case = counts[:, GROUP_CASE].astype(np.float64)
    ctrl = counts[:, GROUP_CONTROL].astype(np.float64)
    a1_case = 2 * case[:, 2] + case[:, 1]
    a2_case = 2 * case[:, 0] + case[:, 1]
    a1_ctrl = 2 * ctrl[:, 2] + ctrl[:, 1]
    a2_ctrl = 2 * ctrl[:, 0] + ctrl[:, 1]
    return a1_case, a2_case, a1_ctrl, a2_ctrl


def pooled_assoc(counts: I64) -> AssocResult:
    """Allelic test from summed genotype counts ``(V, 3, 4)`` oriented to the final A1."""
    a1c, a2c, a1u, a2u = _allele_counts(counts)
    with np.errstate(invalid="ignore", divide="ignore"):
        f_a = np.where(a1c + a2c > 0, a1c / (a1c + a2c), np.nan)
        f_u = np.where(a1u + a2u > 0, a1u / (a1u + a2u), np.nan)
        total = a1c + a2c + a1u + a2u
        row1 = a2c + a1c  # case alleles
        col1 = a2c + a2u  # A2 alleles
        expm = row1 * col1
        denom = expm * (total - row1) * (total - col1)
        dev = a2c * total - expm
        chisq = np.where(denom != 0, dev * dev * total / np.where(denom != 0, denom, 1.0), 0.0)
        testable = (a1c + a1u > 0) & (a2c + a2u > 0)
        chisq = np.where(testable, chisq, np.nan)
        odds = np.where(a1u * a2c != 0, (a1c * a2u) / (a1u * a2c), np.nan)
    return AssocResult(f_a, f_u, chisq, chdtrc(1.0, chisq), odds, a1c + a2c, a1u + a2u)


def pooled_trend(counts: I64) -> TrendResult:
    """Cochran-Armitage trend test from summed genotype counts oriented to the final A1."""
    case = counts[:, GROUP_CASE, :3].astype(np.float64)
    ctrl = counts[:, GROUP_CONTROL, :3].astype(np.float64)
    hom = case[:, 2] + ctrl[:, 2]
    het = case[:, 1] + ctrl[:, 1]
    total = case.sum(axis=1) + ctrl.sum(axis=1)
    n_case = case.sum(axis=1)
    dom = het + 2 * hom
    case_dom = 2 * case[:, 2] + case[:, 1]
    cat = case_dom * total - dom * n_case
    var = (total * (het + 4 * hom) - dom * dom) * n_case * (total - n_case)
    with np.errstate(invalid="ignore", divide="ignore"):
        chisq = np.where(var != 0, cat * cat * total / np.where(var != 0, var, 1.0), np.nan)
    a1c, a2c, a1u, a2u = _allele_counts(counts)
    return TrendResult(
        a1c.astype(np.int64),
        a2c.astype(np.int64),
        a1u.astype(np.int64),
        a2u.astype(np.int64),
        chisq,
        chdtrc(1.0, chisq),
    )


def genomic_control(chisq: F64) -> float:
    """Genomic-control inflation ``median(chisq) / 0.456`` over finite statistics (NaN if none)."""
    finite = chisq[np.isfinite(chisq)]
    if finite.size == 0:
        return float("nan")
    return float(np.median(finite) / CHISQ1_MEDIAN)

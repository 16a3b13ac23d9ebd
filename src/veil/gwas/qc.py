"""Quality control with PLINK 1.9's semantics, from summed genotype counts.

* ``--mind F``: a subject missing more than ``F`` of its calls is removed. Computed **locally**
  by each site on its own subjects (:func:`site_mind_keep`); nothing is sent.
* ``--geno F``: a variant whose genotyping rate over all subjects is below ``1 - F`` is removed.
* ``--hwe P``: Hardy-Weinberg exact test (Wigginton, Cutler & Abecasis 2005, as PLINK's
  ``SNPHWE2``) on controls for a case/control trait (on all subjects otherwise); ``p < P`` is
  removed.
* ``--maf F``: a variant whose minor allele frequency (of the *summed* counts) is below ``F``
  is removed.

As in PLINK 1.9 all three variant filters are evaluated on the same counts (computed after
``--mind``), and A1 is set to the minor allele of the summed counts (ties keep the reference
site's ``.bim`` A1). veil treats every subject as a founder (PLINK counts founders only for
frequencies and HWE; use data without parent links, or note the difference).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.special import gammaln

from veil.gwas.suffstats import GROUP_ALL, GROUP_CONTROL, MISSING

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
#: PLINK's SMALL_EPSILON (2^-44), applied to thresholds exactly as PLINK does
SMALL_EPSILON = 2.0**-44
_HWE_BLOCK = 2048


@dataclass(frozen=True)
class QcOptions:
    """PLINK's QC thresholds; ``None`` disables a filter."""

    maf: float | None = None
    geno: float | None = None
    hwe: float | None = None
    mind: float | None = None
    #: compute the exact HWE P of every variant (reports); otherwise only where it can fall
    #: below ``hwe`` (the filter's decision is exact either way)
    hwe_exact_all: bool = False


@dataclass(frozen=True)
class QcResult:
    """Per-variant QC outcome on the summed counts.

    Attributes
    ----------
    keep:
        ``(V,)`` True for variants passing every filter.
    swap:
        ``(V,)`` True where A1 (the minor allele) is the reference ``.bim``'s A2.
    maf, missing_rate, hwe_p:
        ``(V,)`` minor allele frequency, fraction of missing calls, HWE exact P (NaN where not
        evaluated: ``--hwe`` unasked, the variant already failed ``--geno``, or -- unless
        ``hwe_exact_all`` -- bounds decided the filter without enumeration).
    removed:
        Variants removed by each filter, applied in PLINK's order geno, hwe, maf.
    """

    keep: npt.NDArray[np.bool_]
    swap: npt.NDArray[np.bool_]
    maf: F64
    missing_rate: F64
    hwe_p: F64
    removed: dict[str, int]


def site_mind_keep(
    missing_calls: I64, n_variants: int, mind: float | None
) -> npt.NDArray[np.bool_]:
    """Local ``--mind``: True for subjects whose missing calls are within the threshold."""
    if mind is None:
        return np.ones(missing_calls.shape, dtype=np.bool_)
    limit = np.floor(mind * n_variants * (1 + SMALL_EPSILON))
    out: npt.NDArray[np.bool_] = missing_calls <= limit
    return out


def orient_counts(counts: I64, swap: npt.NDArray[np.bool_]) -> I64:
    """Genotype counts ``(V, 3, 4)`` re-expressed for the swapped allele where ``swap``."""
    out = counts.copy()
    out[swap, :, 0] = counts[swap, :, 2]
    out[swap, :, 2] = counts[swap, :, 0]
    return out


def pooled_orientation(counts: I64) -> tuple[npt.NDArray[np.bool_], F64]:
    """Choose A1 as the minor allele of the summed counts (PLINK's rule).

    Returns ``(swap, freq)``: ``swap`` True where the reference A2 is the minor allele, and the
    frequency of the chosen A1 (0.5 with no observed allele, as PLINK).
    """
    c = counts[:, GROUP_ALL].astype(np.float64)
    alleles = 2.0 * (c[:, 0] + c[:, 1] + c[:, 2])
    ref_a1 = 2.0 * c[:, 2] + c[:, 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        freq_ref_a2 = np.where(alleles > 0, 1.0 - ref_a1 / alleles, 0.5)
    swap = freq_ref_a2 < 0.5
    return swap, np.where(swap, freq_ref_a2, 1.0 - freq_ref_a2)


def hwe_exact_p(het: I64, hom1: I64, hom2: I64) -> F64:
    """Hardy-Weinberg exact test P per variant, vectorised (PLINK ``SNPHWE2``, not mid-p).

    P sums the probabilities, under HWE given the allele counts, of every heterozygote count
    no more likely than the observed one (ties within a relative 1e-9 included). The
    log-probabilities over the heterozygote grid are built by a cumulative sum of the log
    ratios of consecutive terms (one logarithm per grid cell).
    """
    het = np.asarray(het, dtype=np.int64)
    homr = np.minimum(hom1, hom2).astype(np.int64)
    homc = np.maximum(hom1, hom2).astype(np.int64)
    n = het + homr + homc
    rare = 2 * homr + het
    out = np.ones(het.shape[0])
    order = np.argsort(rare, kind="stable")
    order = order[rare[order] > 0]
    for start in range(0, order.size, _HWE_BLOCK):
        rows = order[start : start + _HWE_BLOCK]
        r, nn = rare[rows][:, None], n[rows][:, None]
        k = int(rare[rows].max()) // 2 + 1
        h = (r % 2) + 2 * np.arange(k)[None, :]
        valid = h <= r
        hr = (r - h) // 2
        hc = nn - h - hr
        with np.errstate(divide="ignore", invalid="ignore"):
            # log P(h + 2) - log P(h) = log(4 hr hc / ((h + 2)(h + 1)))
            step = np.log((4.0 * hr * hc) / ((h + 2.0) * (h + 1.0)))
        step = np.where(valid[:, 1:], step[:, :-1], 0.0)
        logp = np.concatenate([np.zeros((rows.size, 1)), np.cumsum(step, axis=1)], axis=1)
        logp = np.where(valid, logp, -np.inf)
        obs = np.take_along_axis(logp, ((het[rows] - r[:, 0] % 2) // 2)[:, None], axis=1)
        top = logp.max(axis=1, keepdims=True)
        prob = np.exp(logp - top)
        tail = np.where(logp <= obs + 1e-9, prob, 0.0).sum(axis=1)
        out[rows] = np.minimum(tail / prob.sum(axis=1), 1.0)
    return out


def hwe_observed_probability(het: I64, hom1: I64, hom2: I64) -> F64:
    """Probability of the observed genotype counts under HWE given the allele counts (Levene).

    A lower bound of the exact test's P (the observed configuration is in its own tail).
    """
    het = np.asarray(het, dtype=np.float64)
    h1 = np.asarray(hom1, dtype=np.float64)
    h2 = np.asarray(hom2, dtype=np.float64)
    n = het + h1 + h2
    a = 2 * h1 + het
    b = 2 * h2 + het
    logp = (
        gammaln(n + 1) - gammaln(h1 + 1) - gammaln(het + 1) - gammaln(h2 + 1)
        + het * np.log(2.0) + gammaln(a + 1) + gammaln(b + 1) - gammaln(2 * n + 1)
    )  # fmt: skip
    out: F64 = np.exp(logp)
    return out


def hwe_screened_p(
    het: I64, hom1: I64, hom2: I64, threshold: float
) -> tuple[F64, npt.NDArray[np.bool_]]:
    """Decide ``P < threshold`` for the HWE exact test, enumerating only undecided variants.

    With ``q`` the probability of the observed configuration and ``m`` the number of possible
    heterozygote counts, ``q <= P <= m q`` (the observed term is in the tail, and no tail term
    exceeds it). Variants with ``q >= threshold`` pass and those with ``m q < threshold`` fail
    without enumeration; the others get the exact P.

    Returns
    -------
    (p, fails):
        ``p`` exact where enumerated, NaN elsewhere; ``fails`` True where ``P < threshold``.
    """
    het = np.asarray(het, dtype=np.int64)
    q = hwe_observed_probability(het, hom1, hom2)
    rare = 2 * np.minimum(hom1, hom2) + het
    configs = rare // 2 + 1
    sure_pass = q >= threshold * (1 + 1e-9)
    sure_fail = configs * q * (1 + 1e-9) < threshold
    p = np.full(het.shape[0], np.nan)
    maybe = np.flatnonzero(~sure_pass & ~sure_fail)
    if maybe.size:
        p[maybe] = hwe_exact_p(het[maybe], hom1[maybe], hom2[maybe])
    fails = sure_fail | (p < threshold)
    return p, fails


def pooled_qc(counts: I64, binary: bool, options: QcOptions) -> QcResult:
    """Apply ``--geno``, ``--hwe`` and ``--maf`` to summed counts ``(V, 3, 4)``.

    As PLINK 1.9, the filters run in that order and each counts (``removed``) and tests only
    the variants left by the previous ones; ``hwe_p`` is NaN where HWE was not evaluated.

    Parameters
    ----------
    counts:
        Summed :func:`veil.gwas.suffstats.site_genotype_counts` in reference orientation.
    binary:
        True for a case/control trait (HWE then uses controls, when there are any).
    """
    swap, freq = pooled_orientation(counts)
    maf = np.minimum(freq, 1.0 - freq)
    c = counts[:, GROUP_ALL].astype(np.float64)
    total = c.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        missing_rate = np.where(total > 0, c[:, MISSING] / total, 1.0)
    keep = np.ones(counts.shape[0], dtype=np.bool_)
    removed: dict[str, int] = {}
    if options.geno is not None:
        rate_ok = (1.0 - missing_rate) >= (1.0 - options.geno) * (1 - SMALL_EPSILON)
        removed["geno"] = int(np.count_nonzero(keep & ~rate_ok))
        keep &= rate_ok
    hwe_p = np.full(counts.shape[0], np.nan)
    if options.hwe is not None:
        group = GROUP_CONTROL if binary and counts[:, GROUP_CONTROL, :].sum() > 0 else GROUP_ALL
        rows = np.flatnonzero(keep)
        g = counts[rows, group]
        limit = options.hwe * (1 - SMALL_EPSILON)
        hwe_ok = np.ones(counts.shape[0], dtype=np.bool_)
        if options.hwe_exact_all:
            hwe_p[rows] = hwe_exact_p(g[:, 1], g[:, 0], g[:, 2])
            hwe_ok[rows] = ~(hwe_p[rows] < limit)
        else:
            hwe_p[rows], fails = hwe_screened_p(g[:, 1], g[:, 0], g[:, 2], limit)
            hwe_ok[rows] = ~fails
        removed["hwe"] = int(np.count_nonzero(keep & ~hwe_ok))
        keep &= hwe_ok
    if options.maf is not None:
        maf_ok = maf >= options.maf * (1 - SMALL_EPSILON)
        removed["maf"] = int(np.count_nonzero(keep & ~maf_ok))
        keep &= maf_ok
    return QcResult(keep, swap, maf, missing_rate, hwe_p, removed)

"""The federated GWAS flow for one site, written against a sums-only aggregator.

:func:`run_site` is what every hospital runs (SPMD): it computes its local statistics and hands
each array to ``aggregate(key, array)``, which must return the **sum of that array over all
sites** and nothing else (secure aggregation in deployment; :class:`LocalSum`, a plaintext twin
over threads, in tests). Every pooled decision (A1, QC, Newton steps) is a deterministic function
of those sums, so all sites reach the same results.

What the sums reveal (to every site): per variant the genotype counts of all subjects, cases
and controls (hence allele frequencies, missingness, HWE tables); for ``--linear`` the summed
``X'X``, ``X'y``, ``y'y``; for ``--logistic`` the summed score and information at each round's
public coefficients; and one flag per site saying whether its phenotype looks case/control.
Per-site values never leave a site in the clear.
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from veil.errors import ConfigError, DataError, ProtocolError
from veil.gwas.assoc import (
    AssocResult,
    TrendResult,
    genomic_control,
    pooled_assoc,
    pooled_trend,
)
from veil.gwas.linear import LinearResult, pooled_linear
from veil.gwas.logistic import CONVERGED, FAILED, LogisticFit, LogisticResult
from veil.gwas.plinkio import Fileset, VariantTable
from veil.gwas.qc import QcOptions, QcResult, orient_counts, pooled_qc
from veil.gwas.site import SiteAnalysis, SiteCovariates
from veil.gwas.suffstats import LinearMoments
from veil.gwas.variants import AbsentPolicy, Alignment, match_variants

F64 = npt.NDArray[np.float64]
#: ``aggregate(key, local_array) -> sum over all sites`` (same key and shape at every site)
Aggregate = Callable[[str, F64], F64]
#: ``counts(key, local_counts, bound) -> sum over all sites`` of non-negative integers whose sums
#: are at most ``bound`` (exact; :meth:`veil.gwas.secure_sum.SecureSum.counts`)
CountSum = Callable[[str, npt.NDArray[np.int64], int], npt.NDArray[np.int64]]


class Test(enum.Enum):
    """The association test to run (PLINK flag in the value)."""

    __test__ = False  # not a pytest test class

    ASSOC = "assoc"
    TREND = "trend"
    LOGISTIC = "logistic"
    LINEAR = "linear"


@dataclass(frozen=True)
class GwasOptions:
    """Options of a run: the test, QC thresholds and the logistic tolerance (and ``beta``:
    report coefficients instead of odds ratios, PLINK's ``--logistic beta``; outputs only)."""

    test: Test = Test.ASSOC
    qc: QcOptions = field(default_factory=QcOptions)
    logistic_tol: float = 1e-10
    null_start: bool = True
    beta: bool = False


@dataclass(frozen=True)
class GwasResult:
    """Pooled results, identical at every site.

    Attributes
    ----------
    variants:
        The variants tested (after QC), with ``a1`` the pooled minor allele.
    qc:
        Per-variant QC outcome over all aligned variants.
    assoc, trend, logistic, linear:
        The result of the test run (the others are None).
    rounds:
        Aggregation rounds used.
    n_subjects:
        Subjects analysed over all sites (after ``--mind``).
    """

    variants: VariantTable
    qc: QcResult
    test: Test
    assoc: AssocResult | None
    trend: TrendResult | None
    logistic: LogisticResult | None
    linear: LinearResult | None
    rounds: int
    n_subjects: int

    def statistic(self) -> F64:
        """The 1-df chi-square of each tested variant (CHISQ, or STAT squared)."""
        if self.assoc is not None:
            return self.assoc.chisq
        if self.trend is not None:
            return self.trend.chisq
        if self.logistic is not None:
            return self.logistic.z**2
        assert self.linear is not None
        return self.linear.t**2

    def lambda_gc(self) -> float:
        """Genomic-control inflation factor of the test (median chi-square / 0.456)."""
        return genomic_control(self.statistic())


def run_site(
    site: SiteAnalysis,
    variants: VariantTable,
    n_sites: int,
    aggregate: Aggregate,
    options: GwasOptions,
    counts_sum: CountSum | None = None,
) -> GwasResult:
    """Run the federated analysis as one site; every cross-site value goes through ``aggregate``.

    Parameters
    ----------
    site:
        This site's prepared data.
    variants:
        The aligned variant table (public, identical at every site).
    n_sites:
        Number of sites taking part.
    aggregate:
        Sums-only channel (see :data:`Aggregate`).
    options:
        Test and QC options (identical at every site).
    counts_sum:
        Sums of integer counts bounded by the pooled number of subjects (genotype counts,
        regression subjects per variant), exact and more compact than ``aggregate``; None: the
        counts go through ``aggregate`` as float64 (exact below 2^53).
    """
    rounds = 0

    def total(key: str, arr: F64) -> F64:
        nonlocal rounds
        rounds += 1
        return aggregate(key, np.ascontiguousarray(arr, dtype=np.float64))

    def count_total(key: str, arr: npt.NDArray[np.int64], bound: int) -> npt.NDArray[np.int64]:
        nonlocal rounds
        if counts_sum is None:
            return np.rint(total(key, arr.astype(np.float64))).astype(np.int64)
        rounds += 1
        return counts_sum(key, np.ascontiguousarray(arr, dtype=np.int64), bound)

    has_pheno = bool(np.any(np.isfinite(site.raw_pheno)))
    head = total(
        "gwas/head", np.array([float(site.looks_binary), site.n_subjects, float(has_pheno)])
    )
    binary = bool(round(head[0]) == n_sites)
    n_subjects = round(float(head[1]))
    if not has_pheno:
        raise DataError(f"site {site.site!r}: every phenotype in its .fam is missing (-9/0/NA)")
    if round(head[2]) < n_sites:
        raise DataError(
            f"{n_sites - round(head[2])} of {n_sites} sites have no phenotype (all -9/0/NA); "
            "they must fix their .fam files"
        )
    if options.test in (Test.ASSOC, Test.TREND, Test.LOGISTIC) and not binary:
        raise ConfigError(
            f"--{options.test.value} needs a case/control phenotype (1/2) at every site; "
            "use --test linear for a quantitative trait"
        )
    if options.test is Test.LINEAR and binary:
        raise ConfigError("--linear needs a quantitative phenotype; use --test logistic")
    site.set_trait(binary)
    counts_i = count_total("gwas/counts", site.genotype_counts(), n_subjects)
    qc = pooled_qc(counts_i, binary, options.qc)
    keep = qc.keep
    if not np.any(keep):
        raise DataError("no variant passes QC (--maf/--geno/--hwe); relax the thresholds")
    swap = qc.swap
    tested = _oriented(variants.take(np.flatnonzero(keep)), swap[keep])
    site.restrict(keep, swap)
    oriented = orient_counts(counts_i[keep], swap[keep])
    assoc = trend = None
    logistic = None
    linear = None
    if options.test is Test.ASSOC:
        assoc = pooled_assoc(oriented)
    elif options.test is Test.TREND:
        trend = pooled_trend(oriented)
    elif options.test is Test.LINEAR:
        mom = site.linear_moments()
        flat = total("gwas/linear", _flatten(mom))
        linear = pooled_linear(_unflatten(flat, mom))
    else:
        logistic = _fit_logistic(site, total, options, count_total, n_subjects)
    return GwasResult(tested, qc, options.test, assoc, trend, logistic, linear, rounds, n_subjects)


def _fit_logistic(
    site: SiteAnalysis,
    total: Aggregate,
    options: GwasOptions,
    count_total: CountSum,
    n_subjects: int,
) -> LogisticResult:
    p = site.n_params
    q = p - 1
    local_nobs = np.rint(site.regression_nobs()).astype(np.int64)
    nobs = count_total("gwas/logistic/nobs", local_nobs, n_subjects).astype(np.float64)
    start = np.zeros(p)
    if options.null_start:
        n_reg = float(site.regression_design()[0].shape[0])
        null = LogisticFit(np.array([n_reg]), q, intercept=0, tol=1e-12)
        null.nobs = total("gwas/logistic/null-n", null.nobs)
        null.status[null.nobs <= q] = FAILED
        while not null.done:
            _, coef = null.request()
            g, h = site.null_logistic_derivatives(coef[0])
            summed = total(f"gwas/logistic/null/{null.iteration}", _pack(g[None], h[None]))
            null.step(*_unpack(summed, 1, q))
        if null.status[0] == CONVERGED:
            start[1:] = null.coef[0]
    fit = LogisticFit(nobs, p, start, intercept=1, tol=options.logistic_tol)
    cells = site.cells()
    while not fit.done:
        idx, coef = fit.request()
        g, h = site.logistic_derivatives(idx, coef, cells)
        summed = total(f"gwas/logistic/{fit.iteration}", _pack(g, h))
        fit.step(*_unpack(summed, idx.size, p))
    return fit.result()


def _pack(grad: F64, hess: F64) -> F64:
    """Gradients and the upper triangles of the (symmetric) Hessians, flat: ``a·p + a·p(p+1)/2``
    values instead of ``a·p + a·p²`` (the lower triangle is the same sum, not sent twice)."""
    p = hess.shape[-1]
    rows, cols = np.triu_indices(p)
    return np.concatenate([grad.reshape(-1), hess[..., rows, cols].reshape(-1)])


def _unpack(flat: F64, a: int, p: int) -> tuple[F64, F64]:
    rows, cols = np.triu_indices(p)
    k = rows.size
    if flat.size != a * p + a * k:
        raise ProtocolError(
            f"aggregated logistic derivatives have {flat.size} values, expected "
            f"{a * p + a * k} ({a} variants, {p} parameters)"
        )
    tri = flat[a * p :].reshape(a, k)
    hess = np.empty((a, p, p), dtype=np.float64)
    hess[:, rows, cols] = tri
    hess[:, cols, rows] = tri
    return flat[: a * p].reshape(a, p), hess


def _flatten(m: LinearMoments) -> F64:
    return np.concatenate([m.xtx.ravel(), m.xty.ravel(), m.yty, m.nobs])


def _unflatten(flat: F64, like: LinearMoments) -> LinearMoments:
    sizes = [like.xtx.size, like.xty.size, like.yty.size, like.nobs.size]
    parts = np.split(flat, np.cumsum(sizes)[:-1])
    return LinearMoments(
        parts[0].reshape(like.xtx.shape), parts[1].reshape(like.xty.shape), parts[2], parts[3]
    )


def _oriented(vt: VariantTable, swap: npt.NDArray[np.bool_]) -> VariantTable:
    return VariantTable(
        vt.chrom, vt.snp, vt.cm, vt.bp, np.where(swap, vt.a2, vt.a1), np.where(swap, vt.a1, vt.a2)
    )


class LocalSum:
    """Plaintext twin of secure aggregation for sites run as threads in one process.

    Each site calls :meth:`aggregate` with the same key sequence; every call blocks until all
    sites have contributed and returns the sum, added in site order so that every site gets a
    bit-identical total. It reveals the sum only, like the secure version, but offers no
    protection against the process holding it (a test/simulation tool).
    """

    def __init__(self, n_sites: int, timeout: float = 300.0, sequential: bool = True) -> None:
        self.n_sites = n_sites
        self._barrier = threading.Barrier(n_sites, timeout=timeout)
        # one site computes at a time (released while waiting): no oversubscription of cores
        self._turn: threading.Lock | None = threading.Lock() if sequential else None
        self._holding = [False] * n_sites
        self._since = [0.0] * n_sites
        self._round_busy = [0.0] * n_sites
        #: seconds each site spent computing (outside aggregation waits)
        self.busy = [0.0] * n_sites
        #: sum over rounds of the slowest site's computing time: the wall time of the same run
        #: with every site on its own machine (communication excluded)
        self.critical_path = 0.0
        self._slots: list[F64 | None] = [None] * n_sites
        self._keys: list[str | None] = [None] * n_sites
        self.bytes_per_site = 0

    def start(self, index: int) -> None:
        """Call in site ``index``'s thread before its first computation."""
        if self._turn is not None:
            self._turn.acquire()
            self._holding[index] = True
        self._since[index] = time.perf_counter()

    def stop(self, index: int) -> None:
        """Call in site ``index``'s thread when it is done (or failed)."""
        self._release(index)

    def _release(self, index: int) -> None:
        spent = time.perf_counter() - self._since[index]
        self.busy[index] += spent
        self._round_busy[index] = spent
        if self._turn is not None and self._holding[index]:
            self._holding[index] = False
            self._turn.release()

    def finish(self) -> None:
        """Account the last segment (after the final aggregation) in :attr:`critical_path`."""
        self.critical_path += max(self._round_busy)

    def abort(self) -> None:
        """Break the barrier so that the other sites stop waiting (a site failed)."""
        self._barrier.abort()

    def for_site(self, index: int) -> Aggregate:
        """The aggregate function of site ``index``."""

        def aggregate(key: str, arr: F64) -> F64:
            self._slots[index] = arr
            self._keys[index] = key
            self._release(index)
            self._barrier.wait()
            if len(set(self._keys)) != 1:
                raise ProtocolError(f"sites aggregate different keys: {self._keys}")
            shapes = {s.shape for s in self._slots if s is not None}
            if len(shapes) != 1:
                raise ProtocolError(f"sites aggregate arrays of different shapes {shapes} ({key})")
            out = np.zeros_like(arr)
            for s in self._slots:
                assert s is not None
                out += s
            if index == 0:
                self.bytes_per_site += arr.nbytes
                self.critical_path += max(self._round_busy)
            self._barrier.wait()
            self.start(index)
            return out

        return aggregate


def prepare_local(
    filesets: Sequence[Fileset],
    covariates: Sequence[SiteCovariates | None] | None = None,
    *,
    policy: AbsentPolicy = AbsentPolicy.DROP,
    mind: float | None = None,
    site_covariate: bool = False,
) -> tuple[list[SiteAnalysis], Alignment]:
    """Align the filesets' variants and prepare every site (all sites held in this process)."""
    alignment = match_variants([(f.site, f.variants) for f in filesets], policy)
    covs = list(covariates) if covariates is not None else [None] * len(filesets)
    sites = [
        SiteAnalysis(
            f,
            alignment.sites[i],
            covs[i],
            mind=mind,
            site_index=i,
            n_sites=len(filesets),
            site_covariate=site_covariate,
        )
        for i, f in enumerate(filesets)
    ]
    return sites, alignment


def run_local(
    sites: Sequence[SiteAnalysis],
    variants: VariantTable,
    options: GwasOptions,
    hub: LocalSum | None = None,
) -> GwasResult:
    """Run every site in its own thread over :class:`LocalSum`; return site 0's result.

    Pass ``hub`` to read its timing (:attr:`LocalSum.busy`, :attr:`LocalSum.critical_path`)
    and byte counts afterwards.
    """
    hub = hub or LocalSum(len(sites))
    results: list[GwasResult | None] = [None] * len(sites)
    errors: list[BaseException] = []

    def work(i: int) -> None:
        hub.start(i)
        try:
            results[i] = run_site(sites[i], variants, len(sites), hub.for_site(i), options)
        except BaseException as exc:
            errors.append(exc)
            hub.abort()
        finally:
            hub.stop(i)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(sites))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    hub.finish()
    if errors:
        # the most specific error first: one naming its site, then any real one, then barriers
        def rank(e: BaseException) -> int:
            if isinstance(e, threading.BrokenBarrierError):
                return 2
            return 0 if str(e).startswith("site ") else 1

        raise min(errors, key=rank)
    out = results[0]
    assert out is not None
    return out

"""The federated GWAS job every site runs (SPMD), and :func:`run_gwas`, which runs all sites here.

:func:`gwas_job` is what each hospital runs — locally through :func:`run_gwas` /
``veil gwas`` (threads over memory, or processes over gRPC with mutual TLS), or at each
institution through ``veil node veil.gwas.job:gwas_job --config cluster.toml --party h1
--param prefix=data/h1 ...`` (see ``docs/gwas.md``). At each site it:

1. reads **only its own** fileset (and covariate file); bad input raises a
   :class:`~veil.errors.DataError` naming the site and file;
2. reveals its variant list (``.bim``: id, chromosome, cM, position, alleles) and its covariate
   names to the other sites (:mod:`veil.gwas.exchange`; ``ctx.reveal``, tag ``gwas.variants``;
   first a SHA-256 digest of them, and the lists only when the digests differ) — genotypes,
   phenotypes and subjects never — and aligns the variants
   (:func:`veil.gwas.variants.match_variants`, the same result at every site);
3. runs :func:`veil.gwas.session.run_site` over :class:`veil.gwas.secure_sum.SecureSum`: only
   sums over all sites are revealed, each through ``ctx.reveal`` (tags ``gwas.*``);
4. optionally (``out``) writes ``results.tsv`` and the report itself (deployment), else returns
   the pooled result as plain data (:func:`result_to_plain`) to the runner, which writes once.

What every site learns: the other sites' variant lists and covariate names, the sums listed in
:mod:`veil.gwas.session` (including the total number of subjects) and the results.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from veil.errors import ConfigError, ProtocolError
from veil.gwas.codec import dp_from_json, result_from_plain, result_to_plain
from veil.gwas.exchange import exchange_and_align
from veil.gwas.outputs import RunInfo, write_outputs
from veil.gwas.plinkio import parse_phenotype, read_covariates, read_fileset
from veil.gwas.qc import QcOptions
from veil.gwas.secure_sum import SecureSum, check_sites
from veil.gwas.session import GwasOptions, GwasResult, Test, run_site
from veil.gwas.site import SiteAnalysis, SiteCovariates
from veil.gwas.variants import AbsentPolicy
from veil.runtime.context import Context
from veil.runtime.ledger import merge_ledgers
from veil.runtime.party import PartyObject
from veil.runtime.policy import RevealPolicy

Transport = Literal["memory", "grpc"]
#: the job as ``veil node`` / ``veil run`` name it
JOB_REF = "veil.gwas.job:gwas_job"


@dataclass(frozen=True)
class GwasJobOptions:
    """Options every site of a job agrees on (public; passed to each site as plain data).

    Attributes
    ----------
    gwas:
        Test, QC thresholds (``mind`` applied locally at each site) and logistic tolerance.
    absent:
        Variants missing at some site: drop them, or test them on the sites that have them.
    covar_names:
        Covariate columns to use (``None``: every column of the covariate files).
    site_covariate:
        Add the hospital as a covariate (``N − 1`` indicators).
    allow_two_sites:
        Accept two sites, where each learns the other's statistics from the sums.
    dp_epsilon, dp_top:
        Publish a differentially private release of the results with this ε (``--assoc``
        only), including the ``dp_top`` top hits; ``None``: no DP release.
    """

    gwas: GwasOptions = field(default_factory=GwasOptions)
    absent: AbsentPolicy = AbsentPolicy.DROP
    covar_names: tuple[str, ...] | None = None
    site_covariate: bool = False
    allow_two_sites: bool = False
    dp_epsilon: float | None = None
    dp_top: int = 10

    @property
    def beta(self) -> bool:
        """Report BETA instead of OR (``--logistic``)."""
        return self.gwas.beta

    def to_params(self) -> dict[str, Any]:
        """The options as job parameters (plain data; inverse of :meth:`from_params`)."""
        qc = self.gwas.qc
        return {
            "test": self.gwas.test.value,
            "maf": qc.maf,
            "geno": qc.geno,
            "hwe": qc.hwe,
            "mind": qc.mind,
            "logistic_tol": self.gwas.logistic_tol,
            "beta": self.gwas.beta,
            "absent": self.absent.value,
            "covar_names": list(self.covar_names) if self.covar_names is not None else None,
            "site_covariate": self.site_covariate,
            "allow_two_sites": self.allow_two_sites,
            "dp_epsilon": self.dp_epsilon,
            "dp_top": self.dp_top,
        }

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> GwasJobOptions:
        """Parse job parameters (e.g. ``veil node --param test=logistic``); ConfigError if bad."""
        known = set(cls().to_params())
        unknown = sorted(set(params) - known)
        if unknown:
            raise ConfigError(f"unknown gwas job parameter(s) {unknown}; known: {sorted(known)}")
        p = {**cls().to_params(), **params}
        try:
            test = Test(str(p["test"]))
        except ValueError:
            raise ConfigError(
                f"test must be one of {[t.value for t in Test]}, got {p['test']!r}"
            ) from None
        absent_text = {"available": "use-available"}.get(str(p["absent"]), str(p["absent"]))
        try:
            absent = AbsentPolicy(absent_text)
        except ValueError:
            raise ConfigError(f"absent must be drop or available, got {p['absent']!r}") from None
        qc = QcOptions(
            maf=_fraction(p["maf"], "maf"),
            geno=_fraction(p["geno"], "geno"),
            hwe=_fraction(p["hwe"], "hwe"),
            mind=_fraction(p["mind"], "mind"),
        )
        names = p["covar_names"]
        if isinstance(names, str):
            names = [n for n in names.replace(",", " ").split() if n]
        eps = p["dp_epsilon"]
        if eps is not None and not (isinstance(eps, int | float) and np.isfinite(eps) and eps > 0):
            raise ConfigError(f"dp_epsilon must be a positive number, got {eps!r}")
        if eps is not None and test is not Test.ASSOC:
            raise ConfigError("a DP release (--dp-epsilon) is available for --test assoc only")
        top = p["dp_top"]
        if not isinstance(top, int) or isinstance(top, bool) or top < 1:
            raise ConfigError(f"dp_top must be a positive integer, got {top!r}")
        tol = p["logistic_tol"]
        if not isinstance(tol, int | float) or not 0 < tol < 1:
            raise ConfigError(f"logistic_tol must be in (0, 1), got {tol!r}")
        return cls(
            gwas=GwasOptions(test=test, qc=qc, logistic_tol=float(tol), beta=_flag(p, "beta")),
            absent=absent,
            covar_names=tuple(str(n) for n in names) if names else None,
            site_covariate=_flag(p, "site_covariate"),
            allow_two_sites=_flag(p, "allow_two_sites"),
            dp_epsilon=float(eps) if eps is not None else None,
            dp_top=top,
        )


def _fraction(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ConfigError(f"--{name} must be a number in [0, 1], got {value!r}")
    return float(value)


def _flag(p: Mapping[str, Any], name: str) -> bool:
    value = p[name]
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be true or false, got {value!r}")
    return value


# --------------------------------------------------------------------------- the SPMD job
def gwas_job(
    ctx: Context,
    prefix: str,
    covar: str | None = None,
    sites: Sequence[str] | None = None,
    out: str | None = None,
    **options: Any,
) -> dict[str, Any]:
    """One site of a federated GWAS (see the module docstring).

    Parameters
    ----------
    ctx:
        The site's context; its party name is the site's name.
    prefix:
        This site's PLINK fileset prefix (``PREFIX.bed/.bim/.fam``).
    covar:
        This site's covariate file (``FID IID cov...``), or None/"" for none.
    sites:
        The sites in a fixed order (default: the cluster's parties); the first site's ``.bim``
        gives the reference allele orientation.
    out:
        If given, this site writes ``results.tsv`` and the report there (deployment).
    **options:
        :meth:`GwasJobOptions.from_params` parameters (``test``, ``maf``, ``absent``, ...).

    Returns
    -------
    dict
        Plain data: ``result`` (:func:`result_to_plain`; with ``out``, instead ``out``,
        ``n_tested`` and ``lambda_gc``), ``n_aligned``, ``absent``,
        ``conflicts``, ``flipped`` (per site), ``n_removed_mind`` (this site), ``seconds``
        per stage and ``dp`` (the DP release, if asked).
    """
    start = time.perf_counter()
    opts = GwasJobOptions.from_params(options)
    names = tuple(sites) if sites else ctx.cluster
    check_sites(names, allow_two_sites=opts.allow_two_sites)
    if set(names) != set(ctx.cluster):
        raise ConfigError(
            f"the sites {list(names)} must be exactly the cluster's parties {list(ctx.cluster)}"
        )
    me = ctx.party
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    fileset = read_fileset(prefix, me)
    # fail here, naming this site's .fam, before the other sites wait on it
    parse_phenotype(fileset.samples, me, Path(f"{prefix}.fam"))
    covs: SiteCovariates | None = None
    if opts.covar_names and not covar:
        raise ConfigError(
            f"site {me!r}: covariates {list(opts.covar_names)} were asked (covar_names) but this "
            "site has no covariate file; pass one (--covar / the job's covar parameter)"
        )
    if covar:
        values, cov_names = read_covariates(covar, me, fileset.samples, opts.covar_names)
        covs = SiteCovariates(values, tuple(cov_names))
    seconds["read"] = time.perf_counter() - t
    t = time.perf_counter()
    alignment = exchange_and_align(ctx, names, fileset.variants, covs, opts.absent)
    site = SiteAnalysis(
        fileset,
        alignment.site(me),
        covs,
        mind=opts.gwas.qc.mind,
        site_index=names.index(me),
        n_sites=len(names),
        site_covariate=opts.site_covariate,
    )
    seconds["align"] = time.perf_counter() - t
    t = time.perf_counter()
    secure = SecureSum(ctx, names, allow_two_sites=opts.allow_two_sites)
    result = run_site(site, alignment.variants, len(names), secure, opts.gwas, secure.counts)
    mind_removed = None
    if opts.gwas.qc.mind is not None:  # the pooled count only, like every other statistic
        summed = secure("gwas/mind-removed", np.array([float(site.n_removed_mind)]))
        mind_removed = round(float(summed[0]))
    seconds["qc+test"] = time.perf_counter() - t
    dp = None
    if opts.dp_epsilon is not None:
        t = time.perf_counter()
        dp = _dp_publish(ctx, names, result, opts)
        seconds["dp"] = time.perf_counter() - t
    seconds["total"] = time.perf_counter() - start
    summary: dict[str, Any] = {
        "site": me,
        "sites": list(names),
        "result": result_to_plain(result),
        "n_aligned": len(alignment.variants),
        "absent": {s: len(alignment.absent.get(s, ())) for s in names},
        "conflicts": {s: len(alignment.conflicts.get(s, ())) for s in names},
        "flipped": alignment.n_flipped(),
        "n_removed_mind": site.n_removed_mind,
        "mind_removed": mind_removed,
        "values_summed": secure.values_summed,
        "aggregates": secure.aggregates,
        "seconds": seconds,
        "dp": dp,
    }
    if out:
        stats = ctx.stats()
        info = RunInfo(
            sites=names,
            n_aligned=summary["n_aligned"],
            absent=summary["absent"],
            party_stats={me: _party_stats(stats, seconds["total"])},
            stage_seconds={k: v for k, v in seconds.items() if k != "total"},
            ledger=ctx.ledger.entries(),
            transport="grpc (veil node)",
            mind_removed=mind_removed,
        )
        write_outputs(Path(out), result, opts.gwas, info, dp=dp_from_json(dp) if dp else None)
        # the results are on disk: return a compact summary (what `veil node` prints)
        del summary["result"]
        summary.update(
            out=str(out),
            n_tested=len(result.variants),
            lambda_gc=result.lambda_gc(),
            seconds=seconds,
        )
    return summary


def _party_stats(stats: Mapping[str, Any], seconds: float) -> dict[str, float]:
    return {
        "bytes_sent": float(stats.get("bytes_sent", 0)),
        "messages": float(stats.get("messages_sent", 0)),
        "seconds": float(seconds),
    }


@dataclass(frozen=True)
class AssocTopK:
    """The DP release of ``--assoc`` results as a ``ctx.reveal`` mechanism (see
    :mod:`veil.gwas.dp_release`): the owner draws it (OpenDP noise) and spends its budget."""

    epsilon: float
    k: int

    def describe(self) -> dict[str, Any]:
        """Public parameters, recorded in every site's ledger."""
        return {
            "mechanism": "gwas top-k allelic chi-square: noisy top-k selection, then Laplace",
            "epsilon": self.epsilon,
            "delta": 0.0,
            "k": self.k,
            "unit": "subject",
        }

    def apply(self, value: GwasResult, *, budget: Any = None) -> tuple[dict[str, Any], list[Any]]:
        """At the owner: the release (plain JSON) and its DP events, the budget spent first."""
        from veil.gwas.dp_release import dp_release

        rel = dp_release(value, self.epsilon, k=self.k)
        if budget is not None:
            for record in rel.records:
                budget.spend(record)
        return rel.to_json(), [r.to_dict() for r in rel.records]


def _dp_publish(
    ctx: Context, sites: Sequence[str], result: GwasResult, opts: GwasJobOptions
) -> dict[str, Any]:
    """The DP release of the results, drawn at the first site and revealed to every site; the
    ε is recorded in every site's ledger (``ctx.reveal(..., dp=AssocTopK)``)."""
    assert opts.dp_epsilon is not None
    first = sites[0]
    k = min(opts.dp_top, len(result.variants))
    obj = PartyObject(ctx, first, result if ctx.party == first else None)
    mech = AssocTopK(opts.dp_epsilon, k)
    got = ctx.reveal(obj, to=ctx.parties(*sites), tag="gwas.dp_release", dp=mech)
    if not isinstance(got, dict) or not isinstance(got.get("hits"), list):
        raise ProtocolError(f"site {first!r} sent a malformed DP release")
    return got


# --------------------------------------------------------------------------- the runner
@dataclass
class GwasRun:
    """A finished run of every site on this machine (:func:`run_gwas`).

    Attributes
    ----------
    result:
        The pooled result (identical at every site).
    options:
        The options of the run.
    facts:
        Sites, aligned and absent variants, bytes/messages/seconds per site, stage seconds
        (the first site's), the merged audit ledger, the transport.
    summaries:
        Each site's own summary (see :func:`gwas_job`).
    seconds:
        Wall time of the whole run (start-up included).
    report:
        The report dict, when ``out`` was given.
    """

    result: GwasResult
    options: GwasJobOptions
    facts: RunInfo
    summaries: dict[str, dict[str, Any]]
    seconds: float
    report: dict[str, Any] | None = None

    @property
    def compute_seconds(self) -> float:
        """The slowest site's in-job time (start-up and process launch excluded)."""
        return max(float(s["seconds"]["total"]) for s in self.summaries.values())

    @property
    def dp(self) -> Any:
        """The DP release (a :class:`veil.gwas.dp_release.DpRelease`), if one was asked."""
        data = self.summaries[self.facts.sites[0]].get("dp")
        return dp_from_json(data) if data else None

    def write(
        self,
        out: Path,
        *,
        baseline: tuple[str, GwasResult] | None = None,
        top: int = 10,
        label: str = "this run",
    ) -> dict[str, Any]:
        """Write ``results.tsv`` and the report into ``out`` (see :func:`write_outputs`;
        ``label`` names this run next to ``baseline``'s label)."""
        self.report = write_outputs(
            out,
            self.result,
            self.options.gwas,
            self.facts,
            baseline=baseline,
            dp=self.dp,
            top=top,
            label=label,
        )
        return self.report


def run_gwas(
    sites: Mapping[str, str | Path],
    *,
    covars: Mapping[str, str | Path] | None = None,
    options: GwasJobOptions | None = None,
    transport: Transport = "memory",
    out: Path | None = None,
    baseline: tuple[str, GwasResult] | None = None,
    seed: int = 0,
    timeout: float = 300.0,
    policy: RevealPolicy | None = None,
    ledger_dir: Path | None = None,
    privacy_budget: tuple[float, float] | None = None,
    on_start: Callable[[str], None] | None = None,
) -> GwasRun:
    """Run :func:`gwas_job` at every site on this machine and (with ``out``) write the outputs.

    Parameters
    ----------
    sites:
        ``{site name: fileset prefix}`` in site order (the first gives the reference alleles).
    covars:
        ``{site name: covariate file}`` (every site or none).
    options:
        The job's options (default: ``--assoc`` without QC).
    transport:
        ``"memory"`` (threads) or ``"grpc"`` (one process per site, mutual TLS on 127.0.0.1).
    out:
        Folder for ``results.tsv``, ``report.json``, ``report.html`` and the plots; written
        only if the whole run succeeds.
    baseline:
        ``(label, result)`` of another run to compare with in the report.
    seed, timeout, policy, ledger_dir, privacy_budget:
        As for :func:`veil.runtime.simulate.simulate` (``privacy_budget`` caps each site's DP
        releases; the DP release is drawn at the first site).
    on_start:
        Called with a one-line description before the sites start (progress output).

    Raises
    ------
    ConfigError
        Unknown site in ``covars``, too few sites, two sites without ``allow_two_sites``.
    veil.errors.PartyFailed
        A site failed (bad input names the site and file).
    """
    from veil.runtime.simulate import simulate_detailed

    opts = options or GwasJobOptions()
    names = [str(s) for s in sites]
    check_sites(names, allow_two_sites=opts.allow_two_sites)
    cov = dict(covars or {})
    unknown = sorted(set(cov) - set(names))
    if unknown:
        raise ConfigError(f"--covar names site(s) {unknown} with no --site (sites: {names})")
    if transport not in ("memory", "grpc"):
        raise ConfigError(f"--transport must be memory or grpc, got {transport!r}")
    common = opts.to_params()
    params = {
        s: {
            "prefix": str(sites[s]),
            "covar": str(cov[s]) if s in cov else None,
            "sites": names,
            **common,
        }
        for s in names
    }
    if on_start is not None:
        how = "processes, gRPC + mutual TLS" if transport == "grpc" else "threads, in memory"
        on_start(f"federated GWAS ({opts.gwas.test.value}) over {', '.join(names)} ({how})")
    t = time.perf_counter()
    sim = simulate_detailed(
        gwas_job,
        names,
        transport=transport,
        params=params,
        per_party_params=True,
        policy=policy,
        seed=seed,
        timeout=timeout,
        ledger_dir=ledger_dir,
        privacy_budget=privacy_budget,
    )
    wall = time.perf_counter() - t
    summaries: dict[str, dict[str, Any]] = {s: sim.results[s] for s in names}
    first = summaries[names[0]]
    result = result_from_plain(first["result"])
    stages = {k: float(v) for k, v in first["seconds"].items() if k != "total"}
    stages["job wall (start-up incl.)"] = wall
    facts = RunInfo(
        sites=tuple(names),
        n_aligned=int(first["n_aligned"]),
        absent={k: int(v) for k, v in first["absent"].items()},
        party_stats={
            s: _party_stats(sim.stats.get(s, {}), float(summaries[s]["seconds"]["total"]))
            for s in names
        },
        stage_seconds=stages,
        ledger=merge_ledgers(sim.ledgers.values()),
        transport=transport,
        mind_removed=first.get("mind_removed"),
    )
    run = GwasRun(result, opts, facts, summaries, wall)
    if out is not None:
        run.write(out, baseline=baseline)
    return run


__all__ = [
    "JOB_REF",
    "AssocTopK",
    "GwasJobOptions",
    "GwasRun",
    "dp_from_json",
    "gwas_job",
    "result_from_plain",
    "result_to_plain",
    "run_gwas",
    "write_outputs",
]

"""``veil demo gwas``: a federated GWAS of three hospitals on real genotypes (snpStats).

The snpStats ``for.exercise`` study (1,000 subjects x 28,501 SNPs of chromosome 10, 500 cases
and 500 controls from two ancestry strata, CEU and JPT+CHB) is fetched from Debian's
``r-bioc-snpstats`` package at run time (GPL data: downloaded into the user's cache, never
committed or redistributed; :mod:`veil.gwas.demo_data`). It is split over three hospitals whose
ancestry mixes differ (:data:`SplitMode.BY_STRATUM <veil.gwas.split.SplitMode>`: one hospital
all CEU, one mixed, one all JPT+CHB), each hospital's PLINK fileset and covariate file written
to ``out/data/<hospital>/``. The federated job (:func:`veil.gwas.job.run_gwas`, one process per
hospital over gRPC with mutual TLS by default) then runs PLINK's ``--logistic`` with QC
(``--maf 0.01 --geno 0.1 --hwe 1e-6``) twice:

a. without covariates: the strata differ in allele frequencies *and* case fraction, so the test
   statistics are inflated (genomic-control λ well above 1);
b. with the ancestry stratum as covariate (``STRATUM``): λ back to about 1.

``out/results.tsv`` holds run (b) in PLINK 1.9's columns; ``out/report.{html,json}`` and the
plots compare (b) with (a) (``baseline``); ``out/without_stratum.tsv`` holds run (a). With a DP
epsilon (default 10) a third, quick run of the allelic test (``--assoc``) publishes a
differentially private top-5 (:mod:`veil.gwas.dp_release`) in the report, its ε in the ledger.
``out/demo.json`` summarises the hospitals' mixes, both λ, the hits, stage seconds and — when
``plink1.9`` is on the PATH — the largest difference to PLINK 1.9 run on the pooled fileset
(computed here for validation only: the demo holds all the data; the hospitals never pool).

What is revealed: only sums over the three hospitals (see :mod:`veil.gwas.session` and
``docs/gwas.md``); every reveal is in the audit ledger of the report.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
from rich.console import Console
from rich.table import Table

from veil.errors import ConfigError, ProtocolError
from veil.gwas.bench import QC, plink_agreement, time_plink
from veil.gwas.demo_data import Study, load_for_exercise, write_study
from veil.gwas.job import GwasJobOptions, GwasRun, run_gwas
from veil.gwas.outputs import write_outputs
from veil.gwas.results import write_results
from veil.gwas.session import GwasOptions, GwasResult, Test
from veil.gwas.split import SplitMode, split_study
from veil.runtime.ledger import merge_ledgers
from veil.runtime.node import write_atomic

#: the three hospitals, in site order (the first gives the reference allele orientation)
HOSPITALS = ("hospital_a", "hospital_b", "hospital_c")
#: the ancestry covariate of the snpStats study (0 CEU, 1 JPT+CHB)
STRATUM = "STRATUM"
BASELINE_LABEL = "without the ancestry covariate"
LABEL = "with the ancestry covariate"


def write_hospitals(
    study: Study, folder: Path, *, seed: int = 1, mode: SplitMode = SplitMode.BY_STRATUM
) -> dict[str, tuple[Path, Path, dict[str, Any]]]:
    """Split ``study`` over :data:`HOSPITALS` and write ``folder/<hospital>/<hospital>.bed/.bim/
    .fam/.cov``; return per hospital ``(prefix, covariate file, composition)``.

    The folder is written in a staging folder and moved in whole (a failure leaves the previous
    data, or none, never a half-written fileset).
    """
    parts = split_study(study, len(HOSPITALS), mode, seed=seed)
    folder.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    out: dict[str, tuple[Path, Path, dict[str, Any]]] = {}
    try:
        for name, part in zip(HOSPITALS, parts, strict=True):
            write_study(part, stage / name / name)
            out[name] = (folder / name / name, folder / name / f"{name}.cov", _composition(part))
        if folder.exists():
            shutil.rmtree(folder)
        stage.replace(folder)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return out


def _composition(part: Study) -> dict[str, Any]:
    pheno = part.samples.pheno
    names = list(part.covariate_names)
    share = None
    if STRATUM in names:
        share = float(np.nanmean(part.covariates[:, names.index(STRATUM)]))
    return {
        "subjects": len(part.samples),
        "cases": int(np.count_nonzero(pheno == 2)),
        "controls": int(np.count_nonzero(pheno == 1)),
        "stratum_1_share": share,
    }


def options(with_stratum: bool) -> GwasJobOptions:
    """``--logistic`` with QC, with or without the ``STRATUM`` covariate."""
    return GwasJobOptions(
        gwas=GwasOptions(test=Test.LOGISTIC, qc=QC),
        covar_names=(STRATUM,) if with_stratum else None,
    )


def run(
    out: Path,
    *,
    transport: Literal["memory", "grpc"] = "grpc",
    console: Console | None = None,
    study: Study | None = None,
    cache_dir: Path | None = None,
    dp_epsilon: float | None = 10.0,
    dp_top: int = 5,
    plink_check: bool = True,
    seed: int = 0,
) -> dict[str, Any]:
    """Run the demo end to end into ``out``; return the summary written to ``out/demo.json``.

    Parameters
    ----------
    out:
        Output folder (``veil demo gwas``: ``out/gwas``).
    transport:
        ``grpc`` (one process per hospital, mutual TLS) or ``memory`` (threads).
    console:
        Where progress goes (default: stderr).
    study:
        The study to split (default: the snpStats ``for.exercise`` study, fetched on first use);
        it needs a ``STRATUM`` covariate and a case/control phenotype.
    cache_dir:
        Cache of the Debian package (default ``$VEIL_CACHE`` or ``~/.cache/veil``).
    dp_epsilon, dp_top:
        DP release of the allelic test's top hits (``None``: no DP run).
    plink_check:
        Compare with ``plink1.9`` on the pooled fileset when it is installed.
    seed:
        Job seed.
    """
    console = console or Console(stderr=True)
    out = Path(out)
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    t = t0
    if study is None:
        console.print(
            "[bold]1/5[/] snpStats for.exercise: 1,000 subjects x 28,501 chr10 SNPs "
            "(Debian r-bioc-snpstats, GPL; fetched into the cache, not redistributed)"
        )
        study = load_for_exercise(cache_dir)
    else:
        console.print(f"[bold]1/5[/] study of {len(study.samples):,} subjects x "
                      f"{len(study.variants):,} variants")  # fmt: skip
    if STRATUM not in study.covariate_names:
        raise ConfigError(
            f"the demo study needs a {STRATUM!r} covariate (has {list(study.covariate_names)})"
        )
    seconds["load"] = time.perf_counter() - t

    t = time.perf_counter()
    console.print("[bold]2/5[/] three hospitals with different ancestry mixes, each its own "
                  f"PLINK fileset + covariate file in {out / 'data'}")  # fmt: skip
    hospitals = write_hospitals(study, out / "data")
    _print_hospitals(console, hospitals)
    sites = {h: v[0] for h, v in hospitals.items()}
    covars = {h: v[1] for h, v in hospitals.items()}
    seconds["split"] = time.perf_counter() - t

    def job(step: str, what: str, opts: GwasJobOptions) -> GwasRun:
        console.print(f"[bold]{step}[/] {what}")
        cov = covars if opts.covar_names else None
        r = run_gwas(sites, covars=cov, options=opts, transport=transport, seed=seed)
        sent = max(float(s["bytes_sent"]) for s in r.facts.party_stats.values())
        console.print(
            f"    {len(r.result.variants):,} variants tested, lambda_GC = "
            f"{r.result.lambda_gc():.3f}; {r.result.rounds} secure sums, "
            f"{sent / 1e6:.1f} MB sent per hospital; {r.compute_seconds:.2f} s in the job, "
            f"{r.seconds:.2f} s with start-up"
        )
        return r

    how = "processes, gRPC + mutual TLS" if transport == "grpc" else "threads, in memory"
    t = time.perf_counter()
    run_a = job("3/5", f"--logistic without covariates ({how})", options(False))
    seconds["run_a"] = time.perf_counter() - t
    t = time.perf_counter()
    run_b = job("4/5", f"--logistic with the ancestry covariate {STRATUM} ({how})", options(True))
    seconds["run_b"] = time.perf_counter() - t
    run_dp = None
    if dp_epsilon is not None:
        t = time.perf_counter()
        console.print(f"[bold]5/5[/] DP release for publication: --assoc top {dp_top}, "
                      f"epsilon = {dp_epsilon:g}")  # fmt: skip
        dp_opts = GwasJobOptions(gwas=GwasOptions(test=Test.ASSOC, qc=QC), dp_epsilon=dp_epsilon,
                                 dp_top=dp_top)  # fmt: skip
        run_dp = run_gwas(sites, options=dp_opts, transport=transport, seed=seed)
        rel = run_dp.dp
        if rel is not None:
            console.print(f"    released (noisy chi-square): {', '.join(map(str, rel.snp))}; "
                          "epsilon recorded in every hospital's ledger")  # fmt: skip
        seconds["dp"] = time.perf_counter() - t
    else:
        console.print("[bold]5/5[/] report")

    plink = None
    if plink_check and shutil.which("plink1.9") is not None:
        t = time.perf_counter()
        plink = compare_with_plink(study, run_b.result, out)
        seconds["plink_check"] = time.perf_counter() - t
        console.print(
            f"    PLINK 1.9 on the pooled fileset (validation only): {plink['variants']:,} "
            f"variants, max |STAT - PLINK| = {plink['max_abs_stat_diff']:.1e}, max |P - PLINK| "
            f"= {plink['max_abs_p_diff']:.1e}: "
            + ("identical to PLINK's precision" if plink["identical"] else "DIFFERENT")
        )
        if not plink["identical"]:
            raise ProtocolError(f"the federated result differs from PLINK 1.9: {plink}")

    t = time.perf_counter()
    facts = run_b.facts
    dp = None
    if run_dp is not None:
        dp = run_dp.dp
        facts = dataclasses.replace(
            facts,
            ledger=merge_ledgers([[dict(e) for e in r.facts.ledger] for r in (run_b, run_dp)]),
        )
    report = write_outputs(out, run_b.result, run_b.options.gwas, facts,
                           baseline=(BASELINE_LABEL, run_a.result), dp=dp,
                           label=LABEL)  # fmt: skip
    write_results(out / "without_stratum.tsv", run_a.result)
    seconds["report"] = time.perf_counter() - t
    seconds["total"] = time.perf_counter() - t0
    summary: dict[str, Any] = {
        "job": "gwas",
        "transport": transport,
        "hospitals": {h: v[2] for h, v in hospitals.items()},
        "lambda_gc": {
            BASELINE_LABEL: report["baseline"]["lambda_gc"]["value"],
            LABEL: report["lambda_gc"]["value"],
        },
        "top_hits": report["top_hits"],
        "genome_wide": report["qc"]["variants"]["genome_wide"],
        "plink_check": plink,
        "job_seconds": {
            "without_stratum": {"compute": run_a.compute_seconds, "wall": run_a.seconds},
            "with_stratum": {"compute": run_b.compute_seconds, "wall": run_b.seconds},
        },
        "seconds": seconds,
        "report": str(out / "report.html"),
    }
    write_atomic(out / "demo.json", json.dumps(summary, indent=2).encode())
    _print_hits(console, report)
    console.print(f"report: {out / 'report.html'} (results.tsv, report.json, plots in {out}; "
                  f"{seconds['total']:.1f} s)")  # fmt: skip
    return summary


def compare_with_plink(study: Study, result: GwasResult, out: Path) -> dict[str, Any]:
    """Run ``plink1.9 --logistic`` with the ``STRATUM`` covariate on the pooled study (in a
    temporary folder in ``out``) and compare with ``result``
    (:func:`veil.gwas.bench.plink_agreement`)."""
    with tempfile.TemporaryDirectory(prefix=".plink-check.", dir=out) as tmp:
        _, plink_out = time_plink(study, 1, Path(tmp), covar_names=(STRATUM,))
        return plink_agreement(result, plink_out)


def _print_hospitals(
    console: Console, hospitals: dict[str, tuple[Path, Path, dict[str, Any]]]
) -> None:
    table = Table(title="hospitals (each keeps its own genotypes and phenotypes)")
    for col in ("hospital", "subjects", "cases", "controls", "JPT+CHB share"):
        table.add_column(col)
    for name, (_, _, c) in hospitals.items():
        share = "-" if c["stratum_1_share"] is None else f"{c['stratum_1_share']:.0%}"
        table.add_row(name, f"{c['subjects']:,}", str(c["cases"]), str(c["controls"]), share)
    console.print(table)


def _print_hits(console: Console, report: dict[str, Any]) -> None:
    base = report["baseline"]
    lam_a, lam_b = base["lambda_gc"]["value"], report["lambda_gc"]["value"]
    console.print(f"genomic control: lambda = {lam_a:.3f} {BASELINE_LABEL} -> {lam_b:.3f} {LABEL}")
    table = Table(title=f"top hits, --logistic {LABEL}")
    for col in ("CHR", "SNP", "BP", "A1", "OR", "STAT", "P", "P (no covariate)"):
        table.add_column(col)
    p_base = {h["SNP"]: h["P"] for h in base["top_hits"]}
    for h in report["top_hits"][:10]:
        pb = p_base.get(h["SNP"])
        table.add_row(
            h["CHR"], h["SNP"], str(h["BP"]), h["A1"], _g(h.get("OR")), _g(h["STAT"]),
            _g(h["P"]), "(> top 10)" if pb is None else _g(pb),
        )  # fmt: skip
    console.print(table)


def _g(x: Any) -> str:
    return "NA" if x is None else f"{x:.4g}"


__all__ = [
    "HOSPITALS",
    "QC",
    "STRATUM",
    "compare_with_plink",
    "options",
    "run",
    "write_hospitals",
]

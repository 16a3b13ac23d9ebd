"""``veil bench gwas``: the federated GWAS against PLINK 1.9 on the pooled data, in one run.

The job of the issue's benchmark: the snpStats ``for.exercise`` study (1,000 subjects x 28,501
SNPs; ``--times K`` repeats every subject K times) split over ``--sites`` hospitals (by ancestry
stratum, as ``veil demo gwas``), QC (``--maf 0.01 --geno 0.1 --hwe 1e-6``) and ``--logistic``
with one covariate (``STRATUM``). Lines, all with ``bench = "gwas.logistic"``:

* ``plink1.9``: PLINK 1.9 on the pooled fileset, the whole process, ``--threads 1``;
  ``seconds`` is the median of ``--repeats`` runs.
* ``veil-local``: every site in this process over the plaintext twin of secure aggregation
  (:class:`~veil.gwas.session.LocalSum`; sites prepared from memory, no file reading, no
  transport); ``seconds`` with the sites taking turns, ``critical_path`` summing per round the
  slowest site. ``--dense`` adds ``veil-local-dense``, the same with the dense logistic kernel
  forced (the cell kernel is chosen automatically for a categorical covariate).
* ``veil-memory`` / ``veil-grpc``: the real job (:func:`veil.gwas.job.run_gwas`: each site reads
  its own fileset, aligns variants with the others, secure sums of masked fixed-point limbs)
  over threads and in-memory links, or one process per site over gRPC with mutual TLS.
  ``seconds`` is the federated computation inside the job — the slowest site's time from the
  start of the job function to its end (reading, alignment, QC and Newton with secure sums),
  process launch, imports and TLS set-up excluded (``compute_seconds``) — and ``job_seconds``
  the whole job's wall time (start-up included); both medians of ``--repeats`` runs.

Every veil line has ``ratio_vs_plink`` (``seconds`` / PLINK's), ``job_ratio_vs_plink``,
``bytes`` (the most any site sent; ``bytes_per_site``), ``rounds`` (secure sums), ``stages``
(the first site's read/align/qc+test seconds in the median run) and the agreement with PLINK
(:func:`veil.gwas.bench.plink_agreement`: ``max_abs_err`` = max |STAT − PLINK's STAT|,
``identical`` = same variants, every STAT and P within PLINK's printed precision).

BLAS runs with ``--threads`` threads (default 1, like PLINK) in every site.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from veil.bench.common import emit, median, record
from veil.errors import ConfigError
from veil.gwas.bench import (
    QC,
    plink_agreement,
    replicate,
    split_filesets,
    time_local,
    time_plink,
)
from veil.gwas.demo_data import Study
from veil.gwas.job import GwasJobOptions, GwasRun, run_gwas
from veil.gwas.session import GwasOptions, Test
from veil.gwas.split import SplitMode, write_split

BENCH = "gwas.logistic"
TRANSPORTS = ("memory", "grpc")
_BLAS_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def run(
    study: Study,
    *,
    n_sites: int = 3,
    times: int = 1,
    repeats: int = 3,
    transports: Sequence[str] = TRANSPORTS,
    local: bool = True,
    dense: bool = False,
    plink: bool = True,
    mode: SplitMode = SplitMode.BY_STRATUM,
    workdir: Path | None = None,
) -> list[dict[str, Any]]:
    """Benchmark PLINK and veil on ``study`` replicated ``times``; emit and return the records.

    The covariate is the study's first covariate column. ``dense`` adds ``veil-local-dense``
    (the in-process run with the dense logistic kernel forced, for comparison with the cell
    kernel chosen automatically for a categorical covariate). ``plink=False`` skips PLINK (then
    no ratios and no agreement are reported).
    """
    if repeats < 1:
        raise ConfigError(f"--repeats must be at least 1, got {repeats}")
    bad = [t for t in transports if t not in TRANSPORTS]
    if bad:
        raise ConfigError(f"unknown transport(s) {bad}; use {list(TRANSPORTS)}")
    if not study.covariate_names:
        raise ConfigError("the benchmark study needs a covariate (e.g. STRATUM)")
    covar = study.covariate_names[0]
    data = replicate(study, times)
    n, v = int(data.genotypes.shape[1]), int(data.genotypes.shape[0])
    common: dict[str, Any] = {"variants": v, "sites": n_sites, "times": times, "covariate": covar,
              "split": mode.value, "repeats": repeats}  # fmt: skip
    out: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="veil-bench-gwas-", dir=workdir) as tmp_name:
        tmp = Path(tmp_name)
        p_sec = None
        p_out = None
        if plink:
            p_secs, p_out = time_plink(data, repeats, tmp / "plink", covar_names=(covar,))
            p_sec = median(p_secs)
            out.append(record(BENCH, "plink1.9", n, p_sec, threads=1, runs=p_secs, **common))
            emit(out[-1])

        def agreement(res: Any) -> dict[str, Any]:
            if p_out is None:
                return {}
            return plink_agreement(res, p_out)

        def ratio(x: float) -> float | None:
            return x / p_sec if p_sec else None

        if local:
            filesets, covs = split_filesets(data, n_sites, mode)
            for impl, cells in (("veil-local", True), ("veil-local-dense", False)):
                if not cells and not dense:
                    continue
                secs, crit, nbytes, res = time_local(filesets, covs, repeats, use_cells=cells)
                agree = agreement(res)
                out.append(record(
                    BENCH, impl, n, median(secs), bytes_=nbytes, rounds=res.rounds,
                    max_abs_err=agree.get("max_abs_stat_diff"), critical_path=median(crit),
                    ratio_vs_plink=ratio(median(secs)), runs=secs, plink=agree, **common,
                ))  # fmt: skip
                emit(out[-1])
            del filesets, covs
        if transports:
            written = write_split(data, tmp / "sites", n_sites, mode, seed=1)
            sites = {name: prefix for name, prefix, _ in written}
            covars = {name: cov for name, _, cov in written}
            opts = GwasJobOptions(gwas=GwasOptions(Test.LOGISTIC, QC), covar_names=(covar,),
                                  allow_two_sites=n_sites == 2)  # fmt: skip
            for transport in transports:
                runs = [
                    run_gwas(sites, covars=covars, options=opts, transport=transport)  # type: ignore[arg-type]
                    for _ in range(repeats)
                ]
                out.append(_job_record(runs, transport, n, agreement, ratio, common))
                emit(out[-1])
    return out


def _job_record(
    runs: list[GwasRun], transport: str, n: int, agreement: Any, ratio: Any,
    common: dict[str, Any],
) -> dict[str, Any]:  # fmt: skip
    compute = [r.compute_seconds for r in runs]
    wall = [r.seconds for r in runs]
    mid = sorted(range(len(runs)), key=lambda i: compute[i])[len(runs) // 2]
    chosen = runs[mid]
    per_site = {s: int(st["bytes_sent"]) for s, st in chosen.facts.party_stats.items()}
    first = chosen.summaries[chosen.facts.sites[0]]["seconds"]
    agree = agreement(chosen.result)
    return record(
        BENCH, f"veil-{transport}", n, median(compute), bytes_=max(per_site.values()),
        rounds=chosen.result.rounds, max_abs_err=agree.get("max_abs_stat_diff"),
        job_seconds=median(wall), ratio_vs_plink=ratio(median(compute)),
        job_ratio_vs_plink=ratio(median(wall)), bytes_per_site=per_site,
        stages={k: float(x) for k, x in first.items()}, runs=compute, job_runs=wall,
        tested=len(chosen.result.variants), lambda_gc=chosen.result.lambda_gc(),
        plink=agree, **common,
    )  # fmt: skip


def set_blas_threads(threads: int) -> None:
    """Limit BLAS to ``threads`` threads here (threadpoolctl) and in site processes (env)."""
    for name in _BLAS_ENV:
        os.environ[name] = str(threads)
    try:
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        return
    threadpool_limits(limits=threads)


def main(argv: list[str]) -> None:
    """``veil bench gwas [--times K] [--sites N] [--repeats R] [--transport T ...]``."""
    ap = argparse.ArgumentParser(prog="veil bench gwas", description=__doc__.split("\n\n")[0])
    ap.add_argument("--times", type=int, default=1, help="repeat every subject K times")
    ap.add_argument("--sites", type=int, default=3, help="number of hospitals")
    ap.add_argument("--repeats", type=int, default=3, help="runs per line (median reported)")
    ap.add_argument("--transport", action="append", choices=TRANSPORTS,
                    help="veil job transport(s) (default: memory and grpc)")  # fmt: skip
    ap.add_argument("--no-local", action="store_true", help="skip the in-process veil-local line")
    ap.add_argument("--dense", action="store_true", help="add veil-local with the dense kernel")
    ap.add_argument("--no-plink", action="store_true", help="skip PLINK 1.9")
    modes = [m.value for m in SplitMode]
    ap.add_argument("--split", default=SplitMode.BY_STRATUM.value, choices=modes,
                    help="how subjects go to hospitals")  # fmt: skip
    ap.add_argument("--threads", type=int, default=1, help="BLAS threads per site")
    ap.add_argument("--workdir", type=Path, default=None, help="folder for temporary filesets")
    args = ap.parse_args(argv)
    set_blas_threads(args.threads)
    from veil.gwas.demo_data import load_for_exercise

    run(
        load_for_exercise(),
        n_sites=args.sites,
        times=args.times,
        repeats=args.repeats,
        transports=tuple(args.transport or TRANSPORTS),
        local=not args.no_local,
        dense=args.dense,
        plink=not args.no_plink,
        mode=SplitMode(args.split),
        workdir=args.workdir,
    )


__all__ = ["BENCH", "main", "run", "set_blas_threads"]

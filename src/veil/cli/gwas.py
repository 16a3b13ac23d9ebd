"""``veil gwas``: a federated GWAS over several hospitals' PLINK filesets, all run on this machine.

Each ``--site NAME=PREFIX`` is one hospital (its ``PREFIX.bed/.bim/.fam``); every site runs
:func:`veil.gwas.job.gwas_job` (threads over memory, or processes over gRPC with mutual TLS) and
only sums over all sites are revealed. The same job runs at real institutions through
``veil node veil.gwas.job:gwas_job`` (``docs/gwas.md``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from veil.cli.common import check_out_dir, err_console, user_errors


def gwas(
    site: Annotated[
        list[str], typer.Option(help="A hospital and its PLINK fileset: NAME=PREFIX (repeat).")
    ],
    out: Annotated[
        Path, typer.Option(help="Folder for results.tsv, report.json/.html and the plots.")
    ],
    covar: Annotated[
        list[str] | None,
        typer.Option(help="A hospital's covariate file (FID IID cov...): NAME=FILE (repeat)."),
    ] = None,
    covar_name: Annotated[
        str | None, typer.Option(help="Covariates to use, comma-separated (default: all).")
    ] = None,
    test: Annotated[str, typer.Option(help="assoc, trend, logistic or linear.")] = "assoc",
    maf: Annotated[float | None, typer.Option(help="PLINK --maf: minimum MAF.")] = None,
    geno: Annotated[float | None, typer.Option(help="PLINK --geno: maximum missing rate.")] = None,
    hwe: Annotated[float | None, typer.Option(help="PLINK --hwe: minimum HWE P.")] = None,
    mind: Annotated[
        float | None, typer.Option(help="PLINK --mind: maximum per-subject missing rate.")
    ] = None,
    absent: Annotated[
        str, typer.Option(help="A variant some site lacks: drop, or test it where available.")
    ] = "drop",
    site_covariate: Annotated[
        bool, typer.Option("--site-covariate", help="Add the hospital as a covariate.")
    ] = False,
    beta: Annotated[
        bool, typer.Option("--beta", help="--logistic: report BETA instead of OR.")
    ] = False,
    dp_epsilon: Annotated[
        float | None, typer.Option(help="Publish a DP release of the results with this epsilon.")
    ] = None,
    dp_top: Annotated[int, typer.Option(help="DP release: number of top hits.")] = 10,
    transport: Annotated[
        str, typer.Option(help="memory (threads) or grpc (processes, mutual TLS).")
    ] = "memory",
    allow_two_sites: Annotated[
        bool,
        typer.Option(
            "--allow-two-sites",
            help="Accept two hospitals (each then learns the other's statistics).",
        ),
    ] = False,
    seed: Annotated[int, typer.Option(help="Job seed.")] = 0,
) -> None:
    """Federated GWAS: PLINK's association tests on all hospitals' subjects, revealing only sums
    over hospitals (secure aggregation); results equal PLINK 1.9 on the pooled fileset."""
    with user_errors():
        from veil.errors import ConfigError
        from veil.gwas.job import GwasJobOptions, run_gwas

        sites = _named(site, "--site")
        covars = _named(covar or [], "--covar")
        unknown = sorted(set(covars) - set(sites))
        if unknown:
            raise ConfigError(f"--covar names site(s) {unknown} with no --site (sites: "
                              f"{list(sites)})")  # fmt: skip
        lacking = [s for s in sites if s not in covars]
        if covars and lacking:
            named = ", ".join(f"site {s!r}" for s in lacking)
            raise ConfigError(f"--covar gives no covariate file for {named}: every site needs "
                              "one (with the same columns), or none does")  # fmt: skip
        if covar_name and not covars:
            raise ConfigError(f"--covar-name {covar_name} needs the sites' covariate files: "
                              "add --covar NAME=FILE for every site")  # fmt: skip
        if transport not in ("memory", "grpc"):
            raise ConfigError(f"--transport must be memory or grpc, got {transport!r}")
        opts = GwasJobOptions.from_params(
            {
                "test": test,
                "maf": maf,
                "geno": geno,
                "hwe": hwe,
                "mind": mind,
                "absent": absent,
                "covar_names": covar_name,
                "site_covariate": site_covariate,
                "beta": beta,
                "allow_two_sites": allow_two_sites,
                "dp_epsilon": dp_epsilon,
                "dp_top": dp_top,
            }
        )
        check_out_dir(out)
        console = err_console()
        run = run_gwas(sites, covars=covars, options=opts, transport=transport,  # type: ignore[arg-type]
                       out=out, seed=seed, on_start=console.print)  # fmt: skip
        res = run.result
        removed = ", ".join(f"{k} {v}" for k, v in res.qc.removed.items()) or "none"
        console.print(
            f"{res.n_subjects} subjects, {run.facts.n_aligned} aligned variants, "
            f"{len(res.variants)} tested (QC removed: {removed}); "
            f"lambda_GC = {res.lambda_gc():.4f}"
        )
        for s, st in run.facts.party_stats.items():
            console.print(f"  {s}: {st['bytes_sent'] / 1e6:.2f} MB sent, {st['seconds']:.2f} s")
        console.print(f"results.tsv and report in {out}")


def _named(items: list[str], what: str) -> dict[str, Path]:
    from veil.errors import ConfigError

    out: dict[str, Path] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ConfigError(f"{what} expects NAME=PATH, got {item!r}")
        if name in out:
            raise ConfigError(f"{what} names {name!r} twice")
        out[name] = Path(path)
    return out

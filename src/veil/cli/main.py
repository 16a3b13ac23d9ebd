"""``veil``: certificates, nodes, local runs, demos and benchmarks.

Commands are grouped by what a user does: ``certs`` and ``node`` deploy a cluster (one node per
institution), ``run`` runs every party of a job on this machine, ``demo`` runs the showcase jobs,
``bench`` prints benchmark JSON lines, ``tee`` verifies attestation evidence.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from veil.cli.common import check_out_dir, err_console, parse_params, split_names, user_errors

app = typer.Typer(
    name="veil",
    help="Privacy-preserving computation across institutions: compute together, reveal nothing.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _mount_optional() -> None:
    """Sub-command groups that live in their own modules."""
    from veil.cli.bench import bench
    from veil.cli.forecast import forecast
    from veil.cli.gwas import gwas
    from veil.cli.tee import app as tee_app

    app.add_typer(tee_app, name="tee")
    app.command("forecast")(forecast)
    app.command("gwas")(gwas)
    app.command(
        "bench",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
        add_help_option=False,  # `veil bench NAME --help` reaches the benchmark's own parser
    )(bench)


certs_app = typer.Typer(
    help="Create the cluster CA and per-party certificates.", no_args_is_help=True
)
app.add_typer(certs_app, name="certs")
_mount_optional()


@certs_app.command("init")
def certs_init(
    parties: Annotated[str, typer.Option(help="Comma-separated party names, e.g. bank,ext1,ext2.")],
    out: Annotated[Path, typer.Option(help="Folder to write ca.pem and <party>.pem/.key into.")],
    days: Annotated[int, typer.Option(help="Validity of the certificates in days.")] = 825,
    force: Annotated[
        bool, typer.Option("--force", help="Replace an existing CA and keys in --out.")
    ] = False,
) -> None:
    """Create a per-cluster CA and a key + certificate for each party (CN/SAN = party name).

    Give each institution ca.pem, every party's .pem, and only its own .key.
    """
    with user_errors():
        from veil.errors import ConfigError
        from veil.transport.certs import init_cluster

        names = split_names(parties)
        if not force and (out / "ca.pem").exists():
            raise ConfigError(
                f"{out / 'ca.pem'} already exists: a new CA would invalidate every certificate "
                "already handed out; choose another --out, or pass --force to replace it"
            )
        files = init_cluster(names, out, days=days)
        console = Console()
        table = Table("party", "certificate", "private key (keep at that party only)")
        for n in names:
            table.add_row(n, str(files[n].cert), str(files[n].key))
        console.print(f"cluster CA: {files[names[0]].ca_cert}")
        console.print(table)


_MAX_SHOWN = 600  # characters of a result shown in the table; --json prints it whole


def _shown(value: Any) -> str:
    """A result as the table shows it: its repr, cut short when long (a model, scores)."""
    if value is None:
        return "-"
    text = repr(value)
    if len(text) <= _MAX_SHOWN:
        return text
    return f"{text[:_MAX_SHOWN]} … ({len(text):,} characters; --json prints the whole result)"


def _print_outcome(results: dict[str, Any], stats: dict[str, dict[str, Any]]) -> None:
    console = Console()
    table = Table("party", "result", "bytes sent", "messages sent")
    for party, value in results.items():
        st = stats.get(party, {})
        table.add_row(
            party,
            Text(_shown(value)),  # a value, not markup
            f"{st.get('bytes_sent', 0):,}",
            f"{st.get('messages_sent', 0):,}",
        )
    console.print(table)


@app.command()
def node(
    job: Annotated[
        str, typer.Argument(help="Job file (job.py, defines job(ctx)) or module:function.")
    ],
    config: Annotated[Path, typer.Option(help="Cluster config (TOML).")],
    party: Annotated[str, typer.Option(help="This institution's party name in the config.")],
    param: Annotated[
        list[str] | None, typer.Option(help="Job parameter KEY=VALUE (repeatable).")
    ] = None,
    ledger: Annotated[
        Path | None, typer.Option(help="Append this party's audit ledger here (JSON lines).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Job seed (the same at every party).")] = 0,
    dp_epsilon: Annotated[
        float | None, typer.Option(help="This party's privacy budget for DP reveals: epsilon.")
    ] = None,
    dp_delta: Annotated[float, typer.Option(help="Privacy budget: delta.")] = 0.0,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Run one party of a job: what each institution runs on its own machine."""
    with user_errors():
        from veil.errors import PartyFailed
        from veil.runtime.config import load_config
        from veil.runtime.jobs import load_job, parse_job_ref
        from veil.runtime.node import run_node

        cfg = load_config(config)
        cfg.party(party)
        cfg.check_files(party)
        fn = load_job(parse_job_ref(job))
        peers = ", ".join(p for p in cfg.party_names if p != party)
        err_console().print(f"[bold]veil node[/] {party}: connecting to {peers} ...")
        budget = None if dp_epsilon is None else (dp_epsilon, dp_delta)
        outcome, stats, _ = run_node(cfg, party, fn, parse_params(param), seed=seed,
                                     ledger_path=ledger, privacy_budget=budget)  # fmt: skip
        if not outcome.ok:
            raise PartyFailed(
                party,
                outcome.traceback or f"{outcome.error_type}: {outcome.error}",
                error_type=outcome.error_type,
                error=outcome.error,
            )
        if json_out:
            typer.echo(
                json.dumps({"party": party, "result": _jsonable(outcome.result), "stats": stats})
            )
        else:
            _print_outcome({party: outcome.result}, {party: stats})


@app.command()
def run(
    job: Annotated[
        str, typer.Argument(help="Job file (job.py, defines job(ctx)) or module:function.")
    ],
    parties: Annotated[str, typer.Option(help="Comma-separated party names.")],
    transport: Annotated[
        str, typer.Option(help="memory (threads) or grpc (processes, mTLS).")
    ] = "memory",
    param: Annotated[
        list[str] | None, typer.Option(help="Job parameter KEY=VALUE (repeatable).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Job seed.")] = 0,
    timeout: Annotated[float, typer.Option(help="Longest wait for one message, seconds.")] = 300.0,
    json_out: Annotated[bool, typer.Option("--json", help="Print results as JSON.")] = False,
) -> None:
    """Run every party of a job on this machine."""
    with user_errors():
        from veil.errors import ConfigError
        from veil.runtime.jobs import load_job, parse_job_ref
        from veil.runtime.simulate import simulate_detailed

        if transport not in ("memory", "grpc"):
            raise ConfigError(f"--transport must be memory or grpc, got {transport!r}")
        fn = load_job(parse_job_ref(job))
        res = simulate_detailed(
            fn,
            split_names(parties),
            transport=transport,  # type: ignore[arg-type]
            params=parse_params(param),
            seed=seed,
            timeout=timeout,
        )
        if json_out:
            typer.echo(
                json.dumps(
                    {
                        "results": {k: _jsonable(v) for k, v in res.results.items()},
                        "stats": res.stats,
                        "seconds": res.seconds,
                    }
                )
            )
        else:
            _print_outcome(res.results, res.stats)


@app.command()
def demo(
    name: Annotated[str, typer.Argument(help="risk, fl, load, portfolio, gwas.")] = "risk",
    out: Annotated[Path | None, typer.Option(help="Output folder (default out/<name>).")] = None,
    transport: Annotated[str, typer.Option(help="grpc (processes, mTLS) or memory.")] = "grpc",
    protocol: Annotated[str, typer.Option(help="risk: MPC protocol, semi2k or aby3.")] = "semi2k",
    model: Annotated[
        str, typer.Option(help="risk: joint model, lr, secureboost or both (default).")
    ] = "both",
) -> None:
    """Run a showcase job end to end on real data and write its report."""
    with user_errors():
        from veil.errors import ConfigError

        if transport not in ("memory", "grpc"):
            raise ConfigError(f"--transport must be memory or grpc, got {transport!r}")
        folder = out or Path("out") / name
        check_out_dir(folder)
        if name == "risk":
            from veil.apps import risk_data
            from veil.apps.risk_run import RiskOptions
            from veil.apps.risk_run import run as run_risk

            if model not in ("lr", "secureboost", "both"):
                raise ConfigError(f"--model must be lr, secureboost or both, got {model!r}")
            files = risk_data.prepare(folder / "data")
            err_console().print(f"three institutions' files: {folder / 'data'}")
            opts = RiskOptions(id_col=risk_data.ID, label=risk_data.LABEL, protocol=protocol,  # type: ignore[arg-type]
                               model=model)  # type: ignore[arg-type]  # fmt: skip
            providers = {p: f for p, f in files.items() if p != "bank"}
            run_risk(files["bank"], providers, opts, folder, transport=transport)  # type: ignore[arg-type]
        elif name == "portfolio":
            from veil.apps import portfolio_demo

            portfolio_demo.run(folder, transport=transport)  # type: ignore[arg-type]
        elif name == "fl":
            from veil.apps import fl_demo

            fl_demo.run_demo(folder, transport=transport)  # type: ignore[arg-type]
        elif name == "load":
            from veil.apps import load_demo

            load_demo.run_demo(folder, transport=transport)  # type: ignore[arg-type]
        elif name == "gwas":
            from veil.apps import gwas_demo

            gwas_demo.run(folder, transport=transport)  # type: ignore[arg-type]
        else:
            raise ConfigError(f"unknown demo {name!r}; available: risk, fl, load, portfolio, gwas")


@app.command()
def psi(
    input_: Annotated[
        list[str], typer.Option("--input", help="A party's file: NAME=FILE (repeat).")
    ],
    key: Annotated[str, typer.Option(help="Id column to intersect on (in every file).")],
    out: Annotated[Path, typer.Option(help="Folder for <party>.csv and summary.json.")],
    casefold: Annotated[bool, typer.Option(help="Compare ids case-insensitively.")] = False,
    no_strip: Annotated[bool, typer.Option(help="Keep surrounding whitespace in ids.")] = False,
    dedupe: Annotated[
        bool, typer.Option(help="Keep the first of duplicate ids (else fail).")
    ] = False,
    receiver_only: Annotated[
        bool, typer.Option(help="Only the first party learns the intersection.")
    ] = False,
    transport: Annotated[str, typer.Option(help="grpc (processes, mTLS) or memory.")] = "grpc",
) -> None:
    """Private set intersection: align the parties' files on a key column."""
    with user_errors():
        from veil.apps.psi_app import run as run_psi
        from veil.errors import ConfigError
        from veil.psi import PsiOptions

        if transport not in ("memory", "grpc"):
            raise ConfigError(f"--transport must be memory or grpc, got {transport!r}")
        check_out_dir(out)
        opts = PsiOptions(strip=not no_strip, casefold=casefold, dedupe=dedupe,
                          receiver_only=receiver_only)  # fmt: skip
        summary = run_psi(_named_files(input_, "--input"), key, out, options=opts,
                          transport=transport)  # type: ignore[arg-type]  # fmt: skip
        Console().print(f"{summary['n_intersection']} common ids; aligned files and "
                        f"summary.json in {out}")  # fmt: skip


@app.command()
def risk(
    bank: Annotated[Path, typer.Option(help="The bank's CSV (ids, label, its features).")],
    provider: Annotated[list[str], typer.Option(help="A data provider: NAME=FILE (repeat).")],
    id_col: Annotated[str, typer.Option("--id", help="Customer id column (in every file).")],
    label: Annotated[str, typer.Option(help="Binary label column (in the bank's file).")],
    out: Annotated[Path, typer.Option(help="Output folder for report.json / report.html.")],
    positive: Annotated[str | None, typer.Option(help="Label value of the positive class.")] = None,
    protocol: Annotated[
        str, typer.Option(help="semi2k (+ dealer) or aby3 (3 parties).")
    ] = "semi2k",
    engine: Annotated[
        str, typer.Option(help="mpc, or tee (a simulated enclave hosted by the bank).")
    ] = "mpc",
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 20,
    transport: Annotated[str, typer.Option(help="grpc (processes, mTLS) or memory.")] = "grpc",
    seed: Annotated[int, typer.Option(help="Seed of the train/test split.")] = 0,
    model: Annotated[
        str,
        typer.Option(help="lr (secure logistic regression), secureboost (HE trees) or both."),
    ] = "lr",
    sb_param: Annotated[
        list[str] | None,
        typer.Option(help="SecureBoost parameter KEY=VALUE, e.g. n_estimators=30 (repeat)."),
    ] = None,
) -> None:
    """Joint credit-risk model: PSI alignment, secure logistic regression and/or SecureBoost,
    AUC/KS report."""
    with user_errors():
        from veil.apps.risk_run import RiskOptions
        from veil.apps.risk_run import run as run_risk
        from veil.errors import ConfigError

        if transport not in ("memory", "grpc"):
            raise ConfigError(f"--transport must be memory or grpc, got {transport!r}")
        if protocol not in ("semi2k", "aby3"):
            raise ConfigError(f"--protocol must be semi2k or aby3, got {protocol!r}")
        check_out_dir(out)
        if engine not in ("mpc", "tee"):
            raise ConfigError(f"--engine must be mpc or tee, got {engine!r}")
        if model not in ("lr", "secureboost", "both"):
            raise ConfigError(f"--model must be lr, secureboost or both, got {model!r}")
        opts = RiskOptions(id_col=id_col, label=label, positive=positive, protocol=protocol,  # type: ignore[arg-type]
                           epochs=epochs, engine=engine, model=model,  # type: ignore[arg-type]
                           sb_params=parse_params(sb_param))  # fmt: skip
        run_risk(bank, _named_files(provider, "--provider"), opts, out,
                 transport=transport, seed=seed)  # type: ignore[arg-type]  # fmt: skip


def _named_files(items: list[str], what: str) -> dict[str, Path]:
    from veil.errors import ConfigError

    out: dict[str, Path] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ConfigError(f"{what} expects NAME=FILE, got {item!r}")
        if name in out:
            raise ConfigError(f"{what} names {name!r} twice")
        out[name] = Path(path)
    return out


@app.command()
def fl(
    party: Annotated[list[str], typer.Option(help="A bank and its CSV: NAME=FILE (repeat).")],
    label: Annotated[str, typer.Option(help="Label column (binary).")],
    out: Annotated[Path, typer.Option(help="Output folder for report.json / report.html.")],
    positive: Annotated[str | None, typer.Option(help="Label value of the positive class.")] = None,
    model: Annotated[str, typer.Option(help="logistic or mlp.")] = "logistic",
    rounds: Annotated[int, typer.Option(help="Federated rounds.")] = 20,
    lr: Annotated[float, typer.Option(help="Local learning rate.")] = 0.05,
    aggregation: Annotated[
        str, typer.Option(help="secure (default), plain (insecure), median, trimmed_mean.")
    ] = "secure",
    drop: Annotated[list[str] | None, typer.Option(help="Column to ignore (repeat).")] = None,
    dp_epsilon: Annotated[
        float | None, typer.Option(help="Client-level DP: epsilon of the whole run.")
    ] = None,
    dp_delta: Annotated[float, typer.Option(help="Client-level DP: delta.")] = 1e-5,
    clip_norm: Annotated[float, typer.Option(help="DP: L2 bound of a bank's update.")] = 1.0,
    transport: Annotated[str, typer.Option(help="grpc (processes, mTLS) or memory.")] = "grpc",
    seed: Annotated[int, typer.Option(help="Seed of splits, sampling and initialisation.")] = 0,
) -> None:
    """Horizontal federated learning across banks (each bank's CSV has the same columns)."""
    with user_errors():
        from veil.apps.fl_app import FLJobOptions
        from veil.apps.fl_app import run as run_fl
        from veil.errors import ConfigError

        if transport not in ("memory", "grpc"):
            raise ConfigError(f"--transport must be memory or grpc, got {transport!r}")
        check_out_dir(out)
        if aggregation not in ("secure", "plain", "median", "trimmed_mean"):
            raise ConfigError(f"unknown --aggregation {aggregation!r}")
        if model not in ("logistic", "mlp"):
            raise ConfigError(f"--model must be logistic or mlp, got {model!r}")
        opts = FLJobOptions(label=label, positive=positive, model=model,  # type: ignore[arg-type]
                            rounds=rounds, lr=lr, aggregation=aggregation,
                            drop=tuple(drop or ()), dp_epsilon=dp_epsilon, dp_delta=dp_delta,
                            clip_norm=clip_norm)  # fmt: skip
        run_fl(_named_files(party, "--party"), opts, out, transport=transport,  # type: ignore[arg-type]
               seed=seed)  # fmt: skip


def _jsonable(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def main() -> None:
    """Console-script entry point."""
    # gRPC's C core logs its own copy of errors we report in one actionable line.
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    app()


if __name__ == "__main__":
    main()

"""Runner of ``veil demo portfolio``: prepare the banks' files, run the job, check, report."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
from rich.console import Console
from rich.table import Table

from veil.apps.portfolio import (
    BANKS,
    FEATURES,
    load_credit_data,
    portfolio_job,
    prepare_data,
    sufficient_stats,
    summarize,
)
from veil.errors import ProtocolError
from veil.runtime.ledger import merge_ledgers
from veil.runtime.node import write_atomic
from veil.runtime.simulate import simulate_detailed


def run(
    out: Path, *, transport: Literal["memory", "grpc"] = "grpc", console: Console | None = None
) -> dict[str, Any]:
    """Run the demo end to end and write ``out/report.json``; return the report."""
    console = console or Console(stderr=True)
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    console.print("[bold]1/3[/] preparing each bank's own customer file (credit_data, modeldata)")
    paths = prepare_data(out / "data")
    seconds["prepare"] = time.perf_counter() - t

    t = time.perf_counter()
    how = "processes, gRPC + mutual TLS" if transport == "grpc" else "threads, in memory"
    console.print(f"[bold]2/3[/] three banks pool their statistics under aby3 MPC ({how})")
    res = simulate_detailed(
        portfolio_job,
        list(BANKS),
        transport=transport,
        params={b: {"csv": str(paths[b])} for b in BANKS},
        per_party_params=True,
    )
    seconds["secure_pooling"] = time.perf_counter() - t

    t = time.perf_counter()
    console.print("[bold]3/3[/] checking against the pooled plaintext (demo only) and reporting")
    check = summarize(sufficient_stats(load_credit_data()))
    pooled = res.results[BANKS[0]]["pooled"]
    err = _max_rel_err(pooled, check)
    if err > 1e-4:
        raise ProtocolError(f"secure pooled statistics differ from plaintext (rel. err {err:.2e})")
    seconds["check"] = time.perf_counter() - t
    report = {
        "job": "portfolio",
        "transport": transport,
        "banks": {b: res.results[b]["own"] for b in BANKS},
        "pooled_secure": pooled,
        "pooled_plaintext_check": {"max_rel_err": err},
        "bytes_sent": {b: res.stats[b]["bytes_sent"] for b in BANKS},
        "messages": {b: res.stats[b]["messages_sent"] for b in BANKS},
        "seconds": seconds,
        "ledger": merge_ledgers(res.ledgers.values()),
    }
    write_atomic(out / "report.json", json.dumps(report, indent=2, default=float).encode())
    _print(console, report)
    console.print(f"report: {out / 'report.json'}")
    return report


def _max_rel_err(a: dict[str, Any], b: dict[str, Any]) -> float:
    errs = [abs(a["default_rate"] - b["default_rate"])]
    for c in FEATURES:
        for k in ("mean", "std", "mean_bad", "mean_good"):
            x, y = a["features"][c][k], b["features"][c][k]
            errs.append(abs(x - y) / max(abs(y), 1.0))
    return float(np.max(errs))


def _num(x: float) -> str:
    return f"{x:.0f}" if abs(x) >= 100 else f"{x:.1f}"


def _print(console: Console, report: dict[str, Any]) -> None:
    table = Table(title="default rate and defaulter profile (mean bad / mean good)")
    table.add_column("")
    for b in BANKS:
        table.add_column(f"{b} alone")
    table.add_column("pooled (secure)", style="bold")
    views = [report["banks"][b] for b in BANKS] + [report["pooled_secure"]]
    table.add_row("customers", *(f"{v['customers']:,}" for v in views))
    table.add_row("default rate", *(f"{v['default_rate']:.1%}" for v in views))
    for c in FEATURES:
        table.add_row(
            c,
            *(
                f"{v['features'][c]['mean_bad']:.1f} / {v['features'][c]['mean_good']:.1f}"
                for v in views
            ),
        )
    console.print(table)
    sent = ", ".join(f"{b} {n:,} B" for b, n in report["bytes_sent"].items())
    console.print(f"bytes sent: {sent}; reveals in the ledger: {len(report['ledger'])}")

"""``veil demo load``: grid and EV load forecasting across a utility, a weather provider and
three charge-point operators.

Part A (vertical, MPC; :mod:`veil.apps.load_demand_run`): the utility and the weather provider
forecast tomorrow's demand on the real ``elecdemand`` series; the forecasts go to the utility
only. Part B (horizontal, FL; :mod:`veil.apps.load_ev`): the operators train an EV charging
forecaster under secure aggregation on SimBench profiles; the utility receives only the sum of
their forecasts for its area. Both run as separate processes over gRPC with mutual TLS. The
combined ``out/load/report.json`` holds ``demand`` (``models.utility_only``,
``models.joint_secure``, ``models.pooled_plaintext`` with ``mape`` and ``rmse``) and ``ev``
(``models.local.<operator>``, ``models.federated_secure``, ``models.pooled_plaintext`` with
``mae`` and ``rmse``), per-party ``bytes_sent``, per-stage ``seconds`` and the audit ledger.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Literal

from veil.apps import load_demand_run, load_ev
from veil.apps.load_data import prepare_elecdemand
from veil.apps.report import write_html, write_json
from veil.runtime.ledger import merge_ledgers


def run_demo(out: Path, *, transport: Literal["memory", "grpc"] = "grpc") -> dict[str, Any]:
    """Run parts A and B and write the combined report in ``out``."""
    from rich.console import Console

    console = Console(stderr=True)
    t0 = time.perf_counter()
    console.print("[bold]A[/] day-ahead demand: utility + weather provider (vertical, MPC)")
    files = prepare_elecdemand(out / "demand" / "data")
    opts = load_demand_run.DemandOptions("time", "utility", "Demand", "2014-11-01")
    demand = load_demand_run.run(files, opts, out / "demand", transport=transport,
                                 console=console)  # fmt: skip
    t1 = time.perf_counter()
    console.print("[bold]B[/] EV charging: three charge-point operators (horizontal, FL)")
    ev_report = load_ev.run_ev(out / "ev", transport, console=console)
    t2 = time.perf_counter()
    ev = ev_report["ev"]
    bytes_sent = {f"demand.{p}": n for p, n in demand["bytes_sent"].items()}
    bytes_sent |= {f"ev.{p}": n for p, n in ev["bytes_sent"].items()}
    report = {
        "job": "load", "transport": transport, "demand": demand, "ev": ev,
        "bytes_sent": bytes_sent,
        "seconds": {"demand": t1 - t0, "ev": t2 - t1, "total": t2 - t0,
                    **{f"demand.{k}": v for k, v in demand["seconds"].items()},
                    **{f"ev.{k}": v for k, v in ev["seconds"].items()}},
        "ledger": merge_ledgers([demand["ledger"], ev["ledger"]]),
    }  # fmt: skip
    write_json(out / "report.json", report)
    sections = load_demand_run.html_sections(demand, load_demand_run.read_forecast(out / "demand"))
    write_html(out / "report.html", "veil — grid and EV load forecasting",
               [(f"A · {h}", b) for h, b in sections]
               + [(f"B · {h}", b) for h, b in load_ev.html_sections(ev_report)])  # fmt: skip
    console.print(f"report: {out / 'report.html'} ({t2 - t0:.1f} s)")
    return report

"""``veil demo load``: grid and EV load forecasting across a utility, a weather provider and
three charge-point operators.

Part A (vertical; :mod:`veil.apps.load_demand_run`, ``model="both"``): the utility and the
weather provider forecast tomorrow's demand on the real ``elecdemand`` series with **both**
demand models on one alignment — closed-form ridge under MPC (semi2k + dealer) and vertical
SecureBoost (gradients under OU encryption); the forecasts go to the utility only. Part B
(horizontal, FL; :mod:`veil.apps.load_ev`): the operators train an EV charging forecaster under
secure aggregation on SimBench profiles; the utility receives only the sum of their forecasts
for its area. Both run as separate processes over gRPC with mutual TLS.

The combined ``out/load/report.json`` holds ``demand`` (``models.utility_only``,
``models.joint_secure``, ``models.pooled_plaintext`` — ridge — and ``models.utility_only_trees``,
``models.joint_secureboost``, ``models.pooled_plaintext_trees`` — trees, the check being
xgboost — each with ``mape`` and ``rmse``) and ``ev`` (``models.local.<operator>``,
``models.federated_secure``, ``models.pooled_plaintext`` with ``mae`` and ``rmse``), per-party
``bytes_sent``, per-stage ``seconds`` and ``bytes_by_stage`` and the audit ledger.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from veil.apps import load_demand_run, load_ev
from veil.apps.load_data import prepare_elecdemand
from veil.apps.load_demand import TreeSettings
from veil.apps.report import write_html, write_json
from veil.runtime.ledger import merge_ledgers

#: SecureBoost settings of the demo. Every tree costs one OU encryption of every training
#: row's gradients, so the demo takes fewer, deeper trees with a higher learning rate than
#: ``veil forecast``'s default (50 trees, depth 5, rate 0.2): on ``elecdemand`` (test Nov–Dec
#: 2014) veil's plaintext twin gives 4.13 % MAPE with these settings and 4.12 % with the
#: default, xgboost on the pooled columns 4.16 % and 4.08 % (each with the same settings),
#: at 40 % of the encryptions (docs/load.md).
DEMO_TREES = TreeSettings(n_estimators=20, max_depth=7, learning_rate=0.3)


def demo_options(**changes: Any) -> load_demand_run.DemandOptions:
    """Part A's options: test from November 2014, both models, :data:`DEMO_TREES`."""
    base = load_demand_run.DemandOptions("time", "utility", "Demand", "2014-11-01",
                                         model="both", trees=DEMO_TREES)  # fmt: skip
    return dataclasses.replace(base, **changes)


def run_demo(
    out: Path,
    *,
    transport: Literal["memory", "grpc"] = "grpc",
    demand_files: Mapping[str, Path] | None = None,
    demand_options: load_demand_run.DemandOptions | None = None,
    ev_options: load_ev.EVOptions | None = None,
) -> dict[str, Any]:
    """Run parts A and B and write the combined report in ``out``. By default part A runs on
    ``elecdemand`` with :func:`demo_options` and part B on the installed SimBench profiles;
    ``demand_files`` ({party: CSV}), ``demand_options`` and ``ev_options`` replace them (tests,
    other data)."""
    from rich.console import Console

    console = Console(stderr=True)
    t0 = time.perf_counter()
    console.print("[bold]A[/] day-ahead demand: utility + weather provider (vertical; ridge "
                  "under MPC, then SecureBoost under HE)")  # fmt: skip
    files = demand_files or prepare_elecdemand(out / "demand" / "data")
    opts = demand_options or demo_options()
    demand = load_demand_run.run(files, opts, out / "demand", transport=transport,
                                 console=console)  # fmt: skip
    t1 = time.perf_counter()
    console.print("[bold]B[/] EV charging: three charge-point operators (horizontal, FL)")
    ev_report = load_ev.run_ev(out / "ev", transport, options=ev_options, console=console)
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
        "bytes_by_stage": {f"demand.{k}": v for k, v in demand["bytes_by_stage"].items()},
        "ledger": merge_ledgers([demand["ledger"], ev["ledger"]]),
    }  # fmt: skip
    sections = load_demand_run.html_sections(demand, load_demand_run.read_forecast(out / "demand"))
    html = ([(f"A · {h}", b) for h, b in sections]
            + [(f"B · {h}", b) for h, b in load_ev.html_sections(ev_report)])  # fmt: skip
    write_html(out / "report.html", "veil — grid and EV load forecasting", html)
    write_json(out / "report.json", report)
    console.print(f"report: {out / 'report.html'} ({t2 - t0:.1f} s)")
    return report

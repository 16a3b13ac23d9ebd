"""``veil bench load``: seconds and bytes per stage of the load-forecasting job, beside the same
models in plaintext.

Runs part A (demand on ``elecdemand``: vertical ridge under MPC and SecureBoost under HE, with
the demo's settings) and part B (EV, federated learning on
SimBench) over the in-memory link and over gRPC processes, and prints one JSON line per
(part, transport) with the stage timings and bytes per party, plus one line per part for the
same model trained on pooled plaintext (``impl: plaintext``, measured inside the same run as a
check).
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from veil.bench.common import emit, record


def run(*, transports: Sequence[str] = ("memory", "grpc")) -> Iterator[dict[str, Any]]:
    """Run both parts on each transport and yield the records."""
    from rich.console import Console

    from veil.apps import load_demand_run, load_ev
    from veil.apps.load_data import prepare_elecdemand
    from veil.apps.load_demo import demo_options

    quiet = Console(stderr=True, quiet=True)
    with tempfile.TemporaryDirectory(prefix="veil-bench-load-") as tmp:
        out = Path(tmp)
        files = prepare_elecdemand(out / "data")
        opts = demo_options()
        for transport in transports:
            d = load_demand_run.run(files, opts, out / f"demand-{transport}",
                                    transport=transport, console=quiet)  # type: ignore[arg-type]  # fmt: skip
            sec = d["seconds"]
            yield record("load.demand", f"veil-{transport}", len(d["bytes_sent"]),
                         sec["total_job"], bytes_=sum(d["bytes_sent"].values()),
                         stage_seconds=sec, bytes_sent=d["bytes_sent"],
                         mape=d["models"]["joint_secure"]["mape"],
                         mape_secureboost=d["models"]["joint_secureboost"]["mape"])  # fmt: skip
            e = load_ev.run_ev(out / f"ev-{transport}", transport, console=quiet)["ev"]  # type: ignore[arg-type]
            yield record("load.ev", f"veil-{transport}", len(e["bytes_sent"]),
                         e["seconds"]["federated"], bytes_=sum(e["bytes_sent"].values()),
                         stage_seconds=e["seconds"], bytes_sent=e["bytes_sent"],
                         rmse=e["models"]["federated_secure"]["rmse"])  # fmt: skip
        yield record("load.demand", "plaintext", 1, sec["pooled_check"],
                     mape=d["models"]["pooled_plaintext"]["mape"])  # fmt: skip
        yield record("load.demand", "plaintext-xgboost", 1, sec["pooled_check_trees"],
                     mape=d["models"]["pooled_plaintext_trees"]["mape"])  # fmt: skip
        yield record("load.ev", "plaintext", 1, e["seconds"]["pooled_plaintext_train"],
                     rmse=e["models"]["pooled_plaintext"]["rmse"])  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    """``veil bench load [--transport memory,grpc]``"""
    ap = argparse.ArgumentParser(prog="veil bench load")
    ap.add_argument("--transport", default="memory,grpc")
    a = ap.parse_args(argv)
    for rec in run(transports=[t.strip() for t in a.transport.split(",") if t.strip()]):
        emit(rec)


if __name__ == "__main__":
    main()

"""EV forecasting across operators over real processes (gRPC + mutual TLS)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from veil.apps import load_ev
from veil.apps.load_ev import EVOptions

# The synthetic SimBench-format profiles of the unit tests (no ODbL data needed here).
sys.path.insert(0, str(Path(__file__).parents[1] / "unit" / "apps"))
from test_load_ev import TEST_FROM, TEST_TO, write_profiles

pytestmark = pytest.mark.e2e


def test_run_ev_over_grpc(tmp_path: Path):
    csv = write_profiles(tmp_path / "LoadProfile.csv")
    opts = EVOptions(test_from=TEST_FROM, test_to=TEST_TO, rounds=5, lr=0.1, profile_csv=str(csv))
    rep = load_ev.run_ev(tmp_path / "out", "grpc", options=opts)
    ev = json.loads((tmp_path / "out" / "report.json").read_text())["ev"]
    assert rep["transport"] == "grpc"
    assert set(ev["models"]["local"]) == {"cpo1", "cpo2", "cpo3"}
    assert ev["aggregate"]["max_abs_diff_vs_plaintext_sum"] < 1e-5
    assert all(ev["bytes_sent"][p] > 0 for p in ("utility", "cpo1", "cpo2", "cpo3"))
    grid = [e for e in ev["ledger"] if e.get("tag") == load_ev.GRID_TAG]
    assert grid and all(e["to"] == ["utility"] for e in grid)

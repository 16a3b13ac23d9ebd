"""`veil forecast` with every party in its own process over gRPC/mTLS (semi2k + dealer)."""

import json

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from veil.cli.forecast import forecast

pytestmark = pytest.mark.e2e


def _files(folder, days=60, seed=11):
    rng = np.random.default_rng(seed)
    t = pd.date_range("2015-06-01", periods=days * 48, freq="30min")
    hour = t.hour.to_numpy() + t.minute.to_numpy() / 60
    temp = 15 + 7 * np.sin(2 * np.pi * np.arange(len(t)) / (48 * 8))
    temp += 4 * np.sin(2 * np.pi * (hour - 9) / 24) + rng.normal(0, 0.5, len(t))
    work = (t.day_of_week.to_numpy() < 5).astype(int)
    demand = 4 + np.sin(2 * np.pi * (hour - 6) / 24) + 0.4 * work + 0.03 * (temp - 16) ** 2
    demand += rng.normal(0, 0.05, len(t))
    folder.mkdir(parents=True)
    u, w = folder / "u.csv", folder / "w.csv"
    pd.DataFrame({"ts": t.strftime("%Y-%m-%d %H:%M"), "load": demand, "WorkDay": work}).to_csv(
        u, index=False
    )
    wt = pd.DataFrame({"ts": t.strftime("%Y-%m-%dT%H:%M:%S"), "temp": temp})
    wt.sample(frac=1.0, random_state=1).to_csv(w, index=False)  # another format, shuffled
    return u, w


def test_forecast_over_grpc_processes(tmp_path):
    u, w = _files(tmp_path / "data")
    app = typer.Typer()
    app.command()(forecast)
    out = tmp_path / "out"
    args = ["--party", f"grid={u}", "--party", f"met={w}", "--time", "ts", "--target",
            "grid:load", "--test-from", "2015-07-20", "--test-to", "2015-07-30", "--out",
            str(out), "--transport", "grpc"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    rep = json.loads((out / "report.json").read_text())
    assert rep["transport"] == "grpc" and rep["n_test"] == 11 * 48
    m = rep["models"]
    assert m["joint_secure"]["mape"] < m["utility_only"]["mape"]
    assert abs(m["joint_secure"]["mape"] - m["pooled_plaintext"]["mape"]) < 0.1
    assert all(rep["bytes_sent"][p] > 0 for p in ("grid", "met", "dealer"))
    fc = pd.read_csv(out / "forecast.csv")
    assert len(fc) == rep["n_test"] and fc["time"].iloc[-1] == "2015-07-30T23:30:00"
    denied = [e for e in rep["ledger"] if e["event"].endswith("_denied")]
    assert not denied
    assert all(e["to"] == ["grid"] for e in rep["ledger"] if e["tag"] == "forecast")


def test_secureboost_forecast_over_grpc_processes(tmp_path):
    """`--model secureboost`: the utility (label holder, OU-2048 key) and the weather provider
    (feature holder) in their own processes; no dealer."""
    pytest.importorskip("xgboost")  # the pooled check
    u, w = _files(tmp_path / "data", days=40)
    app = typer.Typer()
    app.command()(forecast)
    out = tmp_path / "out"
    args = ["--party", f"grid={u}", "--party", f"met={w}", "--time", "ts", "--target",
            "grid:load", "--test-from", "2015-07-01", "--test-to", "2015-07-07", "--out",
            str(out), "--transport", "grpc", "--model", "secureboost", "--trees", "8",
            "--depth", "3", "--learning-rate", "0.5"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    rep = json.loads((out / "report.json").read_text())
    assert rep["transport"] == "grpc" and rep["model"] == "secureboost"
    assert rep["n_test"] == 7 * 48 and set(rep["bytes_sent"]) == {"grid", "met"}
    m = rep["models"]
    assert m["joint_secure"]["mape"] < m["utility_only"]["mape"]
    assert abs(m["joint_secure"]["mape"] - m["pooled_plaintext"]["mape"]) < 0.3
    assert all(e["to"] == ["grid"] for e in rep["ledger"] if e["tag"] == "forecast")
    assert not [e for e in rep["ledger"] if e["event"].endswith("_denied")]

"""`veil demo load` (both parts, one report) on small data over the memory transport."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_load_demand import synthetic, write_files
from test_load_ev import small_options, write_profiles

from veil.apps import load_demo
from veil.apps.load_demand import TreeSettings


def test_demo_defaults_train_both_demand_models():
    opts = load_demo.demo_options()
    assert opts.model == "both" and opts.test_from == "2014-11-01"
    assert opts.trees == load_demo.DEMO_TREES and opts.trees.key_bits >= 2048


def test_demo_report_has_both_demand_models_and_the_ev_part(tmp_path: Path):
    pytest.importorskip("xgboost")  # the pooled check of the trees
    files = write_files(tmp_path / "demand-data", synthetic(days=45))
    trees = TreeSettings(n_estimators=6, max_depth=3, learning_rate=0.5, key_bits=1024,
                         insecure=True)  # fmt: skip
    opts = load_demo.demo_options(test_from="2015-04-09", test_to="2015-04-12", trees=trees)
    ev = small_options(write_profiles(tmp_path / "LoadProfile.csv"), rounds=4)
    out = tmp_path / "out"
    rep = load_demo.run_demo(out, transport="memory", demand_files=files, demand_options=opts,
                             ev_options=ev)  # fmt: skip
    on_disk = json.loads((out / "report.json").read_text())
    assert on_disk["demand"]["models"] == rep["demand"]["models"]
    d = on_disk["demand"]
    ridge = ("utility_only", "joint_secure", "pooled_plaintext")
    trees_ = ("utility_only_trees", "joint_secureboost", "pooled_plaintext_trees")
    for name in ridge + trees_:
        assert set(d["models"][name]) == {"mape", "rmse"}, name
    assert d["model"] == "both" and d["secureboost"]["n_trees"] == 6
    m = d["models"]
    assert m["joint_secure"]["mape"] < m["utility_only"]["mape"]
    assert m["joint_secureboost"]["mape"] < m["utility_only_trees"]["mape"]
    assert set(on_disk["ev"]["models"]) == {"local", "federated_secure", "pooled_plaintext"}
    # per-stage seconds and bytes of both demand models, per-party bytes of both parts
    sec, by_stage = on_disk["seconds"], on_disk["bytes_by_stage"]
    for stage in ("secure_training", "secureboost.secure_training"):
        assert sec[f"demand.{stage}"] > 0 and by_stage[f"demand.{stage}"]["utility"] > 0
    assert {"demand", "ev", "total", "demand.pooled_check_trees"} <= set(sec)
    assert {"demand.utility", "demand.weather", "demand.dealer", "ev.cpo1"} <= set(
        on_disk["bytes_sent"]
    )
    tags = {e["tag"] for e in on_disk["ledger"]}
    assert {"forecast", "metrics.models"} <= tags
    html = (out / "report.html").read_text()
    assert "A · Models (test period)" in html and "joint_secureboost" in html
    assert "B · " in html and html.count("<img") >= 2

"""``veil bench sb.train`` at a tiny size: the records and their ratios are consistent."""

import json

import pytest

from veil.bench import sb


def test_bench_records_xgboost_then_veil(capsys):
    pytest.importorskip("xgboost")
    sb.main(["sb.train", "--rows", "2000", "--trees", "2", "--depth", "3", "--key-bits", "1024",
             "--threads", "1"])  # fmt: skip
    recs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["impl"] for r in recs] == ["xgboost", "veil-sb-ou"]
    xgb, ours = recs
    assert ours["ratio_vs_xgboost"] == pytest.approx(ours["seconds"] / xgb["seconds"])
    assert abs(ours["auc_diff"]) < 0.05 and ours["bytes"] > 0
    assert set(ours["phase_seconds"]) == {"encrypt", "wait", "decrypt", "split"}

"""The benchmarks run at small sizes and agree with their references (not timed)."""

import pytest

from veil.bench.common import anchors_dir

pytestmark = pytest.mark.skipif(
    not (anchors_dir() / "inputs.py").exists(), reason="needs ../shared/anchors/inputs.py"
)


def test_fl_round_small():
    from veil.bench.fl import run

    (rec,) = run(clients=3, rounds=2)
    assert rec["bench"] == "fl.round" and rec["impl"] == "veil-secagg-memory"
    assert rec["max_abs_err"] < 1e-6  # secure sum vs the plaintext FedAvg, fixed point only
    assert rec["final_acc"] == rec["ref_final_acc"]
    assert len(rec["round_seconds"]) == 2 and rec["bytes"] > 0


def test_lr_train_small():
    from veil.bench.lr import run

    recs = list(run(protocols=("aby3",), rows=3000, epochs=1, sigmoids=("accurate", "cheap")))
    assert [r["impl"] for r in recs] == ["veil-aby3-accurate", "veil-aby3"]
    assert recs[0]["max_abs_err"] < 1e-3 and recs[1]["max_abs_err"] < 5e-3
    assert all(abs(r["auc"] - r["auc_numpy_f32"]) < 2e-3 for r in recs)

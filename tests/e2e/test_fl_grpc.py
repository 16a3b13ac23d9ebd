"""Federated learning over real processes with gRPC/mTLS: a killed client, then resume."""

import pytest
from fl_jobs import fl_job

import veil
from veil.errors import PartyFailed

pytestmark = pytest.mark.e2e
CLIENTS = ["c1", "c2", "c3", "c4"]


def test_round_completes_without_a_killed_client():
    res = veil.simulate_detailed(
        fl_job,
        ["server", *CLIENTS],
        transport="grpc",
        required=["server"],
        params={"clients": CLIENTS, "rounds": 4, "die": ["c4"], "die_at": 2},
    )
    assert set(res.failed) == {"c4"}
    hist = res.results["server"]["history"]
    assert [h["clients"] for h in hist] == [4, 3, 3, 3]
    assert "c4" in hist[1]["dropped"] and "c4" in res.results["server"]["dropped"]
    assert res.results["c1"]["final"]["auc"] > 0.8  # the survivors' model is sound
    assert res.results["c4"] is None


def test_too_many_dropouts_fail_cleanly_then_resume(tmp_path):
    params = {"clients": CLIENTS, "rounds": 4, "checkpoint": str(tmp_path)}
    with pytest.raises(PartyFailed) as ei:
        veil.simulate(
            fl_job,
            ["server", *CLIENTS],
            transport="grpc",
            required=["server"],
            params=params | {"die": ["c2", "c3", "c4"], "die_at": 3},
        )
    assert ei.value.party == "server"
    assert (tmp_path / "server" / "latest.json").exists()  # rounds 1-2 were checkpointed
    out = veil.simulate(
        fl_job, ["server", *CLIENTS], transport="grpc", params=params | {"resume": True}
    )
    hist = out["server"]["history"]
    assert [h["round"] for h in hist] == [1, 2, 3, 4]  # 1-2 from the checkpoint, 3-4 now
    assert out["c2"]["final"]["auc"] > 0.8

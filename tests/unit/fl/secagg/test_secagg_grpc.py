"""secure_sum between real processes over gRPC with mutual TLS (veil.simulate), with clients that
leave before the round and after sharing their keys."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import exact_sum
from secagg_jobs import CFG, secure_sum_job, vector_of

import veil

pytestmark = pytest.mark.e2e


@pytest.mark.timeout(240)
def test_secure_sum_over_grpc_processes_with_dropouts() -> None:
    parties = ["agg", "c0", "c1", "c2", "c3", "c4"]  # complete graph of 5: t = 3
    out = veil.simulate(
        secure_sum_job,
        parties,
        transport="grpc",
        params={"dim": 64, "leave_early": ["c1"], "leave_after_shares": ["c3"]},
        timeout=200,
    )
    res = out["agg"]
    assert res["survivors"] == ["c0", "c2", "c4"] and res["dropped"] == ["c1", "c3"]
    vecs = {c: vector_of(c, 64) for c in parties[1:]}
    np.testing.assert_array_equal(np.array(res["total"]), exact_sum(vecs, res["survivors"], CFG))
    assert out["c1"] == "left" and out["c3"] == "left"
    assert out["c0"] is None and out["c2"] is None

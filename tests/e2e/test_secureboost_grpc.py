"""SecureBoost and the HE device over real processes (gRPC with mutual TLS on 127.0.0.1)."""

import numpy as np
import pytest
from sb_jobs import he_device_job, secureboost_job

import veil

pytestmark = pytest.mark.e2e
PARTIES = ["bank", "ext1", "ext2"]


def test_secureboost_over_grpc_matches_memory():
    grpc = veil.simulate(secureboost_job, PARTIES, transport="grpc", timeout=120)
    mem = veil.simulate(secureboost_job, PARTIES)
    assert grpc["bank"]["auc"] > 0.7
    assert grpc["bank"]["auc"] == pytest.approx(mem["bank"]["auc"], abs=1e-12)
    assert grpc["ext1"]["auc"] is None
    assert {o["n_trees"] for o in grpc.values()} == {4}


def test_he_device_over_grpc():
    out = veil.simulate(he_device_job, PARTIES, transport="grpc", timeout=120)
    np.testing.assert_allclose(out["bank"], [4.0, -6.0], atol=2**-18)
    assert out["ext1"] is None and out["ext2"] is None

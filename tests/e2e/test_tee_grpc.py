"""The TEE device across real processes: three parties over gRPC/mTLS, a simulated enclave
subprocess at the host, attestation and sealed data crossing the network."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tee_jobs import lr_data, tee_lr_job, train_lr

import veil
from veil.errors import PartyFailed
from veil.runtime.ledger import read_ledger
from veil.tee.sim import ASSURANCE, SimRoot

pytestmark = pytest.mark.e2e
PARTIES = ["bank", "ext1", "carol"]


def test_lr_in_the_simulated_enclave_over_grpc() -> None:
    root = SimRoot.generate().private_bytes()
    res = veil.simulate_detailed(
        tee_lr_job,
        PARTIES,
        transport="grpc",
        params={"sim_root": root, "opt_in": ["bank", "ext1"]},
    )
    x_bank, x_ext, y = lr_data()
    expected = train_lr(x_bank, x_ext, y, 3, 0.5, 256)
    np.testing.assert_allclose(res.results["bank"], expected, rtol=1e-12, atol=1e-12)
    assert res.results["ext1"] is None and res.results["carol"] is None
    for party in PARTIES:
        job = next(e for e in res.ledgers[party] if e["event"] == "tee_job")
        assert job["simulated"] is True and job["assurance"] == ASSURANCE
    # Sealed inputs really crossed the network: ext1 sent its ciphertext to bank.
    assert res.stats["ext1"]["peers"]["bank"]["bytes_sent"] > x_ext.nbytes


def test_sim_refused_over_grpc_without_every_owners_opt_in(tmp_path: Path) -> None:
    root = SimRoot.generate().private_bytes()
    with pytest.raises(PartyFailed) as info:
        veil.simulate(
            tee_lr_job,
            PARTIES,
            transport="grpc",
            params={"sim_root": root, "opt_in": ["bank"]},
            timeout=60,
            ledger_dir=tmp_path,
        )
    # ext1 refused the simulated enclave; whichever failure the runtime names first, ext1's
    # ledger says why, and no input was sealed (no import happened before the refusal).
    ext1 = read_ledger(tmp_path / "ext1.jsonl")
    refused = [e for e in ext1 if e["event"] == "tee_job_refused"]
    assert refused and refused[0]["reason"] == "simulated", info.value
    assert not any(e["event"] in ("tee_job", "tee_release") for e in ext1)
    bank = tmp_path / "bank.jsonl"
    assert not bank.exists() or all(e["event"] != "tee_job_refused" for e in read_ledger(bank))
    if info.value.party == "ext1":
        assert info.value.error_type == "AttestationError"

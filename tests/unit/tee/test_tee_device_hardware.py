"""The device's ``hardware`` runtime against a FAKE configfs-tsm (file protocol only).

No TEE hardware here: the fake kernel (``test_tee_device_attesters.FakeTsmKernel``) serves the
real, public SEV-SNP Milan report with its real certificate table whatever report data is asked
for. So the full verification path runs on genuine vendor evidence — chain to the pinned AMD
root, signature, measurement, debug policy — and the evidence is then refused for what it is
here: a report made for another session (replayed), whose report data does not bind this
session's nonce, key and program.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from tee_samples import SNP_MEASUREMENT, read
from test_tee_device_attesters import FakeTsmKernel, cert_table

import veil
from veil.devices.tee import ReleasePolicy
from veil.errors import PartyFailed
from veil.runtime.ledger import read_ledger
from veil.tee import AppraisalPolicy
from veil.tee.attesters import ConfigfsTsmAttester

PARTIES = ["bank", "ext1"]
AT = datetime(2026, 9, 1, tzinfo=UTC)  # inside the sample VCEK's validity


def total(a: Any, b: Any) -> float:
    return float(a.sum() + b.sum())


def snp_kernel() -> FakeTsmKernel:
    certs = {n: read(f"snp_milan_{n.lower()}.der") for n in ("VCEK", "ASK", "ARK")}
    return FakeTsmKernel("sev_guest", read("snp_milan_report.bin"), cert_table(certs))


def hw_job(ctx: veil.Context, attester: Any, policy: Any) -> Any:
    bank, ext1 = ctx.parties()
    with ctx.tee(
        bank,
        runtime="hardware",
        attester=attester,
        program=[total],
        owners=[bank, ext1],
        release=ReleasePolicy(recipients=frozenset({"bank"})),
        policy=policy,
        clock=lambda: AT,
    ) as tee:
        return ctx.reveal(tee(total)(bank(lambda: 1.0)(), ext1(lambda: 2.0)()), to=bank)


def test_real_hardware_evidence_replayed_into_this_session_is_refused(tmp_path: Path) -> None:
    (tmp_path / "tsm").mkdir()
    attester = ConfigfsTsmAttester(tmp_path / "tsm", files=snp_kernel())
    policy = AppraisalPolicy(measurements=frozenset({SNP_MEASUREMENT}), allow_debug=True)
    with pytest.raises(PartyFailed) as info:
        veil.simulate(
            hw_job,
            PARTIES,
            params={"attester": attester, "policy": policy},
            ledger_dir=tmp_path / "ledgers",
        )
    assert info.value.error_type == "AttestationError"
    assert "[report_data_mismatch]" in str(info.value)
    refused = [
        e
        for e in read_ledger(tmp_path / "ledgers" / "ext1.jsonl")
        if e["event"] == "tee_job_refused"
    ]
    assert refused and refused[0]["platform"] == "sev-snp"
    assert refused[0]["reason"] == "report_data_mismatch"


def test_hardware_measurement_and_debug_are_appraised(tmp_path: Path) -> None:
    (tmp_path / "tsm").mkdir()
    attester = ConfigfsTsmAttester(tmp_path / "tsm", files=snp_kernel())
    for policy, reason in (
        (
            AppraisalPolicy(measurements=frozenset({"ab" * 48}), allow_debug=True),
            "measurement_mismatch",
        ),
        (AppraisalPolicy(measurements=frozenset({SNP_MEASUREMENT})), "debug_enclave"),
    ):
        with pytest.raises(PartyFailed) as info:
            veil.simulate(hw_job, PARTIES, params={"attester": attester, "policy": policy})
        assert f"[{reason}]" in str(info.value)


def test_hardware_runtime_needs_a_policy_and_the_device(tmp_path: Path) -> None:
    with pytest.raises(PartyFailed, match="no appraisal policy for the hardware enclave"):
        veil.simulate(
            hw_job,
            PARTIES,
            params={"attester": ConfigfsTsmAttester(tmp_path, files=snp_kernel()), "policy": None},
        )
    policy = AppraisalPolicy(measurements=frozenset({SNP_MEASUREMENT}), allow_debug=True)
    with pytest.raises(PartyFailed) as info:
        veil.simulate(
            hw_job,
            PARTIES,
            params={"attester": ConfigfsTsmAttester(tmp_path / "absent"), "policy": policy},
        )
    assert info.value.party == "bank" and info.value.error_type == "AttesterUnavailable"

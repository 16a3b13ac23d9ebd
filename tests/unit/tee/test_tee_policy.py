"""The appraisal policy on its own: construction is fail-closed, each check refuses with its reason."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from veil.errors import ConfigError
from veil.tee import AppraisalPolicy, AttestationError, Claims, Platform, Reason, appraise

NOW = datetime(2026, 1, 1, tzinfo=UTC)
M = b"\x11" * 48


def claims(**kw: object) -> Claims:
    base: dict[str, object] = {
        "platform": Platform.TDX,
        "measurement": M,
        "report_data": b"\x22" * 64,
        "debug": False,
        "tcb_status": "UpToDate",
    }
    base.update(kw)
    return Claims(**base)  # type: ignore[arg-type]


def reason(c: Claims, p: AppraisalPolicy, **kw: object) -> Reason:
    with pytest.raises(AttestationError) as info:
        appraise(c, p, kw.pop("now", NOW), **kw)  # type: ignore[arg-type]
    return info.value.reason


@pytest.mark.parametrize("empty", [frozenset(), [], (), set()])
def test_an_empty_measurement_allow_list_cannot_be_built(empty: object) -> None:
    with pytest.raises(ConfigError, match="at least one expected measurement"):
        AppraisalPolicy(measurements=empty)  # type: ignore[arg-type]


def test_other_fail_open_constructions_are_refused() -> None:
    with pytest.raises(ConfigError, match="not one value"):
        AppraisalPolicy(measurements=M)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="empty measurement"):
        AppraisalPolicy(measurements=frozenset({b""}))
    with pytest.raises(ConfigError, match="not hex"):
        AppraisalPolicy(measurements=["zz"])  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="signer"):
        AppraisalPolicy(measurements=frozenset({M}), signers=frozenset())
    with pytest.raises(ConfigError, match="max_evidence_age"):
        AppraisalPolicy(measurements=frozenset({M}), max_evidence_age=timedelta(0))


def test_defaults_are_strict() -> None:
    p = AppraisalPolicy(measurements=[M.hex()])  # type: ignore[arg-type]
    assert p.measurements == frozenset({M})  # hex is accepted and normalized
    assert p.allowed_tcb_statuses == frozenset({"UpToDate"})
    assert p.allowed_advisories == frozenset()
    assert not p.allow_debug and not p.allow_simulated and p.max_vmpl == 0
    verdict = appraise(claims(), p, NOW)
    assert verdict.waivers == () and verdict.assurance == "hardware"


def test_each_check_refuses_with_its_reason() -> None:
    p = AppraisalPolicy(measurements=frozenset({M}))
    assert reason(claims(measurement=b"\x12" * 48), p) is Reason.MEASUREMENT_MISMATCH
    assert reason(claims(debug=True), p) is Reason.DEBUG_ENCLAVE
    assert reason(claims(tcb_status="SWHardeningNeeded"), p) is Reason.TCB_STATUS
    assert reason(claims(tcb_status="Revoked"), p) is Reason.TCB_STATUS
    assert reason(claims(advisory_ids=("INTEL-SA-1",)), p) is Reason.ADVISORY
    assert reason(claims(), p, report_data=b"\x23") is Reason.REPORT_DATA_MISMATCH
    assert reason(claims(platform=Platform.SIM), p) is Reason.SIMULATED
    assert reason(claims(privilege_level=1), p) is Reason.PRIVILEGE_LEVEL


def test_signer_svn_and_tcb_floors() -> None:
    p = AppraisalPolicy(
        measurements=frozenset({M}),
        signers=frozenset({b"\x01" * 32}),
        min_svn=3,
        min_tcb={"snp": 8},
    )
    ok = claims(signer=b"\x01" * 32, svn=3, tcb={"snp": 8})
    appraise(ok, p, NOW)
    assert reason(replace(ok, signer=None), p) is Reason.SIGNER_MISMATCH
    assert reason(replace(ok, signer=b"\x02" * 32), p) is Reason.SIGNER_MISMATCH
    assert reason(replace(ok, svn=2), p) is Reason.TCB_BELOW_MINIMUM
    assert reason(replace(ok, svn=None), p) is Reason.TCB_BELOW_MINIMUM
    assert reason(replace(ok, tcb={"snp": 7}), p) is Reason.TCB_BELOW_MINIMUM
    assert reason(replace(ok, tcb={}), p) is Reason.TCB_BELOW_MINIMUM  # unreported → refused


def test_explicit_allowances_are_recorded_as_waivers() -> None:
    p = AppraisalPolicy(
        measurements=frozenset({M}),
        allowed_tcb_statuses=frozenset({"UpToDate", "SWHardeningNeeded"}),
        allowed_advisories=frozenset({"INTEL-SA-1"}),
        allow_debug=True,
        allow_simulated=True,
    )
    v = appraise(
        claims(
            platform=Platform.SIM,
            debug=True,
            tcb_status="SWHardeningNeeded",
            advisory_ids=("INTEL-SA-1",),
        ),
        p,
        NOW,
    )
    assert v.assurance == "simulated: as trusted as a third party"
    assert len(v.waivers) == 4


def test_evidence_age_window() -> None:
    p = AppraisalPolicy(measurements=frozenset({M}), max_evidence_age=timedelta(minutes=5))
    appraise(claims(evidence_time=NOW - timedelta(minutes=5)), p, NOW)
    appraise(claims(evidence_time=NOW + timedelta(seconds=59)), p, NOW)  # within clock skew
    assert reason(claims(evidence_time=NOW - timedelta(minutes=6)), p) is Reason.EVIDENCE_TOO_OLD
    assert (
        reason(claims(evidence_time=NOW + timedelta(minutes=2)), p) is Reason.EVIDENCE_FROM_FUTURE
    )


def test_report_data_is_compared_exactly_after_zero_padding() -> None:
    p = AppraisalPolicy(measurements=frozenset({M}))
    c = claims(report_data=b"abc" + b"\0" * 61)
    appraise(c, p, NOW, report_data=b"abc")
    appraise(c, p, NOW, report_data=b"abc" + b"\0" * 61)
    assert reason(c, p, report_data=b"abd") is Reason.REPORT_DATA_MISMATCH
    assert reason(c, p, report_data=b"abc" + b"\0" * 62) is Reason.REPORT_DATA_MISMATCH


def test_claims_are_immutable() -> None:
    c = claims(tcb={"snp": 1})
    with pytest.raises(TypeError):
        c.tcb["snp"] = 9  # type: ignore[index]

"""Real vendor evidence, verified and appraised at pinned clocks: accepted and refused cases."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest
from tee_samples import (
    SGX_MRSIGNER,
    TDX_OUTDATED_MRTD,
    Sample,
    dcap_window,
    read,
)

from veil.errors import ConfigError
from veil.tee import (
    AppraisalPolicy,
    AttestationError,
    Platform,
    Reason,
    TrustAnchors,
    appraise,
    attest,
    verify_evidence,
)


def permissive_for(sample: Sample) -> AppraisalPolicy:
    """The policy that accepts this sample: its measurement plus exactly what it needs."""
    extra: dict[str, object] = {}
    if sample.platform == "sgx":
        extra = {
            "allowed_tcb_statuses": frozenset({"UpToDate", "ConfigurationAndSWHardeningNeeded"}),
            "allowed_advisories": frozenset({"INTEL-SA-00289", "INTEL-SA-00615"}),
        }
    if sample.platform in ("sev-snp", "nitro"):
        extra = {"allow_debug": True}  # both public samples are debug guests
    return AppraisalPolicy(measurements=frozenset({bytes.fromhex(sample.measurement)}), **extra)  # type: ignore[arg-type]


def refusal(sample: Sample, policy: AppraisalPolicy | None = None, **kw: object) -> Reason:
    with pytest.raises(AttestationError) as info:
        attest(
            sample.platform,
            kw.pop("evidence", sample.evidence),  # type: ignore[arg-type]
            kw.pop("collateral", sample.collateral),  # type: ignore[arg-type]
            policy or permissive_for(sample),
            now=kw.pop("now", sample.at),  # type: ignore[arg-type]
            **kw,  # type: ignore[arg-type]
        )
    assert info.value.platform == Platform(sample.platform).value
    assert info.value.detail  # an actionable message, never empty
    return info.value.reason


def test_every_sample_is_accepted_under_its_real_measurement(sample: Sample) -> None:
    verdict = attest(
        sample.platform, sample.evidence, sample.collateral, permissive_for(sample), now=sample.at
    )
    claims = verdict.claims
    assert claims.platform is Platform(sample.platform)
    assert claims.measurement.hex() == sample.measurement
    assert verdict.assurance == "hardware"
    assert claims.collateral_not_before is not None and claims.collateral_not_after is not None
    assert claims.collateral_not_before <= sample.at <= claims.collateral_not_after
    json.dumps(claims.to_json_dict())  # JSON-ready


def test_sgx_claims_match_the_quote(sgx: Sample) -> None:
    claims = verify_evidence("sgx", sgx.evidence, sgx.collateral, now=sgx.at)
    assert claims.signer is not None and claims.signer.hex() == SGX_MRSIGNER
    assert claims.report_data.rstrip(b"\0") == b"Hello, world!"
    assert claims.tcb_status == "ConfigurationAndSWHardeningNeeded"
    assert claims.advisory_ids == ("INTEL-SA-00289", "INTEL-SA-00615")
    assert (claims.svn, claims.product_id, claims.debug) == (0, 0, False)


def test_sgx_is_refused_by_default_and_accepted_only_with_explicit_allowances(sgx: Sample) -> None:
    m = frozenset({bytes.fromhex(sgx.measurement)})
    assert refusal(sgx, AppraisalPolicy(measurements=m)) is Reason.TCB_STATUS
    status_only = AppraisalPolicy(
        measurements=m,
        allowed_tcb_statuses=frozenset({"UpToDate", "ConfigurationAndSWHardeningNeeded"}),
    )
    assert refusal(sgx, status_only) is Reason.ADVISORY
    one_advisory = replace(status_only, allowed_advisories=frozenset({"INTEL-SA-00289"}))
    assert refusal(sgx, one_advisory) is Reason.ADVISORY
    verdict = attest("sgx", sgx.evidence, sgx.collateral, permissive_for(sgx), now=sgx.at)
    assert any("ConfigurationAndSWHardeningNeeded" in w for w in verdict.waivers)
    assert any("INTEL-SA-00615" in w for w in verdict.waivers)


def test_tdx_up_to_date_is_accepted_by_the_default_policy(tdx: Sample) -> None:
    verdict = attest(
        "tdx",
        tdx.evidence,
        tdx.collateral,
        AppraisalPolicy(measurements=frozenset({bytes.fromhex(tdx.measurement)})),
        now=tdx.at,
    )
    assert verdict.claims.tcb_status == "UpToDate" and verdict.waivers == ()


def test_outdated_tdx_is_refused(tdx: Sample) -> None:
    start, _ = dcap_window("tdx_quote_outdated_collateral.json")
    outdated = replace(
        tdx,
        evidence=read("tdx_quote_outdated"),
        collateral=read("tdx_quote_outdated_collateral.json"),
        measurement=TDX_OUTDATED_MRTD,
        at=start + timedelta(days=1),
    )
    assert refusal(outdated) is Reason.TCB_STATUS
    lax = AppraisalPolicy(
        measurements=frozenset({bytes.fromhex(TDX_OUTDATED_MRTD)}),
        allowed_tcb_statuses=frozenset({"UpToDate", "OutOfDate"}),
    )
    assert refusal(outdated, lax) is Reason.TCB_STATUS  # below every TCB level Intel lists


def test_wrong_measurement_is_refused(sample: Sample) -> None:
    policy = replace(permissive_for(sample), measurements=frozenset({b"\x01" * 48, b"\x02" * 32}))
    assert refusal(sample, policy) is Reason.MEASUREMENT_MISMATCH


def test_wrong_signer_is_refused(sgx: Sample) -> None:
    policy = replace(permissive_for(sgx), signers=frozenset({b"\x00" * 32}))
    assert refusal(sgx, policy) is Reason.SIGNER_MISMATCH
    ok = replace(permissive_for(sgx), signers=frozenset({bytes.fromhex(SGX_MRSIGNER)}))
    attest("sgx", sgx.evidence, sgx.collateral, ok, now=sgx.at)


def test_report_data_must_match(sample: Sample) -> None:
    claims = verify_evidence(sample.platform, sample.evidence, sample.collateral, now=sample.at)
    appraise(claims, permissive_for(sample), sample.at, report_data=claims.report_data)
    wrong = bytearray(claims.report_data or b"\0")
    wrong[0] ^= 1
    assert refusal(sample, report_data=bytes(wrong)) is Reason.REPORT_DATA_MISMATCH


def test_sgx_report_data_prefix_is_zero_padded(sgx: Sample) -> None:
    attest(
        "sgx",
        sgx.evidence,
        sgx.collateral,
        permissive_for(sgx),
        now=sgx.at,
        report_data=b"Hello, world!",
    )
    assert refusal(sgx, report_data=b"Hello, world?") is Reason.REPORT_DATA_MISMATCH


def test_collateral_outside_its_window_is_refused(sample: Sample) -> None:
    start, end = sample.window
    assert refusal(sample, now=start - timedelta(seconds=1)) is Reason.COLLATERAL_NOT_YET_VALID
    assert refusal(sample, now=end + timedelta(seconds=1)) is Reason.COLLATERAL_EXPIRED


def test_a_wrong_root_pin_is_refused(sample: Sample) -> None:
    nobody = TrustAnchors(
        intel_root_sha256=frozenset({b"\0" * 32}),
        amd_ark_sha256={"Milan": b"\0" * 32},
        nitro_root_sha256=frozenset({b"\0" * 32}),
    )
    assert refusal(sample, anchors=nobody) is Reason.ROOT_NOT_PINNED


def test_a_product_without_a_pinned_ark_is_refused(snp: Sample) -> None:
    genoa_only = TrustAnchors(amd_ark_sha256={"Genoa": TrustAnchors().amd_ark_sha256["Genoa"]})
    assert refusal(snp, anchors=genoa_only) is Reason.ROOT_NOT_PINNED


def test_debug_guests_are_refused_by_default(snp: Sample, nitro: Sample) -> None:
    for s in (snp, nitro):
        assert verify_evidence(s.platform, s.evidence, s.collateral, now=s.at).debug
        assert (
            refusal(s, AppraisalPolicy(measurements=frozenset({bytes.fromhex(s.measurement)})))
            is Reason.DEBUG_ENCLAVE
        )
        verdict = attest(
            s.platform,
            s.evidence,
            s.collateral,
            AppraisalPolicy(
                measurements=frozenset({bytes.fromhex(s.measurement)}), allow_debug=True
            ),
            now=s.at,
        )
        assert "debug enclave accepted" in verdict.waivers


def test_snp_tcb_floor(snp: Sample) -> None:
    claims = verify_evidence("sev-snp", snp.evidence, snp.collateral, now=snp.at)
    assert dict(claims.tcb) == {"boot_loader": 2, "tee": 0, "snp": 5, "microcode": 68}
    at_floor = replace(permissive_for(snp), min_tcb={"snp": 5, "microcode": 68})
    appraise(claims, at_floor, snp.at)
    above = replace(permissive_for(snp), min_tcb={"snp": 6})
    assert refusal(snp, above) is Reason.TCB_BELOW_MINIMUM


def test_nitro_evidence_age_is_bounded(nitro: Sample) -> None:
    late = nitro.at + timedelta(minutes=30)
    policy = replace(permissive_for(nitro), max_evidence_age=timedelta(minutes=10))
    assert refusal(nitro, policy, now=late) is Reason.EVIDENCE_TOO_OLD
    roomy = replace(policy, max_evidence_age=timedelta(hours=1))
    attest("nitro", nitro.evidence, None, roomy, now=late)
    early = nitro.at - timedelta(minutes=3)  # certificates valid, document from the future
    assert refusal(nitro, policy, now=early) is Reason.EVIDENCE_FROM_FUTURE


def test_sgx_quote_with_tdx_collateral_is_refused(sgx: Sample, tdx: Sample) -> None:
    assert refusal(sgx, collateral=tdx.collateral) is Reason.COLLATERAL_MISMATCH
    assert refusal(tdx, collateral=sgx.collateral) is Reason.COLLATERAL_MISMATCH


def test_tdx_collateral_for_another_fmspc_is_refused(tdx: Sample) -> None:
    other = read("tdx_quote_outdated_collateral.json")  # FMSPC 90C06F000000, not B0C06F000000
    assert refusal(tdx, collateral=other) is Reason.COLLATERAL_MISMATCH


def test_declaring_the_wrong_platform_is_refused(sgx: Sample, tdx: Sample) -> None:
    assert refusal(replace(sgx, platform="tdx")) is Reason.PLATFORM_MISMATCH
    assert refusal(replace(tdx, platform="sgx")) is Reason.PLATFORM_MISMATCH
    assert refusal(replace(sgx, platform="sev-snp")) is Reason.MALFORMED_EVIDENCE


def test_a_policy_can_restrict_platforms(tdx: Sample) -> None:
    sgx_only = replace(permissive_for(tdx), platforms=frozenset({Platform.SGX}))
    assert refusal(tdx, sgx_only) is Reason.PLATFORM_MISMATCH


def test_missing_collateral_and_naive_clock_are_usage_errors(sgx: Sample, nitro: Sample) -> None:
    with pytest.raises(ConfigError, match="collateral"):
        verify_evidence("sgx", sgx.evidence, None, now=sgx.at)
    with pytest.raises(ConfigError, match="no collateral"):
        verify_evidence("nitro", nitro.evidence, b"{}", now=nitro.at)
    with pytest.raises(ConfigError, match="time zone"):
        verify_evidence("sgx", sgx.evidence, sgx.collateral, now=sgx.at.replace(tzinfo=None))
    with pytest.raises(ConfigError, match="unknown platform"):
        verify_evidence("sgx2", sgx.evidence, sgx.collateral, now=sgx.at)


def test_test_data_matches_its_checksums() -> None:
    import hashlib

    from tee_samples import DATA

    lines = (DATA / "SHA256SUMS").read_text().split("\n")
    sums = {line.split()[1]: line.split()[0] for line in lines if line.strip()}
    assert len(sums) == 12
    for name, digest in sums.items():
        assert hashlib.sha256((DATA / name).read_bytes()).hexdigest() == digest, name

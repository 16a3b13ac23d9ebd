"""Our SEV-SNP verifier against an independent implementation (omne-attest, test-only oracle)."""

from __future__ import annotations

import hashlib
import random

import pytest
from tee_samples import Sample, read

from veil.tee import AttestationError, TrustAnchors, verify_evidence

omne = pytest.importorskip("omne_attest")
pytestmark = pytest.mark.filterwarnings(
    "ignore:Parsed a serial number:cryptography.utils.CryptographyDeprecationWarning"
)
R_HIGH = range(0x2A0 + 48, 0x2A0 + 72)  # zero high bytes of the 72-byte little-endian R


def ours_accepts(sample: Sample, report: bytes) -> bool:
    try:
        verify_evidence("sev-snp", report, sample.collateral, now=sample.at)
    except AttestationError:
        return False
    return True


def oracle_accepts(report: bytes) -> bool:
    try:
        omne.verify(
            report,
            read("snp_milan_vcek.der"),
            read("snp_milan_ask.der"),
            read("snp_milan_ark.der"),
            omne.vectors.ARK_SHA256,
            omne.Policy(reject_debug=False),
        )
    except omne.Fail:
        return False
    return True


def test_the_copied_vectors_are_the_oracle_s_vectors() -> None:
    assert read("snp_milan_report.bin") == omne.vectors.attestation()
    assert read("snp_milan_vcek.der") == omne.vectors.vcek()
    assert read("snp_milan_ark.der") == omne.vectors.ark()
    # Two independent sources pin the same Milan ARK (omne-attest; google/go-sev-guest).
    assert hashlib.sha256(read("snp_milan_ark.der")).digest() == omne.vectors.ARK_SHA256
    assert TrustAnchors().amd_ark_sha256["Milan"] == omne.vectors.ARK_SHA256


def test_parsed_fields_agree(snp: Sample) -> None:
    ours = verify_evidence("sev-snp", snp.evidence, snp.collateral, now=snp.at)
    theirs = omne.Report.parse(snp.evidence)
    assert ours.measurement == theirs.measurement
    assert ours.report_data == theirs.report_data
    assert ours.debug == bool(theirs.policy & omne.POLICY_DEBUG)
    assert ours.privilege_level == theirs.vmpl
    assert ours.svn == theirs.guest_svn
    rt = theirs.reported_tcb
    assert dict(ours.tcb) == {
        "boot_loader": rt.boot_loader,
        "tee": rt.tee,
        "snp": rt.snp,
        "microcode": rt.microcode,
    }
    assert ours.extra["chip_id"] == theirs.chip_id.hex()


def test_accept_reject_agree_on_mutations(snp: Sample) -> None:
    rng = random.Random(7)
    assert ours_accepts(snp, snp.evidence) and oracle_accepts(snp.evidence)
    positions = [i for i in range(0x2A0 + 72 + 48) if i not in R_HIGH]
    for _ in range(150):
        b = bytearray(snp.evidence)
        b[rng.choice(positions)] ^= 1 << rng.randrange(8)
        mutated = bytes(b)
        assert ours_accepts(snp, mutated) == oracle_accepts(mutated)


def test_we_are_stricter_on_non_canonical_signatures(snp: Sample) -> None:
    # The oracle reads only the low 48 bytes of R and S; we also refuse non-zero high bytes.
    b = bytearray(snp.evidence)
    b[R_HIGH.start] ^= 1
    assert oracle_accepts(bytes(b)) and not ours_accepts(snp, bytes(b))

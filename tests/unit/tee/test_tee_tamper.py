"""Tampering with real evidence: every flipped byte in a signed part is refused, and random
mutations of every blob end in a typed refusal (or, if they touch nothing signed, in the very
same claims) — never in a crash or in different accepted claims."""

from __future__ import annotations

import base64
import json
import random
from collections import Counter
from collections.abc import Callable

import cbor2
import pytest
from tee_samples import SAMPLES, Sample, read

from veil.tee import AttestationError, Claims, Reason, verify_evidence

MUTATIONS_PER_BLOB = 300


def outcome(sample: Sample, evidence: bytes, collateral: bytes | None) -> Claims | Reason:
    try:
        return verify_evidence(sample.platform, evidence, collateral, now=sample.at)
    except AttestationError as exc:
        return exc.reason


def flip(blob: bytes, i: int, mask: int = 0x01) -> bytes:
    b = bytearray(blob)
    b[i] ^= mask
    return bytes(b)


@pytest.mark.parametrize("platform", ["sgx", "tdx"])
def test_every_byte_of_the_signed_sgx_and_tdx_quote_body(platform: str) -> None:
    sample = SAMPLES[platform]()
    signed = 48 + (384 if sample.platform == "sgx" else 584)  # header + report body
    reasons: Counter[Reason] = Counter()
    for i in range(signed):
        result = outcome(sample, flip(sample.evidence, i), sample.collateral)
        assert isinstance(result, Reason), f"flipped byte {i} was accepted"
        reasons[result] += 1
    body = Counter(
        outcome(sample, flip(sample.evidence, i), sample.collateral) for i in range(48, signed)
    )
    assert body == Counter({Reason.SIGNATURE_INVALID: signed - 48}), body
    assert set(reasons) <= {
        Reason.SIGNATURE_INVALID,
        Reason.MALFORMED_EVIDENCE,
        Reason.PLATFORM_MISMATCH,
        Reason.UNSUPPORTED,
        Reason.VERIFICATION_FAILED,
        Reason.COLLATERAL_MISMATCH,
    }, reasons


def test_every_byte_of_the_signed_snp_report(snp: Sample) -> None:
    reasons = Counter(outcome(snp, flip(snp.evidence, i), snp.collateral) for i in range(0x2A0))
    assert not any(isinstance(r, Claims) for r in reasons), "a flipped report byte was accepted"
    assert reasons[Reason.SIGNATURE_INVALID] >= 0x2A0 - 16, reasons
    assert set(reasons) <= {Reason.SIGNATURE_INVALID, Reason.UNSUPPORTED}, reasons


def test_flipped_signature_bytes_are_refused(snp: Sample) -> None:
    for i in range(0x2A0, 0x2A0 + 48):
        assert outcome(snp, flip(snp.evidence, i), snp.collateral) is Reason.SIGNATURE_INVALID
    for i in range(0x2A0 + 48, 0x2A0 + 72):  # the zero high bytes of R
        assert outcome(snp, flip(snp.evidence, i), snp.collateral) is Reason.SIGNATURE_INVALID


def _nitro_parts(nitro: Sample) -> list[bytes]:
    parts: list[bytes] = cbor2.loads(base64.b64decode(nitro.evidence))
    return parts


def test_every_byte_of_the_nitro_payload_is_signed(nitro: Sample) -> None:
    protected, unprotected, payload, signature = _nitro_parts(nitro)
    step = 7  # every 7th byte of the ~4.4 kB payload, each bit position in turn
    for n, i in enumerate(range(0, len(payload), step)):
        doc = cbor2.dumps([protected, unprotected, flip(payload, i, 1 << (n % 8)), signature])
        result = outcome(nitro, doc, None)
        assert isinstance(result, Reason), f"flipped payload byte {i} was accepted"
    for i in range(len(signature)):
        doc = cbor2.dumps([protected, unprotected, payload, flip(signature, i)])
        assert outcome(nitro, doc, None) is Reason.SIGNATURE_INVALID


def test_nitro_document_rebuilt_from_its_parts_still_verifies(nitro: Sample) -> None:
    # Guards the test above: re-encoding alone does not break the signature.
    assert isinstance(outcome(nitro, cbor2.dumps(_nitro_parts(nitro)), None), Claims)


def _with(collateral: bytes, key: str, edit: Callable[[str], str]) -> bytes:
    doc = json.loads(collateral)
    doc[key] = edit(doc[key])
    return json.dumps(doc).encode()


def test_rewriting_signed_dcap_collateral_is_refused(sgx: Sample) -> None:
    assert sgx.collateral is not None
    upgraded = _with(
        sgx.collateral,
        "tcb_info",
        lambda s: s.replace("ConfigurationAndSWHardeningNeeded", "UpToDate"),
    )
    assert outcome(sgx, sgx.evidence, upgraded) is Reason.SIGNATURE_INVALID
    no_advisories = _with(
        sgx.collateral, "tcb_info", lambda s: s.replace('"INTEL-SA-00615"', '"INTEL-SA-00000"')
    )
    assert outcome(sgx, sgx.evidence, no_advisories) is Reason.SIGNATURE_INVALID
    qe = _with(sgx.collateral, "qe_identity", lambda s: s.replace('"isvsvn":8', '"isvsvn":9'))
    assert outcome(sgx, sgx.evidence, qe) is Reason.SIGNATURE_INVALID


def test_a_tampered_vcek_is_refused(snp: Sample) -> None:
    vcek = read("snp_milan_vcek.der")
    for i in range(200, len(vcek) - 120, 37):  # inside the signed TBS certificate
        bundle = (
            _pem(flip(vcek, i)) + _pem(read("snp_milan_ask.der")) + _pem(read("snp_milan_ark.der"))
        )
        result = outcome(snp, snp.evidence, bundle)
        assert isinstance(result, Reason), f"VCEK byte {i} flipped was accepted"


def _pem(der: bytes) -> bytes:
    b64 = base64.encodebytes(der).decode().replace("\n", "")
    lines = "\n".join(b64[i : i + 64] for i in range(0, len(b64), 64))
    return f"-----BEGIN CERTIFICATE-----\n{lines}\n-----END CERTIFICATE-----\n".encode()


def mutate(rng: random.Random, blob: bytes) -> bytes:
    """One random structural or byte-level mutation."""
    b = bytearray(blob)
    op = rng.randrange(7)
    i = rng.randrange(len(b)) if b else 0
    if op == 0 and b:
        b[i] ^= 1 << rng.randrange(8)
    elif op == 1 and b:
        b[i] = rng.randrange(256)
    elif op == 2:
        del b[rng.randrange(len(b) + 1) :]
    elif op == 3:
        b[i:i] = rng.randbytes(rng.randrange(1, 64))
    elif op == 4:
        del b[i : i + rng.randrange(1, 64)]
    elif op == 5 and len(b) > 8:
        j = rng.randrange(len(b))
        n = rng.randrange(1, 16)
        b[i : i + n], b[j : j + n] = b[j : j + n], b[i : i + n]
    else:
        for _ in range(rng.randrange(2, 10)):
            if b:
                b[rng.randrange(len(b))] = rng.randrange(256)
    return bytes(b)


def test_random_mutations_end_in_typed_refusals(sample: Sample) -> None:
    rng = random.Random(f"veil-tee-{sample.platform}")
    original = verify_evidence(sample.platform, sample.evidence, sample.collateral, now=sample.at)
    blobs = {"evidence": sample.evidence}
    if sample.platform == "nitro":
        blobs["cbor"] = base64.b64decode(sample.evidence)
    if sample.collateral is not None:
        blobs["collateral"] = sample.collateral
    reasons: Counter[str] = Counter()
    for which, blob in blobs.items():
        for _ in range(MUTATIONS_PER_BLOB):
            mutated = mutate(rng, blob)
            evidence = mutated if which in ("evidence", "cbor") else sample.evidence
            collateral = mutated if which == "collateral" else sample.collateral
            result = outcome(sample, evidence, collateral)
            if isinstance(result, Claims):
                # Only a mutation of something unsigned may pass, and it changes nothing.
                assert result == original, f"{which} mutation changed accepted claims"
                reasons["accepted unchanged"] += 1
            else:
                reasons[result.value] += 1
    assert sum(v for k, v in reasons.items() if k != "accepted unchanged") > MUTATIONS_PER_BLOB


@pytest.mark.parametrize("size", [0, 1, 100, 1184, 5000])
def test_pure_garbage_is_refused(sample: Sample, size: int) -> None:
    rng = random.Random(size)
    garbage = rng.randbytes(size)
    result = outcome(sample, garbage, sample.collateral)
    assert result in (Reason.MALFORMED_EVIDENCE, Reason.UNSUPPORTED, Reason.SIGNATURE_INVALID)
    if sample.collateral is not None:
        result = outcome(sample, sample.evidence, garbage)
        assert result is Reason.MALFORMED_COLLATERAL

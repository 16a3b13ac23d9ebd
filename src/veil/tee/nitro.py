"""AWS Nitro Enclaves: attestation document (COSE_Sign1) → :class:`~veil.tee.claims.Claims`.

Threat model: the parent EC2 instance relays the document and may alter or replay it. The
document is trusted only if (a) its ``cabundle`` starts at the pinned AWS Nitro root, (b) every
link of cabundle → ``certificate`` is signed by its parent and valid at the injected time, and
(c) the COSE_Sign1 signature (ES384) verifies under the leaf certificate's key. Replay is
defeated by the verifier's nonce bound into ``user_data`` or ``nonce`` (see
:mod:`veil.tee.binding`) and by the policy's maximum evidence age on ``timestamp``.

Measurement: PCR0 (the enclave image file). Signer: PCR8 (the image signing certificate; ``None``
if unsigned). Debug: an enclave started with ``--debug-mode`` reports PCR0, PCR1 and PCR2 as all
zeros (AWS documentation), so all-zero PCR0 means debug. Report data: ``user_data``.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from veil.errors import ConfigError
from veil.tee import certs
from veil.tee.anchors import TrustAnchors
from veil.tee.claims import Claims, Platform
from veil.tee.errors import AttestationError, Reason

MAX_DOCUMENT_BYTES = 64 * 1024
_P = Platform.NITRO.value
_ES384 = -35
_COSE_SIGN1_TAG = 18


def _load_cbor2() -> Any:
    try:
        import cbor2
    except ImportError as exc:  # optional dependency
        raise ConfigError(
            "verifying AWS Nitro documents needs the 'cbor2' package: pip install 'veil[tee]'"
        ) from exc
    return cbor2


def _malformed(detail: str) -> AttestationError:
    return AttestationError(Reason.MALFORMED_EVIDENCE, detail, platform=_P)


def _decode(cbor2: Any, data: bytes, what: str) -> Any:
    try:
        return cbor2.loads(data)
    except Exception as exc:  # decoder of untrusted input: any failure is a refusal
        raise _malformed(f"{what} is not valid CBOR ({type(exc).__name__}: {exc})") from exc


def _bytes_field(doc: dict[Any, Any], key: str, *, optional: bool, max_len: int) -> bytes | None:
    value = doc.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, bytes) or len(value) > max_len:
        raise _malformed(f"attestation document field {key!r} must be bytes of at most {max_len}")
    return value


def _unwrap(document: bytes) -> bytes:
    raw = bytes(document).strip()
    if raw[:1] in (b"\x84", b"\xd2"):  # CBOR array(4), or tag 18 (COSE_Sign1)
        return raw
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _malformed("the document is neither CBOR nor base64 of CBOR") from exc


def verify_nitro(
    document: bytes,
    collateral: bytes | str | None = None,
    *,
    now: datetime,
    anchors: TrustAnchors | None = None,
) -> Claims:
    """Verify an AWS Nitro Enclaves attestation document at time ``now``.

    Parameters
    ----------
    document:
        The COSE_Sign1 document, raw CBOR or base64.
    collateral:
        Unused (the certificate chain travels inside the document); must be ``None``.
    now:
        Verification time (timezone-aware); every certificate must be valid then.
    anchors:
        Pinned roots; AWS Nitro Enclaves Root-G1 by default.

    Returns
    -------
    Claims
        Verified, not yet appraised.

    Raises
    ------
    AttestationError
        If any check fails.
    """
    if collateral is not None:
        raise ConfigError("a Nitro attestation document carries its own chain: pass no collateral")
    now = certs.utc(now)
    anchors = anchors or TrustAnchors()
    cbor2 = _load_cbor2()
    raw = _unwrap(document)
    if not 0 < len(raw) <= MAX_DOCUMENT_BYTES:
        raise _malformed(f"the document is {len(raw)} bytes")
    outer = _decode(cbor2, raw, "the document")
    if isinstance(outer, cbor2.CBORTag) and outer.tag == _COSE_SIGN1_TAG:
        outer = outer.value
    if not (isinstance(outer, list) and len(outer) == 4):
        raise _malformed("the document is not a COSE_Sign1 array of 4")
    protected, unprotected, payload, signature = outer
    if not all(isinstance(x, bytes) for x in (protected, payload, signature)) or not isinstance(
        unprotected, dict
    ):
        raise _malformed("COSE_Sign1 fields have the wrong types")
    header = _decode(cbor2, protected, "the protected header")
    if not isinstance(header, dict) or header.get(1) != _ES384:
        raise AttestationError(
            Reason.UNSUPPORTED, f"COSE algorithm {header!r} (supported: ES384)", platform=_P
        )
    if len(signature) != 96:
        raise AttestationError(
            Reason.SIGNATURE_INVALID, "an ES384 signature is 96 bytes", platform=_P
        )

    doc = _decode(cbor2, payload, "the payload")
    if not isinstance(doc, dict):
        raise _malformed("the payload is not a CBOR map")
    module_id, digest, timestamp = doc.get("module_id"), doc.get("digest"), doc.get("timestamp")
    pcrs, cabundle = doc.get("pcrs"), doc.get("cabundle")
    if not isinstance(module_id, str) or not module_id or digest != "SHA384":
        raise _malformed("module_id must be a string and digest 'SHA384'")
    if not isinstance(timestamp, int) or isinstance(timestamp, bool) or not 0 < timestamp < 2**63:
        raise _malformed("timestamp must be a positive integer (ms since the epoch)")
    if not (
        isinstance(pcrs, dict)
        and 0 < len(pcrs) <= 32
        and all(
            isinstance(k, int) and 0 <= k < 32 and isinstance(v, bytes) and len(v) in (32, 48, 64)
            for k, v in pcrs.items()
        )
        and isinstance(pcrs.get(0), bytes)
    ):
        raise _malformed("pcrs must map indexes 0..31 (with 0 present) to 32/48/64-byte values")
    if not (isinstance(cabundle, list) and 0 < len(cabundle) <= 16):
        raise _malformed("cabundle must be a non-empty list of certificates")
    leaf_der = _bytes_field(doc, "certificate", optional=False, max_len=8192)
    user_data = _bytes_field(doc, "user_data", optional=True, max_len=512)
    nonce = _bytes_field(doc, "nonce", optional=True, max_len=512)
    public_key = _bytes_field(doc, "public_key", optional=True, max_len=1024)

    chain = []
    for i, der in enumerate(cabundle):
        if not isinstance(der, bytes) or len(der) > 8192:
            raise _malformed(f"cabundle[{i}] is not a certificate")
        chain.append(certs.load_der(der, f"cabundle[{i}]", _P, Reason.MALFORMED_EVIDENCE))
    assert leaf_der is not None  # optional=False
    leaf = certs.load_der(leaf_der, "the signing certificate", _P, Reason.MALFORMED_EVIDENCE)
    certs.check_chain([*chain, leaf], anchors.nitro_root_sha256, now, "AWS Nitro chain", _P)

    pub = leaf.public_key()
    if not isinstance(pub, ec.EllipticCurvePublicKey) or not isinstance(pub.curve, ec.SECP384R1):
        raise AttestationError(
            Reason.CHAIN_INVALID, "the signing certificate's key is not P-384", platform=_P
        )
    sig_structure = cbor2.dumps(["Signature1", protected, b"", payload])
    try:
        pub.verify(
            encode_dss_signature(
                int.from_bytes(signature[:48], "big"), int.from_bytes(signature[48:], "big")
            ),
            sig_structure,
            ec.ECDSA(hashes.SHA384()),
        )
    except InvalidSignature:
        raise AttestationError(
            Reason.SIGNATURE_INVALID,
            "the document's COSE signature does not verify under its signing certificate",
            platform=_P,
        ) from None

    pcr0 = pcrs[0]
    pcr8 = pcrs.get(8)
    return Claims(
        platform=Platform.NITRO,
        measurement=pcr0,
        signer=pcr8 if isinstance(pcr8, bytes) and any(pcr8) else None,
        report_data=user_data or b"",
        debug=not any(pcr0),
        tcb_status=None,
        evidence_time=datetime.fromtimestamp(timestamp / 1000, tz=UTC),
        collateral_not_before=max(c.not_valid_before_utc for c in (*chain, leaf)),
        collateral_not_after=min(c.not_valid_after_utc for c in (*chain, leaf)),
        extra={
            "module_id": module_id,
            "pcrs": {str(k): v.hex() for k, v in sorted(pcrs.items())},
            "nonce": None if nonce is None else nonce.hex(),
            "public_key": None if public_key is None else public_key.hex(),
        },
    )


__all__ = ["MAX_DOCUMENT_BYTES", "verify_nitro"]

"""Intel DCAP quote verification (SGX and TDX) through ``dcap-qvl``.

Threat model: the host that relays the quote and its collateral is untrusted. It may replay,
truncate, flip or swap any byte; it may serve stale, future-dated or foreign collateral. The
quote is trusted only if (a) every certificate chain ends at a pinned Intel root, (b) every
certificate, CRL, TCB info and QE identity is valid at the injected verification time, (c) the
collateral is for this quote's TEE type and FMSPC, and (d) ``dcap-qvl`` verifies the PCK chain,
the QE report, the attestation key binding and the quote signature. What the platform's TCB
status means for acceptance is left to the appraisal policy.

This module returns the parsed quote with the TCB status and advisories; :mod:`veil.tee.sgx` and
:mod:`veil.tee.tdx` turn that into :class:`~veil.tee.claims.Claims`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from veil.errors import ConfigError
from veil.tee import certs
from veil.tee.anchors import TrustAnchors
from veil.tee.claims import Platform
from veil.tee.errors import AttestationError, Reason

MAX_QUOTE_BYTES = 64 * 1024
MAX_COLLATERAL_BYTES = 1024 * 1024
_TEE_TYPE = {Platform.SGX: 0x00000000, Platform.TDX: 0x00000081}
_TCB_INFO_ID = {Platform.SGX: "SGX", Platform.TDX: "TDX"}
_QE_ID = {Platform.SGX: "QE", Platform.TDX: "TD_QE"}
_COLLATERAL_KEYS = (
    "pck_crl_issuer_chain",
    "root_ca_crl",
    "pck_crl",
    "tcb_info_issuer_chain",
    "tcb_info",
    "tcb_info_signature",
    "qe_identity_issuer_chain",
    "qe_identity",
    "qe_identity_signature",
)


@dataclass(frozen=True)
class DcapResult:
    """A DCAP quote that verified, before appraisal."""

    quote: Any
    """The ``dcap_qvl.Quote`` parsed from the verified bytes."""
    report: dict[str, Any]
    """The verified report body as decoded by ``dcap-qvl`` (hex strings and ints)."""
    tcb_status: str
    advisory_ids: tuple[str, ...]
    not_before: datetime
    not_after: datetime


def load_dcap_qvl() -> Any:
    """Import ``dcap_qvl`` or explain how to install it."""
    try:
        import dcap_qvl
    except ImportError as exc:  # optional dependency
        raise ConfigError(
            "verifying Intel SGX/TDX quotes needs the 'dcap-qvl' package: pip install 'veil[tee]'"
        ) from exc
    return dcap_qvl


def _reraise_if_not_library_error(exc: BaseException) -> None:
    """Let interpreter-level exceptions through; anything else from the library is a refusal.

    A Rust panic inside ``dcap-qvl`` surfaces as ``pyo3_runtime.PanicException``, which derives
    from ``BaseException``: on untrusted input it must be a refusal, not a crash.
    """
    if isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit, MemoryError)):
        raise exc


def _refuse(reason: Reason, detail: str, platform: Platform) -> AttestationError:
    return AttestationError(reason, detail, platform=platform.value)


def _classify(message: str) -> Reason:
    """Map a ``dcap-qvl`` error message to a reason (it raises ``ValueError`` for everything)."""
    m = message.lower()
    table = (
        ("failed to decode quote", Reason.MALFORMED_EVIDENCE),
        ("failed to decode", Reason.MALFORMED_COLLATERAL),
        ("unknown qe vendor", Reason.UNSUPPORTED),
        ("no matching tcb level", Reason.TCB_STATUS),
        ("revoked", Reason.REVOKED),
        ("expired", Reason.COLLATERAL_EXPIRED),
        ("in the future", Reason.COLLATERAL_NOT_YET_VALID),
        ("not yet valid", Reason.COLLATERAL_NOT_YET_VALID),
        ("fmspc", Reason.COLLATERAL_MISMATCH),
        ("unsupported qe identity", Reason.COLLATERAL_MISMATCH),
        ("mismatch", Reason.COLLATERAL_MISMATCH),
        ("signature", Reason.SIGNATURE_INVALID),
        ("crl", Reason.CHAIN_INVALID),
        ("cert", Reason.CHAIN_INVALID),
        ("chain", Reason.CHAIN_INVALID),
    )
    for needle, reason in table:
        if needle in m:
            return reason
    return Reason.VERIFICATION_FAILED


def _parse_time(value: Any, what: str, platform: Platform) -> datetime:
    try:
        t = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        return certs.utc(t)
    except (ValueError, ConfigError) as exc:
        raise _refuse(
            Reason.MALFORMED_COLLATERAL, f"{what} is not an ISO 8601 time", platform
        ) from exc


def _parse_collateral(
    collateral: bytes | str, platform: Platform
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    raw = collateral.encode() if isinstance(collateral, str) else bytes(collateral)
    if len(raw) > MAX_COLLATERAL_BYTES:
        raise _refuse(Reason.MALFORMED_COLLATERAL, f"collateral is {len(raw)} bytes", platform)
    try:
        doc = json.loads(raw)
        if not isinstance(doc, dict) or not all(
            isinstance(doc.get(k), str) for k in _COLLATERAL_KEYS
        ):
            raise ValueError(
                f"expected a JSON object with string fields {', '.join(_COLLATERAL_KEYS)}"
            )
        tcb_info = json.loads(doc["tcb_info"])
        qe_identity = json.loads(doc["qe_identity"])
        if not isinstance(tcb_info, dict) or not isinstance(qe_identity, dict):
            raise ValueError("tcb_info and qe_identity must be JSON objects")
    except ValueError as exc:  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise _refuse(
            Reason.MALFORMED_COLLATERAL,
            f"collateral is not dcap-qvl QuoteCollateralV3 JSON ({exc}); fetch it with "
            "dcap_qvl.get_collateral or from your PCCS",
            platform,
        ) from exc
    return doc, tcb_info, qe_identity


def _crl_window(
    blob: bytes, what: str, platform: Platform
) -> tuple[datetime, datetime, x509.CertificateRevocationList]:
    try:
        crl = x509.load_der_x509_crl(blob)
        last, nxt = crl.last_update_utc, crl.next_update_utc
    except Exception as exc:  # parser of untrusted input
        raise _refuse(
            Reason.MALFORMED_COLLATERAL, f"{what} is not a DER CRL ({exc})", platform
        ) from exc
    if nxt is None:
        raise _refuse(Reason.MALFORMED_COLLATERAL, f"{what} has no nextUpdate", platform)
    return last, nxt, crl


def verify_dcap(
    platform: Platform,
    quote: bytes,
    collateral: bytes | str,
    *,
    now: datetime,
    anchors: TrustAnchors,
) -> DcapResult:
    """Verify an SGX or TDX DCAP quote against its collateral at time ``now``.

    Parameters
    ----------
    platform:
        ``Platform.SGX`` or ``Platform.TDX``: the quote must be of that TEE type.
    quote:
        The raw quote bytes.
    collateral:
        ``dcap-qvl`` ``QuoteCollateralV3`` JSON (as produced by ``get_collateral(...).to_json()``).
    now:
        The verification time (timezone-aware).
    anchors:
        The pinned Intel roots.

    Raises
    ------
    AttestationError
        On any failed check, with the reason.
    """
    if platform not in _TEE_TYPE:
        raise ConfigError(f"DCAP verifies SGX and TDX quotes, not {platform.value}")
    now = certs.utc(now)
    dcap_qvl = load_dcap_qvl()
    quote = bytes(quote)
    if not 0 < len(quote) <= MAX_QUOTE_BYTES:
        raise _refuse(Reason.MALFORMED_EVIDENCE, f"quote is {len(quote)} bytes", platform)
    try:
        parsed = dcap_qvl.parse_quote(quote)
        tee_type = int(parsed.header.tee_type)
        fmspc = str(parsed.fmspc()).upper()
        pck_pem = parsed.cert_chain_pem_bytes()
    except BaseException as exc:  # the Rust parser raises ValueError, or panics
        _reraise_if_not_library_error(exc)
        raise _refuse(Reason.MALFORMED_EVIDENCE, f"quote does not parse ({exc})", platform) from exc
    if tee_type != _TEE_TYPE[platform]:
        other = {v: k for k, v in _TEE_TYPE.items()}.get(tee_type)
        raise _refuse(
            Reason.PLATFORM_MISMATCH,
            f"this is {'a ' + other.value if other else f'an unknown (0x{tee_type:x})'} quote, not "
            f"{platform.value}: pass the right --platform",
            platform,
        )

    doc, tcb_info, qe_identity = _parse_collateral(collateral, platform)
    tcb_id = tcb_info.get("id", "SGX")  # TCB info v2 (SGX only) has no id
    if tcb_id != _TCB_INFO_ID[platform] or qe_identity.get("id") != _QE_ID[platform]:
        raise _refuse(
            Reason.COLLATERAL_MISMATCH,
            f"the collateral is for {tcb_id}/{qe_identity.get('id')}, not a {platform.value} "
            "quote: fetch the collateral for this quote",
            platform,
        )
    if str(tcb_info.get("fmspc", "")).upper() != fmspc:
        raise _refuse(
            Reason.COLLATERAL_MISMATCH,
            f"the TCB info is for FMSPC {tcb_info.get('fmspc')}, the quote's platform is {fmspc}: "
            "fetch the collateral for this quote",
            platform,
        )

    try:
        col = dcap_qvl.QuoteCollateralV3.from_json(json.dumps(doc))
        root_crl, pck_crl = bytes(col.root_ca_crl), bytes(col.pck_crl)
    except BaseException as exc:  # the Rust decoder raises ValueError, or panics
        _reraise_if_not_library_error(exc)
        raise _refuse(
            Reason.MALFORMED_COLLATERAL, f"collateral does not decode ({exc})", platform
        ) from exc

    # Pinned root: every chain (the three issuer chains and the quote's PCK chain) ends at it.
    windows: list[tuple[str, datetime, datetime]] = []
    root_der: bytes | None = None
    chains = {
        "PCK CRL issuer chain": doc["pck_crl_issuer_chain"].encode(),
        "TCB info issuer chain": doc["tcb_info_issuer_chain"].encode(),
        "QE identity issuer chain": doc["qe_identity_issuer_chain"].encode(),
    }
    if pck_pem:
        chains["quote PCK certificate chain"] = bytes(pck_pem)
    for what, pem in chains.items():
        chain = certs.load_pem_bundle(pem, what, platform.value)
        if not chain:
            raise _refuse(Reason.MALFORMED_COLLATERAL, f"{what} holds no certificate", platform)
        root = chain[-1]
        if certs.fingerprint(root) not in anchors.intel_root_sha256:
            raise _refuse(
                Reason.ROOT_NOT_PINNED,
                f"the {what} ends at {certs.cn(root)!r} (SHA-256 {certs.fingerprint(root).hex()}), "
                "not at a pinned Intel SGX root CA",
                platform,
            )
        root_der = root.public_bytes(Encoding.DER)
        for cert in chain:
            windows.append(
                (
                    f"{what} certificate {certs.cn(cert)!r}",
                    cert.not_valid_before_utc,
                    cert.not_valid_after_utc,
                )
            )
    assert root_der is not None  # at least three chains were checked above
    for what, blob in (("root CA CRL", root_crl), ("PCK CRL", pck_crl)):
        last, nxt, _ = _crl_window(blob, what, platform)
        windows.append((what, last, nxt))
    windows.append(
        (
            f"TCB info (FMSPC {fmspc})",
            _parse_time(tcb_info.get("issueDate"), "TCB info issueDate", platform),
            _parse_time(tcb_info.get("nextUpdate"), "TCB info nextUpdate", platform),
        )
    )
    windows.append(
        (
            "QE identity",
            _parse_time(qe_identity.get("issueDate"), "QE identity issueDate", platform),
            _parse_time(qe_identity.get("nextUpdate"), "QE identity nextUpdate", platform),
        )
    )
    for what, nb, na in windows:
        certs.check_window(what, nb, na, now, platform.value)

    try:
        verified = dcap_qvl.verify_with_root_ca(quote, col, root_der, int(now.timestamp()))
        body = json.loads(verified.to_json())
        status = str(verified.status)
        advisories = tuple(str(a) for a in verified.advisory_ids)
    except BaseException as exc:  # dcap-qvl raises ValueError("Verification failed: ...")
        _reraise_if_not_library_error(exc)
        msg = str(exc).replace("\n", " ")
        reason = _classify(msg)
        hint = (
            " (the platform's TCB is below every level Intel lists for it: out of date)"
            if reason is Reason.TCB_STATUS
            else ""
        )
        raise _refuse(reason, f"dcap-qvl: {msg}{hint}", platform) from exc
    report = body.get("report", {})
    return DcapResult(
        quote=parsed,
        report=report if isinstance(report, dict) else {},
        tcb_status=status,
        advisory_ids=advisories,
        not_before=max(nb for _, nb, _ in windows),
        not_after=min(na for _, _, na in windows),
    )


__all__ = ["MAX_COLLATERAL_BYTES", "MAX_QUOTE_BYTES", "DcapResult", "load_dcap_qvl", "verify_dcap"]

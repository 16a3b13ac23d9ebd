"""Certificate and clock helpers shared by the SEV-SNP and Nitro verifiers.

Pure functions: the verification time is always passed in, never read from the system clock.
Every failure is an :class:`~veil.tee.errors.AttestationError` with the reason to act on.
"""

from __future__ import annotations

import hashlib
import itertools
import warnings
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.utils import CryptographyDeprecationWarning

from veil.errors import ConfigError
from veil.tee.errors import AttestationError, Reason

_T = TypeVar("_T")


def utc(now: datetime) -> datetime:
    """Return ``now`` in UTC; a naive datetime is refused (ambiguous clocks are a bug)."""
    if not isinstance(now, datetime) or now.tzinfo is None or now.utcoffset() is None:
        raise ConfigError(
            f"verification time {now!r} has no time zone: pass an aware datetime, "
            "e.g. datetime.now(UTC) or datetime.fromisoformat('2025-06-20T00:00:00+00:00')"
        )
    return now.astimezone(UTC)


def fmt(t: datetime) -> str:
    """ISO 8601 UTC with a ``Z`` suffix."""
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def check_window(
    what: str, not_before: datetime, not_after: datetime, now: datetime, platform: str
) -> None:
    """Refuse unless ``not_before <= now <= not_after``."""
    if now < not_before:
        raise AttestationError(
            Reason.COLLATERAL_NOT_YET_VALID,
            f"{what} is valid only from {fmt(not_before)}, but the verification time is "
            f"{fmt(now)}: check the clock, or pass the time the evidence was produced",
            platform=platform,
        )
    if now > not_after:
        raise AttestationError(
            Reason.COLLATERAL_EXPIRED,
            f"{what} expired at {fmt(not_after)} (verification time {fmt(now)}): fetch fresh "
            "collateral from the vendor and verify again",
            platform=platform,
        )


def _quietly(fn: Callable[[], _T]) -> _T:
    # Real AMD VCEKs carry a non-positive serial number, which cryptography loads with a
    # deprecation warning; it is vendor data, not an error of ours.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        return fn()


def _parse_fully(cert: x509.Certificate) -> x509.Certificate:
    # cryptography parses fields lazily: touch every field the verifiers read, so that a
    # malformed one fails here (as a refusal) rather than later (as a crash).
    _ = (cert.subject, cert.issuer, cert.not_valid_before_utc, cert.not_valid_after_utc)
    _ = (list(cert.extensions), cert.public_key(), cert.signature, cert.tbs_certificate_bytes)
    _ = (cert.signature_algorithm_oid, cert.signature_algorithm_parameters)
    return cert


def load_der(data: bytes, what: str, platform: str, reason: Reason) -> x509.Certificate:
    """Parse one DER certificate; garbage is refused with ``reason``."""
    try:
        cert = _quietly(lambda: _parse_fully(x509.load_der_x509_certificate(bytes(data))))
    except Exception as exc:  # parser of untrusted input: any failure is a refusal
        raise AttestationError(
            reason, f"{what} is not a DER certificate ({exc})", platform=platform
        ) from exc
    return cert


def load_pem_bundle(data: bytes, what: str, platform: str) -> list[x509.Certificate]:
    """Parse every certificate of a PEM bundle (non-empty)."""
    try:
        certs = _quietly(
            lambda: [_parse_fully(c) for c in x509.load_pem_x509_certificates(bytes(data))]
        )
    except Exception as exc:  # parser of untrusted input
        raise AttestationError(
            Reason.MALFORMED_COLLATERAL,
            f"{what} is not a PEM certificate bundle ({exc})",
            platform=platform,
        ) from exc
    return certs


def fingerprint(cert: x509.Certificate) -> bytes:
    """SHA-256 of the certificate's DER encoding."""
    return hashlib.sha256(cert.public_bytes(Encoding.DER)).digest()


def cn(cert: x509.Certificate) -> str:
    """The subject common name, or ``""``."""
    attrs = cert.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)
    value = attrs[0].value if attrs else ""
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def check_validity(cert: x509.Certificate, what: str, now: datetime, platform: str) -> None:
    """Refuse a certificate outside its validity period at ``now``."""
    check_window(
        f"{what} certificate ({cn(cert)!r})",
        _quietly(lambda: cert.not_valid_before_utc),
        _quietly(lambda: cert.not_valid_after_utc),
        now,
        platform,
    )


def check_issued_by(
    cert: x509.Certificate, issuer: x509.Certificate, what: str, platform: str
) -> None:
    """Refuse unless ``issuer`` is a CA that signed ``cert`` and is named as its issuer."""
    try:
        bc = issuer.extensions.get_extension_for_class(x509.BasicConstraints).value
        is_ca = bc.ca
    except x509.ExtensionNotFound:
        is_ca = False
    except Exception as exc:  # malformed extension in untrusted input
        raise AttestationError(
            Reason.CHAIN_INVALID,
            f"{what}: issuer extensions do not parse ({exc})",
            platform=platform,
        ) from exc
    if not is_ca:
        raise AttestationError(
            Reason.CHAIN_INVALID,
            f"{what}: the issuer {cn(issuer)!r} is not a CA",
            platform=platform,
        )
    try:
        _quietly(lambda: cert.verify_directly_issued_by(issuer))
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise AttestationError(
            Reason.CHAIN_INVALID,
            f"{what}: {cn(cert)!r} is not validly signed by {cn(issuer)!r} "
            f"({exc or 'bad signature'})",
            platform=platform,
        ) from exc


def check_chain(
    chain: Sequence[x509.Certificate],
    pinned: frozenset[bytes],
    now: datetime,
    what: str,
    platform: str,
) -> None:
    """Check a chain given root first: pinned root, each link signed by its parent, all valid now.

    Parameters
    ----------
    chain:
        ``[root, intermediate..., leaf]``.
    pinned:
        Accepted SHA-256 fingerprints of the root's DER.
    """
    if not chain:
        raise AttestationError(
            Reason.MALFORMED_COLLATERAL, f"{what}: empty chain", platform=platform
        )
    root = chain[0]
    if fingerprint(root) not in pinned:
        raise AttestationError(
            Reason.ROOT_NOT_PINNED,
            f"{what}: the chain ends at {cn(root)!r} with SHA-256 {fingerprint(root).hex()}, which "
            "is not a pinned vendor root; if the vendor rotated its root, update the trust anchors",
            platform=platform,
        )
    check_issued_by(root, root, f"{what} root self-signature", platform)
    for parent, child in itertools.pairwise(chain):
        check_issued_by(child, parent, what, platform)
    for i, cert in enumerate(chain):
        check_validity(cert, f"{what} [{i}]", now, platform)


__all__ = [
    "check_chain",
    "check_issued_by",
    "check_validity",
    "check_window",
    "cn",
    "fingerprint",
    "fmt",
    "load_der",
    "load_pem_bundle",
    "utc",
]

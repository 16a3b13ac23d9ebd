"""The simulated enclave's evidence: labelled, measured, signed by a per-deployment dev root.

**Simulated: as trusted as a third party.** The ``sim`` runtime runs the program in a local
subprocess that really measures the code it runs (its own runtime source and the canonical
program bundle) and signs evidence with a development root that the deployment generates. It
exercises the exact attestation, binding and channel path of real hardware, but protects
nothing from whoever runs it: that party holds the root key and can read the process memory.
Its evidence verifies only against a root pinned in :class:`~veil.tee.anchors.TrustAnchors`
(none by default), and the appraisal policy refuses it unless ``allow_simulated`` is set — each
data owner must opt in.

Evidence format: ``b"VEILSIM1" || u32 length || canonical JSON body || Ed25519 signature``
over everything before the signature. Body: ``format``, ``root`` (hex public key),
``measurement`` (hex), ``report_data`` (hex), ``timestamp_ms``.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from veil.errors import ConfigError
from veil.tee import certs
from veil.tee.anchors import TrustAnchors
from veil.tee.binding import encode_fields
from veil.tee.claims import Claims, Platform
from veil.tee.errors import AttestationError, Reason
from veil.tee.program import ProgramBundle

MAGIC = b"VEILSIM1"
FORMAT = "veil/sim-evidence/v1"
MEASUREMENT_DOMAIN = b"veil/sim/measurement/v1"
ASSURANCE = "simulated: as trusted as a third party"
MAX_EVIDENCE_BYTES = 4096
_P = Platform.SIM.value


@dataclass(frozen=True)
class SimRoot:
    """A per-deployment development root that signs simulated evidence.

    Whoever holds it can forge evidence: it is a development convenience, never a trust anchor
    for real data beyond what the party running the simulation is trusted with.
    """

    private_key: Ed25519PrivateKey

    @classmethod
    def generate(cls) -> SimRoot:
        """A fresh root (Ed25519)."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_private_bytes(cls, raw: bytes) -> SimRoot:
        """Load a root from its raw 32-byte private key."""
        try:
            return cls(Ed25519PrivateKey.from_private_bytes(bytes(raw)))
        except ValueError as exc:
            raise ConfigError("a sim root private key is 32 raw bytes") from exc

    def private_bytes(self) -> bytes:
        """The raw 32-byte private key (handed to the simulated enclave process only)."""
        return self.private_key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )

    @property
    def public_key(self) -> bytes:
        """The raw 32-byte public key: what owners pin in ``TrustAnchors.sim_root_public_keys``."""
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    def save(self, path: Path) -> None:
        """Write the private key (PEM, PKCS#8) readable by the owner only."""
        pem = self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)

    @classmethod
    def load(cls, path: Path) -> SimRoot:
        """Read a root written by :meth:`save`."""
        try:
            key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as exc:
            raise ConfigError(f"cannot load the sim root key {str(path)!r}: {exc}") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigError(f"{str(path)!r} is not an Ed25519 sim root key")
        return cls(key)


def runtime_path() -> Path:
    """The source file the simulated enclave process runs (it measures itself from it)."""
    return Path(__file__).with_name("sim_worker.py")


def sim_measurement(runtime_source: bytes, bundle_bytes: bytes) -> bytes:
    """SHA-384 of the runtime's source and the program's canonical bundle (48 bytes)."""
    runtime = runtime_source.replace(b"\r\n", b"\n")
    return hashlib.sha384(
        MEASUREMENT_DOMAIN + encode_fields(hashlib.sha256(runtime).digest(), bundle_bytes)
    ).digest()


def expected_sim_measurement(bundle: ProgramBundle) -> bytes:
    """The measurement a simulated enclave running ``bundle`` with this veil reports."""
    return sim_measurement(runtime_path().read_bytes(), bundle.canonical_bytes())


def sign_sim_evidence(
    root: SimRoot, *, measurement: bytes, report_data: bytes, timestamp_ms: int
) -> bytes:
    """Produce simulated evidence (used inside the simulated enclave process)."""
    body = json.dumps(
        {
            "format": FORMAT,
            "root": root.public_key.hex(),
            "measurement": measurement.hex(),
            "report_data": report_data.hex(),
            "timestamp_ms": int(timestamp_ms),
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    signed = MAGIC + len(body).to_bytes(4, "big") + body
    return signed + root.private_key.sign(signed)


def _malformed(detail: str) -> AttestationError:
    return AttestationError(Reason.MALFORMED_EVIDENCE, detail, platform=_P)


def _hex_field(body: dict[str, Any], key: str, size: int) -> bytes:
    value = body.get(key)
    try:
        raw = bytes.fromhex(value) if isinstance(value, str) else b""
    except ValueError:
        raw = b""
    if len(raw) != size:
        raise _malformed(f"simulated evidence field {key!r} must be {size} bytes of hex")
    return raw


def verify_sim(
    evidence: bytes,
    collateral: bytes | str | None = None,
    *,
    now: datetime,
    anchors: TrustAnchors | None = None,
) -> Claims:
    """Verify simulated evidence against the pinned development roots.

    Raises
    ------
    AttestationError
        Malformed, signed by an unpinned root, or with a bad signature.
    """
    if collateral is not None:
        raise ConfigError("simulated evidence carries no collateral")
    certs.utc(now)
    anchors = anchors or TrustAnchors()
    ev = bytes(evidence)
    if not len(MAGIC) + 4 + 64 < len(ev) <= MAX_EVIDENCE_BYTES or not ev.startswith(MAGIC):
        raise _malformed("not veil simulated evidence (bad magic or size)")
    n = int.from_bytes(ev[8:12], "big")
    if len(ev) != 12 + n + 64:
        raise _malformed("simulated evidence length field does not match")
    signed, signature = ev[: 12 + n], ev[12 + n :]
    try:
        body = json.loads(ev[12 : 12 + n])
    except ValueError as exc:
        raise _malformed("simulated evidence body is not JSON") from exc
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise _malformed(f"simulated evidence body must be a {FORMAT} object")
    root = _hex_field(body, "root", 32)
    if root not in anchors.sim_root_public_keys:
        raise AttestationError(
            Reason.ROOT_NOT_PINNED,
            f"simulated evidence signed by development root {root.hex()}, which this relying "
            "party has not pinned (TrustAnchors.sim_root_public_keys)",
            platform=_P,
        )
    try:
        Ed25519PublicKey.from_public_bytes(root).verify(signature, signed)
    except (InvalidSignature, ValueError):
        raise AttestationError(
            Reason.SIGNATURE_INVALID, "simulated evidence signature does not verify", platform=_P
        ) from None
    ts = body.get("timestamp_ms")
    if not isinstance(ts, int) or isinstance(ts, bool) or not 0 < ts < 2**53:
        raise _malformed("simulated evidence timestamp_ms must be a positive integer")
    return Claims(
        platform=Platform.SIM,
        measurement=_hex_field(body, "measurement", 48),
        report_data=_hex_field(body, "report_data", 64),
        debug=False,
        signer=root,
        evidence_time=datetime.fromtimestamp(ts / 1000, tz=UTC),
        extra={"assurance": ASSURANCE},
    )


__all__ = [
    "ASSURANCE",
    "SimRoot",
    "expected_sim_measurement",
    "runtime_path",
    "sign_sim_evidence",
    "sim_measurement",
    "verify_sim",
]

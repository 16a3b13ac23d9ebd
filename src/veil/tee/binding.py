"""Binding evidence to one session, one verifier nonce, one enclave key and one program.

The enclave puts ``report_data(session_id, nonce, enclave_public_key, program_hash)`` into the
report data of its evidence (SGX/TDX/SEV-SNP ``REPORTDATA``, Nitro ``user_data``). A relying
party that verified the evidence recomputes it from values it knows — its own fresh nonce, the
session id, the program it agreed to run and the public key it was handed — and accepts the key
only if they match. This defeats:

- replay: old evidence carries an old nonce;
- key substitution: a host that swaps in its own public key changes the hash;
- cross-session use: evidence for session A does not bind session B;
- program substitution: the program hash is bound next to the measurement of the runtime.

The hash is SHA-512 over a domain tag and length-prefixed fields, exactly 64 bytes: the size of
the report data on every platform.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass

from veil.errors import ConfigError
from veil.tee.claims import Platform
from veil.tee.errors import AttestationError, Reason
from veil.tee.policy import Verdict

DOMAIN = b"veil/tee/report-data/v1"
NONCE_MIN_BYTES = 16
X25519_KEY_BYTES = 32
PROGRAM_HASH_BYTES = 32


def encode_fields(*fields: bytes) -> bytes:
    """Unambiguous concatenation: each field prefixed by its 4-byte big-endian length."""
    return b"".join(len(f).to_bytes(4, "big") + f for f in fields)


def new_nonce() -> bytes:
    """A fresh 32-byte verifier nonce (from the OS CSPRNG)."""
    return os.urandom(32)


def _session_bytes(session_id: bytes | str) -> bytes:
    sid = session_id.encode() if isinstance(session_id, str) else bytes(session_id)
    if not sid:
        raise ConfigError("the session id must not be empty")
    return sid


def report_data(
    session_id: bytes | str, nonce: bytes, enclave_public_key: bytes, program_hash: bytes
) -> bytes:
    """The 64-byte report data binding a session, a nonce, an enclave key and a program.

    Parameters
    ----------
    session_id:
        Identifies the job session (shared by all parties).
    nonce:
        The relying party's fresh nonce (at least 16 bytes).
    enclave_public_key:
        The enclave's ephemeral X25519 public key (32 bytes, raw).
    program_hash:
        :meth:`veil.tee.program.ProgramBundle.digest` of the program to run (32 bytes).
    """
    if len(nonce) < NONCE_MIN_BYTES:
        raise ConfigError(f"the verifier nonce must be at least {NONCE_MIN_BYTES} random bytes")
    if len(enclave_public_key) != X25519_KEY_BYTES:
        raise ConfigError("the enclave public key must be a raw 32-byte X25519 key")
    if len(program_hash) != PROGRAM_HASH_BYTES:
        raise ConfigError("the program hash must be 32 bytes (SHA-256)")
    return hashlib.sha512(
        DOMAIN
        + encode_fields(
            _session_bytes(session_id), bytes(nonce), bytes(enclave_public_key), bytes(program_hash)
        )
    ).digest()


@dataclass(frozen=True)
class AttestedKey:
    """An enclave public key that verified, accepted evidence binds to this session and program.

    Only :func:`bind_key` makes one; data owners encrypt to it with :func:`veil.tee.channel.seal`.
    """

    public_key: bytes
    session_id: bytes
    program_hash: bytes
    verdict: Verdict

    @property
    def measurement(self) -> bytes:
        """The accepted code measurement of the enclave holding the key."""
        return self.verdict.claims.measurement

    @property
    def platform(self) -> Platform:
        """The platform whose evidence vouches for the key."""
        return self.verdict.claims.platform


def bind_key(
    verdict: Verdict,
    *,
    session_id: bytes | str,
    nonce: bytes,
    enclave_public_key: bytes,
    program_hash: bytes,
) -> AttestedKey:
    """Accept ``enclave_public_key`` only if the accepted evidence binds it to this session.

    Raises
    ------
    AttestationError
        ``Reason.REPORT_DATA_MISMATCH`` if the evidence's report data is not
        ``report_data(session_id, nonce, enclave_public_key, program_hash)``.
    """
    expected = report_data(session_id, nonce, enclave_public_key, program_hash)
    if not hmac.compare_digest(expected, bytes(verdict.claims.report_data)):
        raise AttestationError(
            Reason.REPORT_DATA_MISMATCH,
            "the evidence does not bind this session, nonce, enclave key and program: it was "
            "replayed from another session or the key was substituted; request fresh evidence",
            platform=verdict.claims.platform.value,
        )
    return AttestedKey(
        public_key=bytes(enclave_public_key),
        session_id=_session_bytes(session_id),
        program_hash=bytes(program_hash),
        verdict=verdict,
    )


__all__ = [
    "DOMAIN",
    "NONCE_MIN_BYTES",
    "AttestedKey",
    "bind_key",
    "encode_fields",
    "new_nonce",
    "report_data",
]

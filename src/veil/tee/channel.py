"""Owners encrypt their inputs to an attested enclave key.

Scheme (ECIES-style, one ephemeral key per sealed input): the owner draws an ephemeral X25519
key, derives ``k = HKDF-SHA256(X25519(e, enclave_pk), salt=H(session), info=context)`` and
encrypts with AES-256-GCM under ``k``, the AAD being the same context: domain, session id, job
id, input name, owner, program hash, enclave measurement, enclave key and ephemeral key. The
enclave recomputes the context from *its own* session, program and measurement, so:

- a ciphertext for another session, job, input, owner, program or measurement does not open;
- a ciphertext for another enclave key does not open (key substitution);
- the same ciphertext opened twice by one :class:`EnclaveInbox` is refused (replay).

Results travel back with :func:`seal_result` / :func:`open_result`: the key mixes an ephemeral
and the enclave's *attested static* X25519 key with the recipient's key, so only the recipient
can open a result and only the holder of the attested key can have produced it.

Threat model: the host relays ciphertexts and may drop, reorder, replay or alter them; it
learns their lengths. Confidentiality rests on the attestation that produced the
:class:`~veil.tee.binding.AttestedKey` (only code with an accepted measurement holds the private
key) and on X25519/AES-GCM.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from veil.tee.binding import AttestedKey, encode_fields
from veil.tee.errors import ChannelError

DOMAIN = b"veil/tee/channel/v1"
RESULT_DOMAIN = b"veil/tee/result/v1"
VERSION = 1
_HEADER = 1 + 32 + 12
MAX_SEALED_BYTES = 1 << 31


def raw_public_key(key: X25519PrivateKey | X25519PublicKey) -> bytes:
    """The raw 32-byte encoding of an X25519 public key."""
    pub = key.public_key() if isinstance(key, X25519PrivateKey) else key
    return pub.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _context(
    session_id: bytes,
    job_id: str,
    input_name: str,
    owner: str,
    program_hash: bytes,
    measurement: bytes,
    enclave_pk: bytes,
    ephemeral_pk: bytes,
) -> bytes:
    return DOMAIN + encode_fields(
        session_id,
        job_id.encode(),
        input_name.encode(),
        owner.encode(),
        program_hash,
        measurement,
        enclave_pk,
        ephemeral_pk,
    )


def _key(shared: bytes, session_id: bytes, context: bytes) -> bytes:
    salt = hashlib.sha256(DOMAIN + session_id).digest()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=context).derive(shared)


def seal(key: AttestedKey, plaintext: bytes, *, job_id: str, input_name: str, owner: str) -> bytes:
    """Encrypt ``plaintext`` so that only the attested enclave, in this session, can open it.

    Parameters
    ----------
    key:
        The enclave key accepted by :func:`veil.tee.binding.bind_key`.
    plaintext:
        The owner's input bytes (e.g. from :func:`veil.core.wire.encode_value`).
    job_id, input_name, owner:
        What this input is, bound into the AAD.

    Returns
    -------
    bytes
        ``version || ephemeral public key || GCM nonce || ciphertext+tag``.
    """
    eph = X25519PrivateKey.generate()
    eph_pk = raw_public_key(eph)
    try:
        shared = eph.exchange(X25519PublicKey.from_public_bytes(key.public_key))
    except ValueError as exc:
        raise ChannelError(f"the enclave key is not a usable X25519 key ({exc})") from exc
    ctx = _context(
        key.session_id,
        job_id,
        input_name,
        owner,
        key.program_hash,
        key.measurement,
        key.public_key,
        eph_pk,
    )
    nonce = os.urandom(12)
    ct = AESGCM(_key(shared, key.session_id, ctx)).encrypt(nonce, bytes(plaintext), ctx)
    return bytes([VERSION]) + eph_pk + nonce + ct


@dataclass
class EnclaveInbox:
    """The enclave side: opens inputs sealed to its key in its session, each at most once.

    Parameters
    ----------
    private_key:
        The enclave's ephemeral X25519 key (never leaves the enclave).
    session_id, program_hash, measurement:
        The enclave's own view of the context, bound into every AAD.
    """

    private_key: X25519PrivateKey
    session_id: bytes
    program_hash: bytes
    measurement: bytes
    _seen: set[bytes] = field(default_factory=set, init=False, repr=False)

    def open(self, sealed: bytes, *, job_id: str, input_name: str, owner: str) -> bytes:
        """Decrypt one sealed input; refuse anything not sealed for this exact context.

        Raises
        ------
        ChannelError
            Malformed, for another context or key, tampered, or already opened (replay).
        """
        sealed = bytes(sealed)
        if len(sealed) < _HEADER + 16 or sealed[0] != VERSION or len(sealed) > MAX_SEALED_BYTES:
            raise ChannelError(f"sealed input from {owner!r} for {input_name!r} is malformed")
        eph_pk, nonce, ct = sealed[1:33], sealed[33:45], sealed[45:]
        if eph_pk in self._seen:
            raise ChannelError(
                f"sealed input from {owner!r} for {input_name!r} was already opened: replay refused"
            )
        enclave_pk = raw_public_key(self.private_key)
        ctx = _context(
            self.session_id,
            job_id,
            input_name,
            owner,
            self.program_hash,
            self.measurement,
            enclave_pk,
            eph_pk,
        )
        try:
            shared = self.private_key.exchange(X25519PublicKey.from_public_bytes(eph_pk))
            plaintext = AESGCM(_key(shared, self.session_id, ctx)).decrypt(nonce, ct, ctx)
        except (InvalidTag, ValueError) as exc:
            raise ChannelError(
                f"sealed input from {owner!r} for {input_name!r} does not open in this session, "
                "job, program and enclave (wrong context, wrong key, or tampered)"
            ) from exc
        self._seen.add(eph_pk)
        return plaintext


def _result_context(
    session_id: bytes,
    job_id: str,
    output_name: str,
    recipient: str,
    program_hash: bytes,
    measurement: bytes,
    enclave_pk: bytes,
    recipient_pk: bytes,
    ephemeral_pk: bytes,
) -> bytes:
    return RESULT_DOMAIN + encode_fields(
        session_id,
        job_id.encode(),
        output_name.encode(),
        recipient.encode(),
        program_hash,
        measurement,
        enclave_pk,
        recipient_pk,
        ephemeral_pk,
    )


def seal_result(
    enclave_key: X25519PrivateKey,
    recipient_public_key: bytes,
    plaintext: bytes,
    *,
    session_id: bytes,
    job_id: str,
    output_name: str,
    recipient: str,
    program_hash: bytes,
    measurement: bytes,
) -> bytes:
    """Enclave side: encrypt a result for one recipient, authenticated by the attested key.

    Returns
    -------
    bytes
        ``version || ephemeral public key || GCM nonce || ciphertext+tag``.
    """
    eph = X25519PrivateKey.generate()
    eph_pk = raw_public_key(eph)
    try:
        peer = X25519PublicKey.from_public_bytes(bytes(recipient_public_key))
        shared = eph.exchange(peer) + enclave_key.exchange(peer)
    except ValueError as exc:
        raise ChannelError(f"recipient {recipient!r} has no usable X25519 key ({exc})") from exc
    ctx = _result_context(
        session_id,
        job_id,
        output_name,
        recipient,
        program_hash,
        measurement,
        raw_public_key(enclave_key),
        bytes(recipient_public_key),
        eph_pk,
    )
    nonce = os.urandom(12)
    ct = AESGCM(_key(shared, session_id, ctx)).encrypt(nonce, bytes(plaintext), ctx)
    return bytes([VERSION]) + eph_pk + nonce + ct


def open_result(
    recipient_key: X25519PrivateKey,
    sealed: bytes,
    *,
    key: AttestedKey,
    job_id: str,
    output_name: str,
    recipient: str,
) -> bytes:
    """Recipient side: open a result sealed by the enclave holding the attested ``key``.

    Raises
    ------
    ChannelError
        Malformed, for another recipient or context, or not from the attested enclave.
    """
    sealed = bytes(sealed)
    if len(sealed) < _HEADER + 16 or sealed[0] != VERSION or len(sealed) > MAX_SEALED_BYTES:
        raise ChannelError(f"result {output_name!r} for {recipient!r} is malformed")
    eph_pk, nonce, ct = sealed[1:33], sealed[33:45], sealed[45:]
    ctx = _result_context(
        key.session_id,
        job_id,
        output_name,
        recipient,
        key.program_hash,
        key.measurement,
        key.public_key,
        raw_public_key(recipient_key),
        eph_pk,
    )
    try:
        shared = recipient_key.exchange(X25519PublicKey.from_public_bytes(eph_pk))
        shared += recipient_key.exchange(X25519PublicKey.from_public_bytes(key.public_key))
        return AESGCM(_key(shared, key.session_id, ctx)).decrypt(nonce, ct, ctx)
    except (InvalidTag, ValueError) as exc:
        raise ChannelError(
            f"result {output_name!r} for {recipient!r} does not open: not from the attested "
            "enclave, or for another session, job, output or recipient"
        ) from exc


__all__ = [
    "DOMAIN",
    "RESULT_DOMAIN",
    "EnclaveInbox",
    "open_result",
    "raw_public_key",
    "seal",
    "seal_result",
]

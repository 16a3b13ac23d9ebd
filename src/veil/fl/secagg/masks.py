"""Key agreement, key derivation and AES-CTR mask expansion for secure aggregation.

* :func:`agree` — X25519 Diffie–Hellman followed by HKDF-SHA256 with a context string, so every
  use (pairwise mask, share encryption in each direction) gets an independent 32-byte key.
* :func:`expand_mask` — AES-256 in counter mode keyed by a 32-byte seed, its keystream read as
  ring elements (``uint32``/``uint64``). The keystream of a uniformly random key is
  computationally indistinguishable from uniform, so a mask hides the value it is added to.
* :func:`seal` / :func:`open_sealed` — AES-256-GCM with a random 96-bit nonce and associated
  data, for the Shamir shares that travel through the aggregator.

All inputs from peers are validated; a bad public key raises :class:`~veil.errors.PeerError`
naming the peer.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from typing import Any

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from veil.errors import PeerError

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16


def new_private_key(randbytes: Callable[[int], bytes] = os.urandom) -> X25519PrivateKey:
    """A fresh X25519 private key from ``randbytes`` (``os.urandom`` unless testing)."""
    return X25519PrivateKey.from_private_bytes(randbytes(KEY_BYTES))


def public_bytes(sk: X25519PrivateKey) -> bytes:
    """The 32-byte raw public key of ``sk``."""
    return sk.public_key().public_bytes_raw()


def private_bytes(sk: X25519PrivateKey) -> bytes:
    """The 32-byte raw private key of ``sk`` (what gets Shamir-shared)."""
    return sk.private_bytes_raw()


def exchange(sk: X25519PrivateKey, peer_pk: bytes, *, peer: str) -> bytes:
    """Raw X25519 shared secret with ``peer``; raises PeerError naming it on a bad key."""
    if len(peer_pk) != KEY_BYTES:
        raise PeerError(peer, f"public key is {len(peer_pk)} bytes, expected {KEY_BYTES}")
    try:
        return sk.exchange(X25519PublicKey.from_public_bytes(peer_pk))
    except ValueError as exc:  # low-order point: all-zero shared secret
        raise PeerError(peer, f"invalid X25519 public key ({exc})") from None


def derive(shared: bytes, info: bytes) -> bytes:
    """HKDF-SHA256 of an X25519 shared secret with context ``info`` -> 32-byte key."""
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=info).derive(shared)


def agree(sk: X25519PrivateKey, peer_pk: bytes, info: bytes, *, peer: str) -> bytes:
    """``derive(exchange(sk, peer_pk), info)``: a 32-byte key bound to ``info``."""
    return derive(exchange(sk, peer_pk, peer=peer), info)


def expand_mask(seed: bytes, count: int, dtype: np.dtype[Any], domain: bytes) -> np.ndarray:
    """``count`` ring elements of ``dtype`` from AES-256-CTR keyed by ``seed``.

    ``domain`` selects the initial counter block (SHA-256 prefix), separating self masks from
    pairwise masks even if two seeds ever collided.
    """
    if len(seed) != KEY_BYTES:
        raise ValueError(f"mask seed must be {KEY_BYTES} bytes")
    nonce = hashlib.sha256(domain).digest()[:16]
    enc = Cipher(algorithms.AES(seed), modes.CTR(nonce)).encryptor()
    stream = enc.update(bytes(count * np.dtype(dtype).itemsize)) + enc.finalize()
    return np.frombuffer(stream, dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype, copy=False)


def seal(
    key: bytes, plaintext: bytes, aad: bytes, randbytes: Callable[[int], bytes] = os.urandom
) -> bytes:
    """AES-256-GCM encrypt: ``nonce || ciphertext || tag``."""
    nonce = randbytes(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def open_sealed(key: bytes, blob: bytes, aad: bytes, *, sender: str) -> bytes:
    """Decrypt and authenticate a :func:`seal` blob; raise PeerError naming ``sender`` if bad."""
    if len(blob) < NONCE_BYTES + TAG_BYTES:
        raise PeerError(sender, "encrypted share is truncated")
    try:
        return AESGCM(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)
    except InvalidTag:
        raise PeerError(
            sender,
            "encrypted share failed authentication (AES-GCM tag mismatch): it was tampered with "
            "by the aggregator or the sender; the round is refused",
        ) from None

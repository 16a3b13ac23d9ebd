"""X25519 as a commutative masking function, through ``cryptography`` (OpenSSL). No curve code here.

ECDH-PSI needs a map ``H`` from ids to group elements and a secret exponent per party such that
masking commutes: ``a·(b·H(x)) = b·(a·H(x))``. We use the X25519 function of RFC 7748 as the
scalar multiplication, on Montgomery u-coordinates:

* ``H(x)`` is ``SHA-256(domain ‖ salt ‖ digest(x))`` with bit 255 cleared: a uniformly random
  255-bit u-coordinate. Such a u lies on Curve25519 or on its quadratic twist (about half each).
  Curve25519 is *twist-secure*: the curve has order 8·ℓ and the twist 4·ℓ' with ℓ, ℓ' prime near
  2^252, so CDH/DDH are believed hard on both, and we need no hash-to-curve (Elligator) step.
* A party's key is 32 random bytes; X25519 clamps it to ``k = 2^254 + 8·m``. Clamped scalars are
  multiples of 8, so ``k·P`` kills the small-order component of ``P`` and lands in the prime-order
  subgroup of the curve (or twist), where scalars multiply: ``X25519(a, X25519(b, u)) =
  X25519(b, X25519(a, u))`` for every u that is not of small order. The u-coordinate ladder is
  sign-agnostic (``x(P) = x(-P)``), which does not matter for equality tests.
* Two ids collide only if their u values differ by a torsion point or coincide: probability
  about ``n² · 8 / 2^255``, negligible.
* X25519 refuses inputs of small order (the shared secret would be all zeros); a peer that sends
  such a point is reported as a :class:`~veil.errors.ProtocolError`.

Security: under the (gap-)DDH assumption on Curve25519 and its twist, and modelling SHA-256 as a
random oracle, ``{k·H(x)}`` for a fresh secret ``k`` is indistinguishable from random points to
anyone not holding ``k`` — the standard Meadows/Huberman–Franklin–Hogg semi-honest ECDH-PSI
argument. The salt binds every hash to one run, so a dictionary of hashed ids cannot be reused.

Two vetted implementations of the same function compute it (:mod:`veil.psi._kernel`; results
are bit-identical, tests check it): ``cryptography`` (OpenSSL) everywhere, and Intel's
``crypto_mb`` ``mbx_x25519_mb8`` (eight points per call, AVX-512 IFMA) where available. Measured
per multiplication on this machine (2-vCPU AMD EPYC with AVX-512 IFMA, quiet): OpenSSL 25 µs
(``openssl speed ecdhx25519``: 24 µs), crypto_mb 4–7 µs; for comparison libsodium's X25519 28 µs,
ristretto255 (libsodium) 38 µs plus 10 µs per hash-to-group, secp256k1 (coincurve) 26 µs, P-256
(OpenSSL) 31 µs. OpenSSL holds the GIL during the call (two threads: 1.18× one thread), so
parallelism uses processes (:mod:`veil.psi.parallel`).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from veil.errors import ProtocolError
from veil.psi import _kernel

#: Bytes of a point (u-coordinate) and of a secret key.
POINT_BYTES = _kernel.POINT_BYTES
#: Domain separation for the id-to-point hash; part of the protocol: never change for v1.
HASH_DOMAIN = _kernel.HASH_DOMAIN


def new_key() -> bytes:
    """A fresh secret masking key (32 random bytes from the OS CSPRNG)."""
    return os.urandom(32)


def _rows(data: bytes, width: int) -> np.ndarray[Any, Any]:
    if not data:
        return np.empty((0, width), dtype=np.uint8)
    return np.frombuffer(data, dtype=np.uint8).reshape(-1, width).copy()


def hash_to_points(salt: bytes, digests: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Map id digests (``(k, d)`` uint8) to u-coordinates ``(k, 32)`` uint8 under ``salt``.

    ``u = SHA-256(HASH_DOMAIN ‖ len(salt) ‖ salt ‖ digest)`` with bit 255 cleared (RFC 7748 ignores
    it anyway; clearing it keeps the map canonical).
    """
    d = np.ascontiguousarray(digests, dtype=np.uint8)
    return _rows(_kernel.hash_to_u(salt, d.tobytes(), d.shape[1]), POINT_BYTES)


def check_points(points: np.ndarray[Any, Any], out_bytes: int) -> np.ndarray[Any, Any]:
    """``points`` as a contiguous ``(k, 32)`` uint8 array; ``out_bytes`` in 1..32."""
    p = np.ascontiguousarray(points, dtype=np.uint8)
    if p.ndim != 2 or p.shape[1] != POINT_BYTES:
        raise ProtocolError(f"points must have shape (k, {POINT_BYTES}), got {p.shape}")
    if not 0 < out_bytes <= POINT_BYTES:
        raise ProtocolError(f"out_bytes must be in 1..{POINT_BYTES}, got {out_bytes}")
    return p


def small_order_error(index: int) -> ProtocolError:
    """The error for a small-order point (only a deviating peer can send one)."""
    return ProtocolError(
        f"point {index} of a batch is of small order (all-zero X25519 result): "
        "the sender deviates from the protocol"
    )


def mask(
    key: bytes,
    points: np.ndarray[Any, Any],
    out_bytes: int = POINT_BYTES,
    kernel: _kernel.Kernel | None = None,
) -> np.ndarray[Any, Any]:
    """``X25519(key, u)`` for every row ``u`` of ``points`` (``(k, 32)`` uint8).

    Returns ``(k, out_bytes)`` uint8: the first ``out_bytes`` bytes of each result (32 for a point
    that is masked again, fewer for a final comparison value).

    Raises
    ------
    ProtocolError
        If a row is a small-order point.
    """
    p = check_points(points, out_bytes)
    k = kernel or _kernel.OpenSSLKernel()
    try:
        return _rows(k.mask(key, p.tobytes(), out_bytes), out_bytes)
    except _kernel.SmallOrderPoint as exc:
        raise small_order_error(exc.index) from None


def hash_and_mask(
    key: bytes,
    salt: bytes,
    digests: np.ndarray[Any, Any],
    out_bytes: int = POINT_BYTES,
    kernel: _kernel.Kernel | None = None,
) -> np.ndarray[Any, Any]:
    """``mask(key, hash_to_points(salt, digests))``: a party's own singly-masked points."""
    d = np.ascontiguousarray(digests, dtype=np.uint8)
    k = kernel or _kernel.OpenSSLKernel()
    op = _kernel.OP_HASH_AND_MASK
    try:
        raw = _kernel.run(k, op, key, salt, d.tobytes(), d.shape[1], out_bytes)
    except _kernel.SmallOrderPoint as exc:
        raise small_order_error(exc.index) from None
    return _rows(raw, out_bytes)

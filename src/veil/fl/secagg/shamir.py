"""Shamir t-of-n secret sharing over the prime field GF(2^31 - 1), vectorised with numpy.

A secret is a vector of field elements; every element is shared with its own random polynomial
of degree ``t - 1`` and the same evaluation points, so one call shares a whole vector (or a
batch of byte strings, see :func:`bytes_to_field`). Products of two field elements are below
2^62, so all arithmetic runs in numpy ``uint64`` without overflow.

Security (information-theoretic): any ``t - 1`` shares are uniformly distributed and independent
of the secret, because for fixed non-zero distinct points the map from the ``t - 1`` random
coefficients to the ``t - 1`` share values is a bijection (a Vandermonde system). Any ``t``
shares determine the secret by Lagrange interpolation at 0. Randomness comes from a
caller-supplied ``randbytes`` (``os.urandom`` by default) with exact rejection sampling, so the
coefficients are exactly uniform. Nothing here checks that shares are honest: a wrong share gives
a wrong secret, which callers detect with a commitment (see :mod:`veil.fl.secagg.client`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from veil.errors import ProtocolError

#: The field modulus, the Mersenne prime 2^31 - 1.
PRIME = (1 << 31) - 1
#: Bits of a secret byte string carried by one field element (30 < 31, so every chunk < PRIME).
CHUNK_BITS = 30

RandBytes = Callable[[int], bytes]
FieldArray = np.ndarray[Any, np.dtype[np.uint64]]


def random_field(shape: tuple[int, ...], randbytes: RandBytes = os.urandom) -> FieldArray:
    """Uniform field elements of ``shape`` (31-bit draws, rejecting the single value ``PRIME``)."""
    count = int(np.prod(shape, dtype=np.int64))
    out = np.empty(count, dtype=np.uint64)
    filled = 0
    while filled < count:
        need = count - filled
        raw = np.frombuffer(randbytes(4 * need), dtype="<u4").astype(np.uint64) & np.uint64(PRIME)
        ok = raw[raw < PRIME]
        out[filled : filled + ok.size] = ok
        filled += ok.size
    return out.reshape(shape)


def _check_points(xs: Sequence[int]) -> list[int]:
    pts = [int(x) for x in xs]
    if any(not 0 < x < PRIME for x in pts):
        raise ProtocolError(f"Shamir points must lie in 1..{PRIME - 1}; got {pts}")
    if len(set(pts)) != len(pts):
        raise ProtocolError(f"Shamir points must be distinct; got {pts}")
    return pts


def split(
    secret: FieldArray, xs: Sequence[int], t: int, randbytes: RandBytes = os.urandom
) -> FieldArray:
    """Share ``secret`` (field elements, any shape) at points ``xs`` with threshold ``t``.

    Returns an array of shape ``(len(xs), *secret.shape)``: row ``i`` is the share for ``xs[i]``.
    """
    pts = _check_points(xs)
    if not 1 <= t <= len(pts):
        raise ProtocolError(f"threshold {t} must be between 1 and the number of shares {len(pts)}")
    s = np.asarray(secret, dtype=np.uint64)
    if np.any(s >= PRIME):
        raise ProtocolError("secret has elements outside the field")
    coeffs = random_field((t - 1, *s.shape), randbytes)
    x = np.asarray(pts, dtype=np.uint64).reshape((len(pts),) + (1,) * s.ndim)
    p = np.uint64(PRIME)
    acc = np.zeros((len(pts), *s.shape), dtype=np.uint64)
    for c in coeffs[::-1]:  # Horner: acc = (acc * x + c) mod p, highest degree first
        acc = (acc * x + c) % p
    return (acc * x + s) % p


def lagrange_at_zero(xs: Sequence[int]) -> list[int]:
    """Lagrange coefficients ``l_j`` with ``f(0) = sum_j l_j f(x_j)`` for distinct non-zero xs."""
    pts = _check_points(xs)
    lam = []
    for j, xj in enumerate(pts):
        num, den = 1, 1
        for m, xm in enumerate(pts):
            if m != j:
                num = num * xm % PRIME
                den = den * (xm - xj) % PRIME
        lam.append(num * pow(den, -1, PRIME) % PRIME)
    return lam


def reconstruct(xs: Sequence[int], shares: FieldArray) -> FieldArray:
    """Interpolate the secret from shares at points ``xs`` (``shares[i]`` belongs to ``xs[i]``).

    With at least ``t`` honest shares this returns the secret; with fewer it returns an
    unrelated field vector (Shamir cannot tell).
    """
    sh = np.asarray(shares)
    if sh.shape[:1] != (len(xs),):
        raise ProtocolError(f"{len(xs)} points but shares of shape {sh.shape}")
    if sh.dtype != np.uint64 or np.any(sh >= PRIME):
        raise ProtocolError("shares must be uint64 field elements below 2^31 - 1")
    p = np.uint64(PRIME)
    out = np.zeros(sh.shape[1:], dtype=np.uint64)
    for lam, row in zip(lagrange_at_zero(xs), sh, strict=True):
        out = (out + np.uint64(lam) * row % p) % p
    return out


def field_len(nbytes: int) -> int:
    """Number of field elements :func:`bytes_to_field` uses for ``nbytes`` bytes."""
    return -(-8 * nbytes // CHUNK_BITS)


def bytes_to_field(data: bytes) -> FieldArray:
    """Split ``data`` into little-endian 30-bit chunks (each a field element)."""
    value = int.from_bytes(data, "little")
    mask = (1 << CHUNK_BITS) - 1
    return np.array(
        [(value >> (CHUNK_BITS * i)) & mask for i in range(field_len(len(data)))], dtype=np.uint64
    )


def field_to_bytes(elems: FieldArray, nbytes: int) -> bytes:
    """Inverse of :func:`bytes_to_field`; refuses chunks that do not fit ``nbytes`` bytes."""
    arr = np.asarray(elems, dtype=np.uint64)
    if arr.shape != (field_len(nbytes),) or np.any(arr >> np.uint64(CHUNK_BITS)):
        raise ProtocolError("field elements do not encode a byte string of the expected length")
    value = 0
    for i, c in enumerate(arr.tolist()):
        value |= int(c) << (CHUNK_BITS * i)
    if value >> (8 * nbytes):
        raise ProtocolError("field elements encode more bytes than expected")
    return value.to_bytes(nbytes, "little")

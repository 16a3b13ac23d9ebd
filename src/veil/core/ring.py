"""The ring Z_2^64 on numpy ``uint64``: wrap-around arithmetic is the ring's arithmetic.

All functions are pure and party-free. Signed values are represented in two's complement, so a
``uint64`` array viewed as ``int64`` gives the signed representative in [-2^63, 2^63).
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Number of bits of the ring.
RING_BITS = 64

#: numpy dtype of ring elements.
RING_DTYPE = np.dtype(np.uint64)

Ring = np.ndarray[Any, np.dtype[np.uint64]]


def zeros(shape: tuple[int, ...]) -> Ring:
    """An all-zero ring array of ``shape``."""
    return np.zeros(shape, dtype=np.uint64)


def from_signed(x: np.ndarray[Any, Any] | int) -> Ring:
    """Map signed integers (``int64``) to ring elements (two's complement)."""
    return np.asarray(x, dtype=np.int64).view(np.uint64)


def to_signed(x: Ring) -> np.ndarray[Any, np.dtype[np.int64]]:
    """Signed representative in [-2^63, 2^63) of each ring element (a view, no copy)."""
    return np.asarray(x, dtype=np.uint64).view(np.int64)


def arshift(x: Ring, bits: int) -> Ring:
    """Arithmetic right shift by ``bits`` (floor division of the signed value by 2^bits)."""
    return (to_signed(x) >> np.int64(bits)).view(np.uint64)


def lshift(x: Ring, bits: int) -> Ring:
    """Left shift (multiplication by 2^bits mod 2^64)."""
    return np.left_shift(x, np.uint64(bits))


def rshift(x: Ring, bits: int) -> Ring:
    """Logical right shift (floor division of the unsigned value by 2^bits)."""
    return np.right_shift(x, np.uint64(bits))


def msb(x: Ring) -> Ring:
    """Most significant bit of each element, as 0/1 ring elements."""
    return np.right_shift(x, np.uint64(RING_BITS - 1))


__all__ = [
    "RING_BITS",
    "RING_DTYPE",
    "Ring",
    "arshift",
    "from_signed",
    "lshift",
    "msb",
    "rshift",
    "to_signed",
    "zeros",
]

"""Signed fixed-point encoding of numpy arrays into HE plaintext integers.

A real ``x`` is encoded as the integer ``round(x * 2**frac_bits)``; an integer array is encoded
exactly as ``x * 2**frac_bits`` (``frac_bits = 0``, the default, keeps integers as they are).
Encoded values are arbitrary-precision Python integers and must satisfy
``|v| <= value_bound`` — the public bound the packing layer and the overflow checks rely on.

Signed range: a ciphertext decrypts exactly any integer ``v`` with ``|v| < 2**plaintext_bits``
of its key (Paillier ``k-2`` bits, OU ``bits(p)-2``); negative values are represented as
``m mod n`` (Paillier) or through ``G^-1`` (OU) and mapped back to the signed range on
decryption. Products of fixed-point values add their fractional bits: ``frac_bits`` of a
ciphertext times a plaintext encoded with ``f`` bits is ``frac_bits + f``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from veil.errors import DataError

#: Largest encoded magnitude that still travels as int64 (fast path).
INT64_MAX = (1 << 63) - 1


@dataclass(frozen=True)
class FixedPoint:
    """Fixed-point codec with ``frac_bits`` fractional bits (``0`` = plain integers)."""

    frac_bits: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.frac_bits <= 512:
            raise DataError(f"frac_bits must be in [0, 512], got {self.frac_bits}")

    def encode(self, x: Any) -> np.ndarray:
        """Encode ``x`` (array-like of ints or floats) as int64 when it fits, else Python ints.

        Raises
        ------
        DataError
            On NaN/inf, or non-numeric input.
        """
        a = np.asarray(x)
        f = self.frac_bits
        if a.dtype == object:
            return np.vectorize(lambda v: int(v) << f, otypes=[object])(a) if a.size else a
        if a.dtype.kind in "biu":
            if a.dtype.kind == "u" and a.size and int(a.max()) > INT64_MAX:
                out = a.astype(object)
                return out * (1 << f) if f else out
            a64 = a.astype(np.int64)
            if f == 0:
                return a64
            lim = INT64_MAX >> f
            if a64.size == 0 or int(np.abs(a64).max()) <= lim:
                return a64 << f
            return a64.astype(object) * (1 << f)
        if a.dtype.kind == "f":
            if a.size and not np.all(np.isfinite(a)):
                raise DataError("cannot encrypt NaN or infinite values; clean the input first")
            s = np.rint(a.astype(np.float64) * float(2.0**f))
            if s.size == 0 or float(np.abs(s).max()) < 2.0**62:
                return s.astype(np.int64)
            big: np.ndarray = np.vectorize(int, otypes=[object])(s)
            return big
        raise DataError(f"cannot encode dtype {a.dtype} for HE; use integers or floats")

    def decode(self, v: np.ndarray) -> np.ndarray:
        """Decode integers back: int64 (or object if too large) for ``frac_bits = 0``, else
        float64 ``v / 2**frac_bits``."""
        a = np.asarray(v, dtype=object)
        if self.frac_bits == 0:
            if a.size == 0:
                return np.zeros(a.shape, np.int64)
            lo, hi = min(a.flat), max(a.flat)
            if lo >= -INT64_MAX - 1 and hi <= INT64_MAX:
                return a.astype(np.int64)
            return a
        scale = 2.0**self.frac_bits
        return (
            np.vectorize(lambda t: int(t) / scale, otypes=[np.float64])(a)
            if a.size
            else (np.zeros(a.shape, np.float64))
        )


def max_abs(v: np.ndarray) -> int:
    """Largest ``|v|`` of an encoded array (int64 or object), ``0`` when empty."""
    if v.size == 0:
        return 0
    if v.dtype == np.int64:
        return max(abs(int(v.min())), abs(int(v.max())))
    return max(abs(int(t)) for t in v.flat)

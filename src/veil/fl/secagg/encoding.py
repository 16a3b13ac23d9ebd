"""Float vectors to fixed point in the ring Z_2^k and back, with clipping and a headroom proof.

A client clips its update to L2 norm ``clip`` (so every coordinate satisfies ``|x| <= clip``),
multiplies by its weight ``w <= max_weight`` when weights are used, and encodes each coordinate
as ``round(x * 2^f) mod 2^k``. The ring sum of ``n`` encodings decodes (as a signed k-bit
integer divided by 2^f) to the exact sum of the rounded values as long as no partial sum leaves
``[-2^(k-1), 2^(k-1))``. :func:`check_headroom` proves that before a round starts: with
``B = round(bound * 2^f)`` the largest magnitude one coordinate can take,

    n * B <= 2^(k-1) - 1

guarantees it for any ordering of additions, since masks cancel exactly in Z_2^k. A
configuration that fails the inequality raises :class:`~veil.errors.ConfigError` *before* any
message is sent: overflow is never silent.

Precision: each coordinate is rounded to the nearest multiple of 2^-f, so the decoded sum of
``n`` clients is within ``n * 2^-(f+1)`` of the float sum of the clipped (weighted) vectors, and
equals the sum of the rounded values exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from veil.errors import ConfigError, DataError

FloatArray = np.ndarray[Any, np.dtype[np.float64]]
RingArray = np.ndarray[Any, np.dtype[Any]]


@dataclass(frozen=True)
class FixedPoint:
    """Fixed-point format: ``frac_bits`` fractional bits in the ring Z_2^``ring_bits``.

    ``ring_bits`` is 32 or 64 (numpy ``uint32``/``uint64``, whose wrap-around is the ring).
    """

    frac_bits: int = 24
    ring_bits: int = 64

    def __post_init__(self) -> None:
        if self.ring_bits not in (32, 64):
            raise ConfigError(f"ring_bits must be 32 or 64, not {self.ring_bits}")
        if not 0 <= self.frac_bits < self.ring_bits - 1:
            raise ConfigError(f"frac_bits must be in 0..{self.ring_bits - 2}, not {self.frac_bits}")

    @property
    def dtype(self) -> np.dtype[Any]:
        """The unsigned numpy dtype of ring elements."""
        return np.dtype(np.uint64 if self.ring_bits == 64 else np.uint32)

    @property
    def signed(self) -> np.dtype[Any]:
        """The signed numpy dtype used to decode."""
        return np.dtype(np.int64 if self.ring_bits == 64 else np.int32)

    def max_units(self, bound: float) -> int:
        """Largest magnitude, in units of 2^-f, of an encoded value with ``|x| <= bound``."""
        return math.floor(bound * 2.0**self.frac_bits + 0.5)

    def encode(self, x: FloatArray, bound: float | None = None) -> RingArray:
        """Round ``x * 2^f`` to integers and map them into the ring (two's complement).

        With ``bound``, the integers are also clamped to ``±max_units(bound)``, so float rounding
        in clipping can never step over the proven headroom.
        """
        units = np.rint(np.asarray(x, dtype=np.float64) * 2.0**self.frac_bits)
        if bound is not None:
            lim = float(self.max_units(bound))
            units = np.clip(units, -lim, lim)
        # integer casts wrap: this is the reduction mod 2^k
        return units.astype(np.int64).astype(self.dtype)

    def decode(self, r: RingArray) -> FloatArray:
        """Signed ring elements divided by 2^f (exact integers, then float64)."""
        arr = np.ascontiguousarray(r, dtype=self.dtype)
        return arr.view(self.signed).astype(np.float64) / 2.0**self.frac_bits


def check_headroom(n_clients: int, bound: float, fp: FixedPoint) -> None:
    """Raise :class:`ConfigError` unless ``n_clients`` values with ``|x| <= bound`` sum safely."""
    if not (math.isfinite(bound) and bound > 0):
        raise ConfigError(f"the clipping bound must be a positive finite number, not {bound}")
    worst = n_clients * fp.max_units(bound)
    limit = 2 ** (fp.ring_bits - 1) - 1
    if worst > limit:
        room = limit // max(n_clients, 1) / 2.0**fp.frac_bits
        raise ConfigError(
            f"secure aggregation could overflow: {n_clients} clients x bound {bound:g} x 2^"
            f"{fp.frac_bits} = {worst} > 2^{fp.ring_bits - 1} - 1. Lower the clipping bound or "
            f"max weight (at most {room:g} per coordinate fits), lower frac_bits, or use "
            "ring_bits=64"
        )


def clip_l2(x: FloatArray, clip: float, *, party: str) -> FloatArray:
    """``x`` scaled down to L2 norm ``clip`` if longer; refuses NaN/Inf naming ``party``."""
    v = np.asarray(x, dtype=np.float64)
    if v.ndim != 1:
        raise DataError(f"client {party!r}: the update must be a 1-D vector, got shape {v.shape}")
    bad = ~np.isfinite(v)
    if bad.any():
        idx = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"client {party!r}: the update holds NaN/Inf ({int(bad.sum())} entries, first at "
            f"index {idx}); it is excluded from secure aggregation — fix the local training"
        )
    norm = float(np.linalg.norm(v))
    if norm > clip:
        v = v * (clip / norm)
    return v

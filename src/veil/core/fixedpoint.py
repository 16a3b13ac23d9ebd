"""Fixed-point encoding of reals into Z_2^64.

A real ``x`` is encoded as the ring element ``round(x * 2^f)`` (two's complement), with ``f``
fractional bits (18 by default). Resolution is ``2^-f`` (3.8e-6 for f = 18). A product of two
encodings carries ``2f`` fractional bits and must be truncated by ``f`` bits; to keep the product
from wrapping, inputs must satisfy ``|x| < 2^(63 - 2f - 1)`` per operand product
(``|x * y| < 2^(62 - 2f)`` = 2^26 ≈ 6.7e7 for f = 18). Encoding refuses non-finite inputs and
magnitudes at or above ``2^(62 - f)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from veil.core.ring import Ring
from veil.errors import ConfigError, DataError

#: Default number of fractional bits.
DEFAULT_FRAC_BITS = 18


@dataclass(frozen=True)
class FixedPoint:
    """Fixed-point codec with ``frac_bits`` fractional bits.

    Parameters
    ----------
    frac_bits:
        Fractional bits ``f``; 1 <= f <= 30 (products carry 2f bits and must stay below 2^62).
    """

    frac_bits: int = DEFAULT_FRAC_BITS

    def __post_init__(self) -> None:
        if not 1 <= self.frac_bits <= 30:
            raise ConfigError(f"frac_bits must be in [1, 30], got {self.frac_bits}")

    @property
    def scale(self) -> float:
        """``2^f``."""
        return float(1 << self.frac_bits)

    @property
    def resolution(self) -> float:
        """Smallest representable step ``2^-f``."""
        return 1.0 / self.scale

    @property
    def bound(self) -> float:
        """Largest magnitude :meth:`encode` accepts (``2^(62 - f)``)."""
        return float(2.0 ** (62 - self.frac_bits))

    def encode(self, x: Any) -> Ring:
        """Encode reals as ring elements (round to nearest).

        Raises
        ------
        DataError
            If a value is NaN/inf or ``|x| >= bound``.
        """
        a = np.asarray(x, dtype=np.float64)
        if a.size and not np.all(np.isfinite(a)):
            raise DataError("cannot encode NaN or infinite values as fixed point")
        if a.size and float(np.max(np.abs(a))) >= self.bound:
            raise DataError(
                f"value {float(np.max(np.abs(a))):g} exceeds the fixed-point bound "
                f"{self.bound:g} for {self.frac_bits} fractional bits; rescale the input"
            )
        return np.rint(a * self.scale).astype(np.int64).view(np.uint64)

    def decode(self, x: Ring) -> np.ndarray[Any, np.dtype[np.float64]]:
        """Decode ring elements to float64 (signed)."""
        return np.asarray(x, dtype=np.uint64).view(np.int64).astype(np.float64) / self.scale


__all__ = ["DEFAULT_FRAC_BITS", "FixedPoint"]

"""AES-128-CTR pseudo-random generator for correlated randomness.

Two parties holding the same 16-byte seed draw the same stream; this is how shares and triples
are "PRG-compressed" (a seed replaces a whole random array on the wire). Seeds come from
``os.urandom``; numpy's RNG is never used for anything secret.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from veil.errors import ConfigError

#: Seed length in bytes (an AES-128 key).
SEED_BYTES = 16


def new_seed() -> bytes:
    """A fresh random seed from the operating system's CSPRNG."""
    return os.urandom(SEED_BYTES)


class Prg:
    """Deterministic stream of random bytes: AES-128 in counter mode keyed by ``seed``.

    Parameters
    ----------
    seed:
        16 secret bytes.

    Notes
    -----
    Each draw continues the stream, so two ``Prg`` objects with the same seed return the same
    arrays as long as they are asked for the same sizes in the same order.
    """

    def __init__(self, seed: bytes) -> None:
        if len(seed) != SEED_BYTES:
            raise ConfigError(f"PRG seed must be {SEED_BYTES} bytes, got {len(seed)}")
        cipher = Cipher(algorithms.AES(bytes(seed)), modes.CTR(b"\x00" * 16))
        self._enc = cipher.encryptor()
        self._zeros = bytearray(0)

    def random_bytes(self, n: int) -> bytes:
        """The next ``n`` bytes of the stream."""
        if n < 0:
            raise ConfigError(f"cannot draw a negative number of bytes ({n})")
        if len(self._zeros) < n:
            self._zeros = bytearray(n)
        return self._enc.update(memoryview(self._zeros)[:n])

    def random_words(
        self, shape: tuple[int, ...] | int, dtype: Any = np.uint64
    ) -> np.ndarray[Any, Any]:
        """Uniform unsigned integers of ``dtype`` (uint8/16/32/64) and ``shape`` (writeable)."""
        shp = (shape,) if isinstance(shape, int) else tuple(shape)
        dt = np.dtype(dtype)
        nbytes = dt.itemsize * math.prod(shp)
        if len(self._zeros) < nbytes:
            self._zeros = bytearray(nbytes)
        # CTR's update_into needs block_size - 1 spare bytes in the output buffer.
        buf = np.empty(nbytes + 16, dtype=np.uint8)
        self._enc.update_into(memoryview(self._zeros)[:nbytes], buf.data)
        out: np.ndarray[Any, Any] = buf[:nbytes].view(dt).reshape(shp)
        return out

    def random_u64(self, shape: tuple[int, ...] | int) -> np.ndarray[Any, np.dtype[np.uint64]]:
        """Uniform ring elements of ``shape``."""
        return self.random_words(shape, np.uint64)


__all__ = ["SEED_BYTES", "Prg", "new_seed"]

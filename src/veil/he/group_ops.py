"""The homomorphic operations shared by Paillier and Okamoto–Uchiyama.

Both schemes encrypt into a multiplicative group modulo ``modulus`` where
``Enc(x)·Enc(y) = Enc(x + y)``; only the plaintext embedding (:meth:`plain`) and the noise
(:meth:`noise`) differ, and each encryptor supplies those.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import gmpy2


class GroupOps(ABC):
    """Additive homomorphisms of a multiplicative-group ciphertext space."""

    modulus: Any

    @abstractmethod
    def plain(self, m: int) -> Any:
        """The plaintext ``m`` embedded in the group without randomness."""

    @abstractmethod
    def noise(self, r: int | None = None) -> Any:
        """A fresh (or given) randomising factor."""

    def add(self, a: int, b: int) -> Any:
        """Enc(x) * Enc(y) = Enc(x + y)."""
        return a * b % self.modulus

    def add_plain(self, c: int, m: int) -> Any:
        """Enc(x) * plain(m) = Enc(x + m) (same randomness: re-randomize before sending)."""
        return c * self.plain(m) % self.modulus

    def mul_plain(self, c: int, k: int) -> Any:
        """Enc(x)^k = Enc(k*x) for a signed integer ``k`` (``k < 0`` through the inverse)."""
        return gmpy2.powmod(c, int(k), self.modulus)

    def neg(self, c: int) -> Any:
        """Enc(x)^-1 = Enc(-x)."""
        return gmpy2.invert(c, self.modulus)

    def rerandomize(self, c: int) -> Any:
        """Multiply by fresh noise: same plaintext, unlinkable ciphertext."""
        return c * self.noise() % self.modulus

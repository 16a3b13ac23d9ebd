"""Key material shared by both additively homomorphic schemes (Paillier-DJN and OU).

A :class:`PublicKey` is plain public numbers (frozen, hashable, comparable); its
:attr:`PublicKey.fingerprint` (SHA-256 over the scheme id and every public number) names the key
in serialized ciphertexts so that a ciphertext under another key is refused. A
:class:`PrivateKey` holds the primes; it never travels (there is no serializer for it on purpose).

Key sizes: 2048 bits (default, ~112-bit security per NIST SP 800-57) and 3072 bits (128-bit).
Smaller keys exist only for fast unit tests and must be asked for with ``insecure=True``.

Randomness comes from the operating system CSPRNG (:mod:`secrets`), never from a seeded PRNG;
tests that need fixed randomness pass it explicitly to the raw encryption functions.
"""

from __future__ import annotations

import enum
import hashlib
import secrets
from dataclasses import dataclass, field
from typing import Any

import gmpy2

from veil.errors import ConfigError

SECURE_KEY_BITS = (2048, 3072)
MIN_TEST_KEY_BITS = 256


class Scheme(enum.IntEnum):
    """Additively homomorphic scheme; the value is the scheme id on the wire (never renumber)."""

    PAILLIER = 1
    OU = 2

    @classmethod
    def parse(cls, name: str | Scheme) -> Scheme:
        """``"paillier"``/``"ou"`` (or a :class:`Scheme`) to a :class:`Scheme`."""
        if isinstance(name, Scheme):
            return name
        try:
            return cls[str(name).upper()]
        except KeyError:
            raise ConfigError(f"unknown HE scheme {name!r}; use 'paillier' or 'ou'") from None


def security_level(key_bits: int) -> int:
    """Symmetric-equivalent security (bits) of a factoring-based modulus (NIST SP 800-57)."""
    if key_bits >= 3072:
        return 128
    if key_bits >= 2048:
        return 112
    return 80


def check_key_bits(key_bits: int, insecure: bool) -> None:
    """Refuse key sizes other than 2048/3072 unless ``insecure`` (tests) is set."""
    if key_bits in SECURE_KEY_BITS:
        return
    if insecure and key_bits >= MIN_TEST_KEY_BITS and key_bits % 2 == 0:
        return
    raise ConfigError(
        f"HE key size {key_bits} bits is not supported; use 2048 (default) or 3072"
        + (
            ""
            if insecure
            else " (smaller even sizes >= 256 exist for unit tests only: insecure=True)"
        )
    )


def random_bits(k: int) -> int:
    """A uniform ``k``-bit non-negative integer from the OS CSPRNG."""
    return secrets.randbits(k) if k > 0 else 0


def random_prime(bits: int, *, top_bits: int = 2) -> Any:
    """A random prime of exactly ``bits`` bits whose ``top_bits`` leading bits are set.

    Draws a CSPRNG odd number with the top bits forced and takes :func:`gmpy2.next_prime`
    (retrying if that overflows the size). Not a safe prime; none of our schemes needs one.
    """
    if bits < 8:
        raise ConfigError(f"prime size {bits} bits is too small")
    top = ((1 << top_bits) - 1) << (bits - top_bits)
    while True:
        cand = gmpy2.next_prime(gmpy2.mpz(random_bits(bits) | top | 1))
        if cand.bit_length() == bits:
            return cand


def _int_bytes(x: int) -> bytes:
    v = int(x)
    return v.to_bytes(max(1, (v.bit_length() + 7) // 8), "big")


@dataclass(frozen=True)
class PublicKey:
    """Public key of Paillier-DJN or Okamoto–Uchiyama (plain public integers).

    Attributes
    ----------
    scheme:
        :class:`Scheme`.
    n:
        Public modulus (Paillier ``p*q``; OU ``p^2*q``), exactly ``key_bits`` bits.
    g:
        Paillier: ``n + 1`` (implicit, encryption uses ``1 + m*n``). OU: ``G = g^u mod n``.
    h:
        Paillier: ``h_s = (-x^2)^n mod n^2``. OU: ``H = g'^(n*u) mod n``.
    key_bits:
        Bit length of ``n``.
    r_bits:
        Bit length of the encryption randomness ``r`` (exponent of ``h``).
    plaintext_bits:
        Any integer ``m`` with ``|m| < 2**plaintext_bits`` decrypts exactly (signed).
    """

    scheme: Scheme
    n: int
    g: int
    h: int
    key_bits: int
    r_bits: int
    plaintext_bits: int
    _fp: bytes = field(default=b"", init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        hsh = hashlib.sha256(b"veil.he.pk.v1")
        for v in (int(self.scheme), self.key_bits, self.r_bits, self.plaintext_bits):
            hsh.update(v.to_bytes(4, "big"))
        for v in (self.n, self.g, self.h):
            b = _int_bytes(v)
            hsh.update(len(b).to_bytes(4, "big") + b)
        object.__setattr__(self, "_fp", hsh.digest()[:16])

    @property
    def fingerprint(self) -> bytes:
        """16-byte SHA-256 prefix naming this key (carried by every serialized ciphertext)."""
        return self._fp

    @property
    def ct_modulus(self) -> int:
        """Ciphertexts live in the units of ``Z_{ct_modulus}`` (Paillier ``n^2``, OU ``n``)."""
        return self.n * self.n if self.scheme is Scheme.PAILLIER else self.n

    @property
    def ct_bytes(self) -> int:
        """Fixed width of one serialized ciphertext (big-endian bytes)."""
        return (int(self.ct_modulus).bit_length() + 7) // 8

    @property
    def plaintext_bound(self) -> int:
        """Exclusive bound on ``|m|`` for exact signed decryption (``2**plaintext_bits``)."""
        return 1 << self.plaintext_bits

    def describe(self) -> str:
        """Short human-readable name: scheme, size and fingerprint prefix."""
        return f"{self.scheme.name.lower()}-{self.key_bits} key {self.fingerprint.hex()[:12]}"


@dataclass(frozen=True)
class PrivateKey:
    """Private key: the public key plus its secret primes (and, for OU, the subgroup order ``t``).

    Never serialized by veil: it stays in the key owner's process.
    """

    public: PublicKey
    p: int
    q: int
    t: int = 0

    def __repr__(self) -> str:  # never print the primes
        return f"PrivateKey({self.public.describe()})"


__all__ = [
    "SECURE_KEY_BITS",
    "PrivateKey",
    "PublicKey",
    "Scheme",
    "check_key_bits",
    "random_bits",
    "random_prime",
    "security_level",
]

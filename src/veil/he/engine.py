"""Scheme dispatch: the encryptor (with its fixed-base tables) and decryptor for a key.

:func:`encryptor` memoizes one encryptor per public key (a bounded LRU cache of *public*
precomputation only: the tables are tens of MB and take 0.1-0.2 s to build, so a process builds
them once per key; worker processes do the same). The key owner's CRT encryptor is memoized the
same way (its tables depend on the primes: it lives only in the owner's own processes).
Decryptors are built per call.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, Protocol

from veil.he.keys import PrivateKey, PublicKey, Scheme
from veil.he.ou import OWNER_NOISE_WINDOW_BITS, OUDecryptor, OUEncryptor
from veil.he.paillier import PaillierCrtEncryptor, PaillierDecryptor, PaillierEncryptor


class Encryptor(Protocol):
    """Public-key operations on single ciphertexts (integers)."""

    pk: PublicKey
    modulus: Any

    def noise(self, r: int | None = None) -> Any: ...
    def plain(self, m: int) -> Any: ...
    def encrypt(self, m: int, r: int | None = None) -> Any: ...
    def encrypt_many(self, ms: Sequence[int], rs: Sequence[int] | None = None) -> list[Any]: ...
    def add(self, a: int, b: int) -> Any: ...
    def add_plain(self, c: int, m: int) -> Any: ...
    def mul_plain(self, c: int, k: int) -> Any: ...
    def neg(self, c: int) -> Any: ...
    def rerandomize(self, c: int) -> Any: ...


class OwnerEncryptor(Protocol):
    """Encryption only (the key owner's fastest path)."""

    pk: PublicKey

    def encrypt(self, m: int, r: int | None = None) -> Any: ...
    def encrypt_many(self, ms: Sequence[int], rs: Sequence[int] | None = None) -> list[Any]: ...


class Decryptor(Protocol):
    """Private-key decryption of single ciphertexts to signed integers."""

    pk: PublicKey

    def decrypt(self, c: int) -> int: ...


@functools.lru_cache(maxsize=4)
def encryptor(pk: PublicKey) -> Encryptor:
    """The (memoized) encryptor of ``pk``."""
    if pk.scheme is Scheme.PAILLIER:
        return PaillierEncryptor(pk)
    return OUEncryptor(pk)


@functools.lru_cache(maxsize=2)
def owner_encryptor(sk: PrivateKey) -> OwnerEncryptor:
    """The key owner's (memoized) bulk encryptor; same ciphertexts as the public path.

    Paillier: CRT modulo ``p^2`` and ``q^2`` (half-size multiplications, ~1.6x faster). OU:
    the public algorithm with a larger noise table (:data:`~veil.he.ou.OWNER_NOISE_WINDOW_BITS`):
    CRT modulo ``p^2`` and ``q`` measured no faster (see ``docs/he.md``)."""
    if sk.public.scheme is Scheme.PAILLIER:
        return PaillierCrtEncryptor(sk)
    return OUEncryptor(sk.public, noise_window=OWNER_NOISE_WINDOW_BITS)


def decryptor(sk: PrivateKey) -> Decryptor:
    """A fresh decryptor of ``sk``."""
    if sk.public.scheme is Scheme.PAILLIER:
        return PaillierDecryptor(sk)
    return OUDecryptor(sk)

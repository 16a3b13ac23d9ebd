"""Byte codecs for HE public keys and ciphertext vectors, with validation. Never pickle.

* Ciphertexts travel as fixed-width big-endian integers (``PublicKey.ct_bytes`` each).
  :func:`ints_from_bytes` refuses a length that is not a whole number of ciphertexts, and
  :func:`validate_ciphertexts` refuses a value that is ``0``, ``>= n^2`` (Paillier) / ``>= n``
  (OU) or not a unit (shares a factor with ``n``; checked for the whole batch with one product
  and one gcd).
* A public key travels as ``b"VLPK" | version | scheme | key_bits | r_bits | plaintext_bits``
  followed by ``n``, ``g``, ``h`` (length-prefixed big-endian); :func:`decode_public_key` checks
  every field for consistency before anyone builds tables or encrypts under it.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from typing import Any

import gmpy2

from veil.errors import ProtocolError
from veil.he.keys import MIN_TEST_KEY_BITS, PublicKey, Scheme

PK_MAGIC = b"VLPK"
PK_VERSION = 1
MAX_KEY_BITS = 4096  # 2048 and 3072 are supported; refuse what would only cost memory
MIN_R_BITS = 128
_PK_HEAD = struct.Struct(">4sBBHHH")


def ints_to_bytes(values: Iterable[Any], width: int) -> bytes:
    """Concatenate non-negative integers as ``width``-byte big-endian words."""
    try:
        return b"".join(gmpy2.mpz(v).to_bytes(width, "big") for v in values)
    except OverflowError:
        raise ProtocolError(f"an integer does not fit {width} bytes") from None


def ints_from_bytes(blob: bytes | memoryview, width: int, count: int | None = None) -> list[Any]:
    """Split ``blob`` into ``width``-byte big-endian integers (``mpz``); check the count."""
    if width <= 0 or len(blob) % width:
        raise ProtocolError(
            f"ciphertext payload of {len(blob)} bytes is not a multiple of {width}-byte words"
        )
    k = len(blob) // width
    if count is not None and k != count:
        raise ProtocolError(f"expected {count} ciphertexts, payload holds {k}")
    b = bytes(blob)
    frm = gmpy2.mpz.from_bytes
    return [frm(b[i : i + width], "big") for i in range(0, len(b), width)]


def validate_ciphertexts(pk: PublicKey, values: Sequence[Any], *, what: str = "ciphertext") -> None:
    """Raise :class:`ProtocolError` unless every value is a unit in ``[1, ct_modulus)``."""
    mod = gmpy2.mpz(pk.ct_modulus)
    n = gmpy2.mpz(pk.n)
    acc = gmpy2.mpz(1)
    for i, c in enumerate(values):
        if not 0 < c < mod:
            raise ProtocolError(
                f"{what} {i} is out of range for {pk.describe()} (must be in [1, "
                f"{'n^2' if pk.scheme is Scheme.PAILLIER else 'n'})): wrong key or corrupt data"
            )
        acc = acc * c % n
    if gmpy2.gcd(acc, n) != 1:
        bad = next(i for i, c in enumerate(values) if gmpy2.gcd(c, n) != 1)
        raise ProtocolError(
            f"{what} {bad} is not a unit modulo n of {pk.describe()}: malformed or malicious"
        )


def encode_public_key(pk: PublicKey) -> bytes:
    """Serialize a public key (versioned, no pickle)."""
    parts = [
        _PK_HEAD.pack(
            PK_MAGIC, PK_VERSION, int(pk.scheme), pk.key_bits, pk.r_bits, pk.plaintext_bits
        )
    ]
    for v in (pk.n, pk.g, pk.h):
        b = int(v).to_bytes((int(v).bit_length() + 7) // 8 or 1, "big")
        parts.append(struct.pack(">H", len(b)) + b)
    return b"".join(parts)


def decode_public_key(blob: bytes | memoryview) -> PublicKey:
    """Parse and validate a public key from :func:`encode_public_key`.

    Raises
    ------
    ProtocolError
        Bad magic/version/scheme, inconsistent sizes, trailing bytes, or values out of range.
    """
    b = bytes(blob)
    if len(b) < _PK_HEAD.size:
        raise ProtocolError("HE public key blob is truncated")
    magic, ver, scheme_id, key_bits, r_bits, pt_bits = _PK_HEAD.unpack_from(b)
    if magic != PK_MAGIC:
        raise ProtocolError("not a veil HE public key (bad magic)")
    if ver != PK_VERSION:
        raise ProtocolError(f"HE public key version {ver} is not supported (this veil reads 1)")
    try:
        scheme = Scheme(scheme_id)
    except ValueError:
        raise ProtocolError(f"unknown HE scheme id {scheme_id} in public key") from None
    off = _PK_HEAD.size
    nums: list[int] = []
    for name in ("n", "g", "h"):
        if off + 2 > len(b):
            raise ProtocolError(f"HE public key truncated before {name}")
        (ln,) = struct.unpack_from(">H", b, off)
        off += 2
        if ln == 0 or off + ln > len(b):
            raise ProtocolError(f"HE public key field {name} is truncated")
        nums.append(int.from_bytes(b[off : off + ln], "big"))
        off += ln
    if off != len(b):
        raise ProtocolError(f"HE public key has {len(b) - off} trailing bytes")
    n, g, h = nums
    if not MIN_TEST_KEY_BITS <= key_bits <= MAX_KEY_BITS or n.bit_length() != key_bits:
        raise ProtocolError(f"HE public key modulus has {n.bit_length()} bits, header {key_bits}")
    if n % 2 == 0 or gmpy2.is_prime(n):
        raise ProtocolError("HE public key modulus is not an odd composite")
    if not MIN_R_BITS <= r_bits <= (key_bits + 1) // 2:
        raise ProtocolError(f"HE public key randomness of {r_bits} bits is out of range")
    mod = n * n if scheme is Scheme.PAILLIER else n
    if scheme is Scheme.PAILLIER and (g != n + 1 or pt_bits != key_bits - 2):
        raise ProtocolError("Paillier public key must have g = n + 1 and k-2 plaintext bits")
    if scheme is Scheme.OU and not 16 <= pt_bits <= key_bits // 3:
        raise ProtocolError(f"OU public key plaintext size {pt_bits} bits is out of range")
    for name, v in (("g", g), ("h", h)):
        if not 1 < v < mod or gmpy2.gcd(v, n) != 1:
            raise ProtocolError(f"HE public key base {name} is not a unit modulo the key")
    return PublicKey(
        scheme=scheme, n=n, g=g, h=h, key_bits=key_bits, r_bits=r_bits, plaintext_bits=pt_bits
    )

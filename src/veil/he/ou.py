"""Okamoto–Uchiyama with the Coron–Naccache–Paillier subgroup speed-up and fixed-base tables.

Scheme (the same structure as HEU's ``ou``):

* Key generation: primes ``t`` (``2*lambda`` bits: 224 at 2048, 256 at 3072) and
  ``p = t*u + 1`` of ``ceil(k/3)`` bits, a prime ``q`` so that ``n = p^2*q`` has exactly ``k``
  bits; ``g`` with ``g^(p-1) != 1 mod p^2``; ``G = g^u mod n``; ``H = g'^(n*u) mod n``.
* Encryption: ``c = G^m * H^r mod n``, ``r`` uniform of ``r_bits = 2*lambda`` bits (HEU uses
  110 bits at 2048; we use 224). ``G^m`` comes from a signed byte-window table (balanced digits,
  either sign) and ``H^r`` from a 12-bit window table, 14 bits in the key owner's bulk encryptor
  (:mod:`veil.he.fixedbase`). CRT modulo ``p^2`` and ``q`` was measured no faster (``docs/he.md``).
* Decryption: ``c^t mod p^2 = (g^(p-1))^m`` because ``H^t = 1 mod p^2``; then
  ``m = L(c^t mod p^2) * L(g^(p-1) mod p^2)^-1 mod p`` with ``L(x) = (x-1)/p``: one
  exponentiation by the ``2*lambda``-bit ``t`` instead of by ``p-1``.

Plaintexts are signed integers with ``|m| < 2**plaintext_bits``, ``plaintext_bits = bits(p)-2``
(681 at 2048), so that they stay below ``p/2`` and decrypt exactly.

References: T. Okamoto, S. Uchiyama, "A new public-key cryptosystem as secure as factoring",
EUROCRYPT '98; J.-S. Coron, D. Naccache, P. Paillier, "Accelerating Okamoto–Uchiyama's
public-key cryptosystem", Electronics Letters 35(4), 1999.

Threat model: IND-CPA under the p-subgroup assumption (as hard as factoring ``p^2*q`` for the
one-wayness); the short randomness relies on the short-exponent assumption (Pollard's lambda
costs ``2^(r_bits/2)`` = ``2^lambda``). Chosen-ciphertext attacks factor ``n`` (OU is not
CCA-secure): the key owner must only decrypt ciphertexts from the protocol, and reveal results
only through the protocol's reveal step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gmpy2

from veil.errors import ConfigError, ProtocolError
from veil.he.fixedbase import (
    BATCH,
    FixedBaseTable,
    SignedFixedBaseTable,
    bytes_digits,
    noise_exponent_bytes,
)
from veil.he.group_ops import GroupOps
from veil.he.keys import (
    PrivateKey,
    PublicKey,
    Scheme,
    check_key_bits,
    random_bits,
    random_prime,
    security_level,
)

_EAGER_ROWS = 9  # byte windows of G^m built with the key: plaintexts up to 72 bits
#: Window of the ``H^r`` table: 12 bits = 19 rows x 4096 residues (~23 MB at k = 2048),
#: 20 % faster than byte windows on this machine.
NOISE_WINDOW_BITS = 12
#: Window of the key owner's bulk ``H^r`` table (:func:`veil.he.engine.owner_encryptor`):
#: 14 bits = 16 rows x 16384 residues (~82 MB, 0.35 s to build at k = 2048), 6-7 % faster
#: encryption than 12 bits on this machine.
OWNER_NOISE_WINDOW_BITS = 14


def _sizes(key_bits: int) -> tuple[int, int, int]:
    """(bits of p, bits of t, r_bits) for a ``key_bits`` modulus."""
    p_bits = -(-key_bits // 3)
    lam2 = 2 * security_level(key_bits)
    t_bits = min(lam2, p_bits - 20)
    return p_bits, t_bits, lam2


def _gen_p(p_bits: int, t_bits: int) -> tuple[Any, Any]:
    lo, hi = gmpy2.mpz(1) << (p_bits - 1), gmpy2.mpz(1) << p_bits
    while True:
        t = random_prime(t_bits)
        u_lo, u_hi = (lo + t - 1) // t, (hi - 1) // t
        for _ in range(4 * p_bits):
            u = u_lo + gmpy2.mpz(random_bits(int(u_hi - u_lo).bit_length())) % (u_hi - u_lo)
            u += u & 1  # t*u must be even so that p is odd
            p = t * u + 1
            if lo <= p < hi and gmpy2.is_prime(p):
                return p, t


def keypair_from_primes(
    p: int, q: int, t: int, g: int, g2: int, *, r_bits: int | None = None
) -> tuple[PublicKey, PrivateKey]:
    """Build an OU key pair from given primes and bases (known-answer tests and import).

    ``t`` must be a prime dividing ``p-1``; ``g^(p-1) mod p^2 != 1``; ``g2`` a unit mod ``n``.
    """
    p_, q_, t_ = gmpy2.mpz(p), gmpy2.mpz(q), gmpy2.mpz(t)
    if p_ == q_ or not all(gmpy2.is_prime(v) for v in (p_, q_, t_)):
        raise ConfigError("OU needs distinct primes p, q and a prime t")
    if (p_ - 1) % t_ != 0:
        raise ConfigError("OU needs t | p - 1")
    u = (p_ - 1) // t_
    p2 = p_ * p_
    n = p2 * q_
    key_bits = int(n.bit_length())
    gp = gmpy2.powmod(gmpy2.mpz(g) % p2, p_ - 1, p2)
    if gp == 1 or gmpy2.gcd(gmpy2.mpz(g), n) != 1 or gmpy2.gcd(gmpy2.mpz(g2), n) != 1:
        raise ConfigError("OU bases must be units with g^(p-1) != 1 mod p^2")
    G = gmpy2.powmod(g, u, n)
    H = gmpy2.powmod(g2, n * u, n)
    if gmpy2.gcd(G - 1, n) != 1 or gmpy2.gcd(H - 1, n) != 1:  # probability ~1/t; would leak p
        raise ConfigError("OU bases give G or H = 1 modulo a factor of n; draw other bases")
    rb = _sizes(key_bits)[2] if r_bits is None else int(r_bits)
    if rb < 1:
        raise ConfigError(f"r_bits must be positive, got {rb}")
    pk = PublicKey(
        scheme=Scheme.OU,
        n=int(n),
        g=int(G),
        h=int(H),
        key_bits=key_bits,
        r_bits=rb,
        plaintext_bits=int(p_.bit_length()) - 2,
    )
    return pk, PrivateKey(public=pk, p=int(p_), q=int(q_), t=int(t_))


def keygen(key_bits: int = 2048, *, insecure: bool = False) -> tuple[PublicKey, PrivateKey]:
    """Generate an Okamoto–Uchiyama key pair (``n = p^2*q``) from the OS CSPRNG.

    Parameters
    ----------
    key_bits:
        Size of ``n``: 2048 (default) or 3072; smaller sizes only with ``insecure=True``.
    insecure:
        Allow test-only key sizes.
    """
    check_key_bits(key_bits, insecure)
    p_bits, t_bits, _ = _sizes(key_bits)
    p, t = _gen_p(p_bits, t_bits)
    p2 = p * p
    q_lo = ((gmpy2.mpz(1) << (key_bits - 1)) + p2 - 1) // p2
    q_hi = ((gmpy2.mpz(1) << key_bits) - 1) // p2
    while True:
        q = gmpy2.next_prime(q_lo + gmpy2.mpz(random_bits(key_bits)) % (q_hi - q_lo))
        if q != p and q <= q_hi:
            break
    n = p2 * q
    while True:
        g = gmpy2.mpz(random_bits(key_bits)) % n
        g2 = gmpy2.mpz(random_bits(key_bits)) % n
        if g < 2 or g2 < 2 or gmpy2.gcd(g * g2, n) != 1:
            continue
        if gmpy2.powmod(g % p2, p - 1, p2) == 1:
            continue
        try:
            return keypair_from_primes(p, q, t, g, g2)
        except ConfigError:  # G or H degenerate modulo a factor (probability ~1/t)
            continue


def _check_plaintexts(pk: PublicKey, vals: list[int]) -> None:
    bound = pk.plaintext_bound
    if vals and not (-bound < min(vals) and max(vals) < bound):
        raise ProtocolError(f"OU plaintexts must satisfy |m| < 2**{pk.plaintext_bits}")


class OUEncryptor(GroupOps):
    """Encryption and public homomorphic operations under one OU public key.

    Holds a signed-window fixed-base table of ``G`` (plaintext exponents of either sign:
    balanced digits, so a negative slot packed below a positive one costs as little as a
    positive one) and a fixed-window table of ``H`` (noise exponents).

    Parameters
    ----------
    pk:
        The OU public key.
    noise_window:
        Window bits of the ``H^r`` table: ``ceil(r_bits / w)`` multiplications per
        encryption for ``ceil(r_bits / w) * 2**w`` residues (:data:`NOISE_WINDOW_BITS` by
        default; the key owner's bulk encryptor uses :data:`OWNER_NOISE_WINDOW_BITS`).
    """

    def __init__(self, pk: PublicKey, *, noise_window: int = NOISE_WINDOW_BITS) -> None:
        if pk.scheme is not Scheme.OU:
            raise ProtocolError(f"{pk.describe()} is not an OU key")
        self.pk = pk
        self.modulus: Any = gmpy2.mpz(pk.n)
        self._g = SignedFixedBaseTable(pk.g, self.modulus, pk.plaintext_bits).build(_EAGER_ROWS)
        self._h = FixedBaseTable(pk.h, self.modulus, pk.r_bits, noise_window).build()

    def noise(self, r: int | None = None) -> Any:
        """``H^r mod n`` for ``r`` given or fresh from the CSPRNG."""
        return self._h.pow(random_bits(self.pk.r_bits) if r is None else r)

    def plain(self, m: int) -> Any:
        """The deterministic encoding ``G^m mod n`` of the signed plaintext ``m``."""
        return self._g.pow_many([int(m)])[0]

    def encrypt(self, m: int, r: int | None = None) -> Any:
        """``G^m * H^r mod n``; ``r`` fresh from the CSPRNG unless given (tests)."""
        return self.encrypt_many([m], None if r is None else [r])[0]

    def plain_many(self, ms: Sequence[int]) -> list[Any]:
        """``[G^m mod n for m in ms]`` (batched signed-window exponentiations)."""
        return self._g.pow_many(ms)

    def encrypt_many(self, ms: Sequence[int], rs: Sequence[int] | None = None) -> list[Any]:
        """Encryptions ``G^m * H^r mod n`` of ``ms``, batched.

        ``r`` is fresh from the CSPRNG (uniform ``r_bits``-bit, drawn as window digits:
        :func:`~veil.he.fixedbase.random_exponent_bytes`) unless ``rs`` is given (tests). Each
        product is accumulated in one pass: the ``H`` windows, then the non-zero signed
        windows of ``m``.
        """
        vals = [int(m) for m in ms]
        _check_plaintexts(self.pk, vals)
        h, g = self._h, self._g
        rows = noise_exponent_bytes(len(vals), self.pk.r_bits, rs)
        one, out = gmpy2.mpz(1), list[Any]()
        for s in range(0, len(vals), BATCH):
            part, raw = vals[s : s + BATCH], rows[s : s + BATCH]
            accs = h.mul_digits([None] * len(part), bytes_digits(raw, h.n_windows, h.window_bits))
            out.extend(one if a is None else a for a in g.mul_digits(accs, g.digits(part)))
        return out


class OUDecryptor:
    """Decryption under one OU private key: one exponentiation by ``t`` modulo ``p^2``."""

    def __init__(self, sk: PrivateKey) -> None:
        pk = sk.public
        if pk.scheme is not Scheme.OU:
            raise ProtocolError(f"{pk.describe()} is not an OU key")
        self.pk = pk
        p = gmpy2.mpz(sk.p)
        self._p, self._p2, self._t = p, p * p, gmpy2.mpz(sk.t)
        # L(G^t mod p^2) = L(g^(p-1)) * 1: G = g^u and u*t = p-1.
        gt = gmpy2.powmod(gmpy2.mpz(pk.g) % self._p2, self._t, self._p2)
        self._gp_inv = gmpy2.invert((gt - 1) // p, p)
        self._half = p // 2

    def decrypt(self, c: int) -> int:
        """The signed plaintext in ``(-p/2, p/2]`` of ciphertext ``c``."""
        p = self._p
        x = gmpy2.powmod(gmpy2.mpz(c) % self._p2, self._t, self._p2)
        m = (x - 1) // p * self._gp_inv % p
        return int(m - p if m > self._half else m)

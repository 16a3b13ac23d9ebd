"""Additively homomorphic encryption: Paillier-DJN and Okamoto–Uchiyama on gmpy2.

* :mod:`~veil.he.paillier` — Paillier with DJN short randomness, fixed-base tables, CRT decryption.
* :mod:`~veil.he.ou` — Okamoto–Uchiyama (``n = p^2 q``) with the same structure.
* :mod:`~veil.he.encoding` — signed fixed point; :mod:`~veil.he.packing` — several values per
  ciphertext with headroom and overflow detection.
* :mod:`~veil.he.vector` — numpy-in / :class:`CiphertextArray`-out API, parallel across
  processes (:class:`Workers`); :mod:`~veil.he.buckets` — bucket sums (encrypted histograms);
  :mod:`~veil.he.serialize` — versioned bytes, no pickle.

See ``docs/he.md`` for the threat model, parameters and measured speed.
"""

from __future__ import annotations

from veil.errors import ConfigError
from veil.he import ou, paillier
from veil.he.buckets import bucket_sum, bucket_sum_groups
from veil.he.codec import decode_public_key, encode_public_key
from veil.he.encoding import FixedPoint
from veil.he.keys import PrivateKey, PublicKey, Scheme
from veil.he.packing import SlotLayout
from veil.he.parallel import Workers
from veil.he.serialize import dumps, loads
from veil.he.vector import CiphertextArray, decrypt, decrypt_ints, encrypt


def keygen(
    scheme: str | Scheme = "paillier",
    key_bits: int = 2048,
    *,
    randomness: str = "djn",
    insecure: bool = False,
) -> tuple[PublicKey, PrivateKey]:
    """Generate a key pair of ``scheme`` (``"paillier"`` or ``"ou"``) from the OS CSPRNG.

    ``key_bits`` is 2048 (default) or 3072; ``insecure=True`` allows small test-only sizes.
    ``randomness`` (Paillier only): ``"djn"`` (``k/2``-bit ``r``, default) or ``"short"``
    (``2*lambda`` bits; see :mod:`veil.he.paillier` for what that rests on).
    """
    s = Scheme.parse(scheme)
    if s is Scheme.PAILLIER:
        return paillier.keygen(key_bits, randomness=randomness, insecure=insecure)
    if randomness != "djn":
        raise ConfigError("randomness= applies to Paillier; OU always uses 2*lambda-bit r")
    return ou.keygen(key_bits, insecure=insecure)


__all__ = [
    "CiphertextArray",
    "FixedPoint",
    "PrivateKey",
    "PublicKey",
    "Scheme",
    "SlotLayout",
    "Workers",
    "bucket_sum",
    "bucket_sum_groups",
    "decode_public_key",
    "decrypt",
    "decrypt_ints",
    "dumps",
    "encode_public_key",
    "encrypt",
    "keygen",
    "loads",
]

"""Generate ``kat.json``: fixed keys + fixed randomness -> exact ciphertexts (run once).

The expected ciphertexts are computed here with textbook Python ``pow`` (not veil's fixed-base
tables), so the known-answer test checks veil's encryption against the formulas:
Paillier-DJN ``c = (1 + m*n) * h_s^r mod n^2``; OU ``c = G^m * H^r mod n``.
Usage: ``.venv/bin/python tests/data/he/make_kat.py > tests/data/he/kat.json``.
"""

from __future__ import annotations

import json
import secrets

from veil.errors import ConfigError
from veil.he import ou, paillier
from veil.he.keys import PublicKey


def _vectors(pk: PublicKey, plain: list[int]) -> list[dict[str, str]]:
    mod = pk.ct_modulus
    b = pk.plaintext_bits
    out = []
    for m in [*plain, secrets.randbits(b) - 2 ** (b - 1), 2**b - 1, -(2**b) + 1]:
        r = secrets.randbits(pk.r_bits)
        if pk.scheme.name == "PAILLIER":
            c = (1 + (m % pk.n) * pk.n) * pow(pk.h, r, mod) % mod
        else:
            c = pow(pk.g, m, mod) * pow(pk.h, r, mod) % mod
        out.append({"m": str(m), "r": hex(r), "c": hex(c)})
    return out


def main() -> None:
    cases = []
    for bits in (512, 2048):
        plain = [0, 1, -1, 42, -(2**40) + 7, 2**62]
        _, sk = paillier.keygen(bits, insecure=True)
        x = secrets.randbelow(sk.public.n - 2) + 2  # a unit with overwhelming probability
        pk2, sk2 = paillier.keypair_from_primes(sk.p, sk.q, x)
        cases.append(
            {
                "scheme": "paillier",
                "key_bits": bits,
                "p": hex(sk.p),
                "q": hex(sk.q),
                "x": hex(x),
                "r_bits": pk2.r_bits,
                "n": hex(pk2.n),
                "h": hex(pk2.h),
                "fingerprint": pk2.fingerprint.hex(),
                "vectors": _vectors(pk2, plain),
            }
        )
        pk, sk = ou.keygen(bits, insecure=True)
        while True:
            g = secrets.randbelow(pk.n - 2) + 2
            g2 = secrets.randbelow(pk.n - 2) + 2
            try:
                pk2, sk2 = ou.keypair_from_primes(sk.p, sk.q, sk.t, g, g2)
                break
            except ConfigError:  # g^(p-1) = 1 mod p^2 or not a unit: draw again
                continue
        cases.append(
            {
                "scheme": "ou",
                "key_bits": bits,
                "p": hex(sk.p),
                "q": hex(sk.q),
                "t": hex(sk.t),
                "g": hex(g),
                "g2": hex(g2),
                "r_bits": pk2.r_bits,
                "n": hex(pk2.n),
                "G": hex(pk2.g),
                "H": hex(pk2.h),
                "fingerprint": pk2.fingerprint.hex(),
                "vectors": _vectors(pk2, plain),
            }
        )
    print(json.dumps({"generator": "tests/data/he/make_kat.py", "cases": cases}, indent=1))


if __name__ == "__main__":
    main()

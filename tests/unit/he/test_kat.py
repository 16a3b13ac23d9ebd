"""Known-answer tests: fixed keys and fixed randomness give exactly the stored ciphertexts.

The vectors in ``tests/data/he/kat.json`` were computed with textbook ``pow`` by
``tests/data/he/make_kat.py``, independently of veil's fixed-base tables.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from veil.he import ou, paillier
from veil.he.engine import decryptor, encryptor, owner_encryptor
from veil.he.keys import PrivateKey, PublicKey

KAT = Path(__file__).resolve().parents[2] / "data" / "he" / "kat.json"
CASES: list[dict[str, Any]] = json.loads(KAT.read_text())["cases"]


def _keys(case: dict[str, Any]) -> tuple[PublicKey, PrivateKey]:
    h = lambda k: int(case[k], 16)  # noqa: E731
    if case["scheme"] == "paillier":
        pk, sk = paillier.keypair_from_primes(h("p"), h("q"), h("x"), r_bits=case["r_bits"])
        assert (pk.n, pk.h) == (h("n"), h("h"))
    else:
        pk, sk = ou.keypair_from_primes(
            h("p"), h("q"), h("t"), h("g"), h("g2"), r_bits=case["r_bits"]
        )
        assert (pk.n, pk.g, pk.h) == (h("n"), h("G"), h("H"))
    assert pk.key_bits == case["key_bits"]
    assert pk.fingerprint.hex() == case["fingerprint"]  # the key id on the wire is stable
    return pk, sk


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['scheme']}-{c['key_bits']}")
def test_known_answers(case: dict[str, Any]) -> None:
    pk, sk = _keys(case)
    enc, dec, own = encryptor(pk), decryptor(sk), owner_encryptor(sk)
    assert len(case["vectors"]) >= 5
    for v in case["vectors"]:
        m, r, c = int(v["m"]), int(v["r"], 16), int(v["c"], 16)
        assert enc.encrypt(m, r) == c
        assert own.encrypt(m, r) == c  # the key owner's CRT path gives the same ciphertext
        assert dec.decrypt(c) == m


def test_kat_detects_a_changed_randomness() -> None:
    pk, _ = _keys(CASES[0])
    v = CASES[0]["vectors"][3]
    assert encryptor(pk).encrypt(int(v["m"]), int(v["r"], 16) + 1) != int(v["c"], 16)

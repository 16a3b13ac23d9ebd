"""Scheme-level properties of Paillier-DJN and OU (512-bit test keys; one 2048-bit test)."""

from __future__ import annotations

import gmpy2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import veil.he as he
from veil.errors import ConfigError
from veil.he import ou, paillier
from veil.he.engine import decryptor, encryptor
from veil.he.keys import PrivateKey, PublicKey, Scheme

INT = st.integers(min_value=-(2**120), max_value=2**120)
SMALL = st.integers(min_value=-(2**40), max_value=2**40)


@settings(max_examples=25, deadline=None)
@given(a=INT, b=INT, k=SMALL)
def test_homomorphic_properties(
    keypair: tuple[PublicKey, PrivateKey], a: int, b: int, k: int
) -> None:
    pk, sk = keypair
    enc, dec = encryptor(pk), decryptor(sk)
    ca, cb = enc.encrypt(a), enc.encrypt(b)
    assert dec.decrypt(ca) == a
    assert dec.decrypt(enc.add(ca, cb)) == a + b
    assert dec.decrypt(enc.add_plain(ca, b)) == a + b
    assert dec.decrypt(enc.mul_plain(ca, k)) == a * k
    assert dec.decrypt(enc.neg(ca)) == -a
    assert dec.decrypt(enc.rerandomize(ca)) == a


def test_encryption_is_randomized(keypair: tuple[PublicKey, PrivateKey]) -> None:
    pk, sk = keypair
    enc = encryptor(pk)
    c1, c2 = enc.encrypt(7), enc.encrypt(7)
    assert c1 != c2
    assert enc.rerandomize(c1) != c1
    assert decryptor(sk).decrypt(c2) == 7


def test_plaintext_range_edges(keypair: tuple[PublicKey, PrivateKey]) -> None:
    pk, sk = keypair
    enc, dec = encryptor(pk), decryptor(sk)
    top = pk.plaintext_bound - 1
    for m in (top, -top, 0):
        assert dec.decrypt(enc.encrypt(m)) == m


def test_paillier_key_structure(paillier_keys: tuple[PublicKey, PrivateKey]) -> None:
    pk, sk = paillier_keys
    assert pk.scheme is Scheme.PAILLIER and sk.p != sk.q
    assert sk.p * sk.q == pk.n and pk.n.bit_length() == 512
    assert gmpy2.is_prime(sk.p) and gmpy2.is_prime(sk.q)
    assert sk.p.bit_length() == sk.q.bit_length() == 256
    assert sk.p % 4 == 3 and sk.q % 4 == 3 and gmpy2.gcd(sk.p - 1, sk.q - 1) == 2
    assert pk.r_bits == 256  # DJN: ceil(k/2)


def test_ou_key_structure(ou_keys: tuple[PublicKey, PrivateKey]) -> None:
    pk, sk = ou_keys
    assert pk.scheme is Scheme.OU and sk.p != sk.q
    assert sk.p * sk.p * sk.q == pk.n and pk.n.bit_length() == 512
    assert all(gmpy2.is_prime(v) for v in (sk.p, sk.q, sk.t))
    assert (sk.p - 1) % sk.t == 0
    assert pk.plaintext_bits == sk.p.bit_length() - 2


def test_key_size_policy() -> None:
    with pytest.raises(ConfigError, match="2048"):
        he.keygen("paillier", 1024)
    with pytest.raises(ConfigError):
        he.keygen("ou", 100, insecure=True)
    with pytest.raises(ConfigError, match="unknown HE scheme"):
        he.keygen("rsa")
    with pytest.raises(ConfigError, match="applies to Paillier"):
        he.keygen("ou", 512, randomness="short", insecure=True)
    pk, sk = he.keygen("paillier", 512, randomness="short", insecure=True)
    assert pk.r_bits == 160  # 2 * 80-bit level of test-size keys
    assert decryptor(sk).decrypt(encryptor(pk).encrypt(-9)) == -9


def test_keypair_from_primes_checks() -> None:
    with pytest.raises(ConfigError):
        paillier.keypair_from_primes(11, 11, 2)
    with pytest.raises(ConfigError, match="3 \\(mod 4\\)"):
        paillier.keypair_from_primes(13, 19, 2)  # 13 = 1 mod 4


def test_private_key_repr_hides_primes(paillier_keys: tuple[PublicKey, PrivateKey]) -> None:
    _, sk = paillier_keys
    assert str(sk.p) not in repr(sk)


@pytest.mark.parametrize("scheme", ["paillier", "ou"])
def test_2048_bit_keys(scheme: str) -> None:
    pk, sk = he.keygen(scheme, 2048)
    assert pk.key_bits == 2048 and pk.n.bit_length() == 2048
    if scheme == "ou":
        assert sk.p.bit_length() == 683 and pk.r_bits == 224 and sk.t.bit_length() == 224
    else:
        assert sk.p.bit_length() == sk.q.bit_length() == 1024 and pk.r_bits == 1024
    enc, dec = encryptor(pk), decryptor(sk)
    a, b = -(2**62) + 5, 2**63 - 1
    assert dec.decrypt(enc.add(enc.encrypt(a), enc.encrypt(b))) == a + b
    assert dec.decrypt(enc.mul_plain(enc.encrypt(a), -3)) == -3 * a


def test_ou_scheme_objects_reject_other_scheme(
    paillier_keys: tuple[PublicKey, PrivateKey], ou_keys: tuple[PublicKey, PrivateKey]
) -> None:
    from veil.errors import ProtocolError

    with pytest.raises(ProtocolError):
        ou.OUEncryptor(paillier_keys[0])
    with pytest.raises(ProtocolError):
        paillier.PaillierDecryptor(ou_keys[1])


@pytest.mark.slow
@pytest.mark.parametrize("scheme", ["paillier", "ou"])
def test_3072_bit_keys(scheme: str) -> None:
    pk, sk = he.keygen(scheme, 3072)
    assert pk.n.bit_length() == 3072
    assert pk.r_bits == (1536 if scheme == "paillier" else 256)
    enc, dec = encryptor(pk), decryptor(sk)
    assert dec.decrypt(enc.add(enc.encrypt(-5), enc.encrypt(2**100))) == 2**100 - 5

"""The key owner's bulk encryptors and the batched table arithmetic behind every encryption.

Oracle: the textbook formulas with Python's ``pow`` (OU ``G^m H^r mod n``, Paillier
``(1 + m n) h_s^r mod n^2``), independent of veil's fixed-base tables, CRT and digit recoding.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import veil.he as he
from veil.errors import ProtocolError
from veil.he.engine import decryptor, encryptor, owner_encryptor
from veil.he.fixedbase import (
    FixedBaseTable,
    SignedFixedBaseTable,
    bytes_digits,
    exponent_bytes,
    random_exponent_bytes,
    signed_digits,
)
from veil.he.keys import PrivateKey, PublicKey, Scheme

MOD = (1 << 521) - 1


def _textbook(pk: PublicKey, m: int, r: int) -> int:
    if pk.scheme is Scheme.OU:
        return pow(pk.g, m, pk.n) * pow(pk.h, r, pk.n) % pk.n
    n2 = pk.n * pk.n
    return (1 + (m % pk.n) * pk.n) * pow(pk.h, r, n2) % n2


def _messages(pk: PublicKey, rng: random.Random) -> list[int]:
    top = pk.plaintext_bound - 1
    ms = [0, 1, -1, top, -top, 255, -256, 2**64, -(2**63)]
    ms += [rng.randrange(-top, top + 1) for _ in range(20)]
    ms += [rng.randrange(-(2**40), 2**40) for _ in range(20)]
    lay = he.SlotLayout.for_sums(pk.plaintext_bits, 2, 2**20, 10**5)  # SecureBoost's g, h
    slots = np.array([[rng.randrange(-(2**20), 2**20 + 1) for _ in range(2)] for _ in range(20)])
    return ms + [int(v) for v in lay.pack(slots).tolist()]


def test_owner_path_equals_public_path_bit_for_bit(keypair: tuple[PublicKey, PrivateKey]) -> None:
    pk, sk = keypair
    rng = random.Random(6)
    own, pub, dec = owner_encryptor(sk), encryptor(pk), decryptor(sk)
    ms = _messages(pk, rng)
    rs = [rng.getrandbits(pk.r_bits) for _ in ms]
    rs[:3] = [0, 1, (1 << pk.r_bits) - 1]
    want = [_textbook(pk, m, r) for m, r in zip(ms, rs, strict=True)]
    assert [own.encrypt(m, r) for m, r in zip(ms, rs, strict=True)] == want
    assert [pub.encrypt(m, r) for m, r in zip(ms, rs, strict=True)] == want
    assert own.encrypt_many(ms, rs) == want  # the batched path with given randomness
    assert pub.encrypt_many(ms, rs) == want
    assert [dec.decrypt(c) for c in want] == ms


def test_owner_batches_decrypt_and_are_fresh(keypair: tuple[PublicKey, PrivateKey]) -> None:
    pk, sk = keypair
    ms = _messages(pk, random.Random(7)) * 3  # spans batches with repeated plaintexts
    dec = decryptor(sk)
    for enc in (owner_encryptor(sk), encryptor(pk)):
        cts = enc.encrypt_many(ms)
        assert [dec.decrypt(c) for c in cts] == ms
        assert len(set(cts)) == len(cts)  # fresh randomness per ciphertext, never repeated
        assert all(0 < c < pk.ct_modulus for c in cts)


def test_vector_encrypt_with_private_key_matches_public(
    ou_keys: tuple[PublicKey, PrivateKey],
) -> None:
    pk, sk = ou_keys
    lay = he.SlotLayout.for_sums(pk.plaintext_bits, 2, 2**20, 10**4)
    x = np.random.default_rng(3).integers(-(2**20), 2**20, (300, 2))
    for key in (pk, sk):
        ct = he.encrypt(key, x, layout=lay, value_bound=2**20)
        assert he.decrypt(sk, ct).tolist() == x.tolist()


def test_ou_rejects_out_of_range_inputs(ou_keys: tuple[PublicKey, PrivateKey]) -> None:
    pk, sk = ou_keys
    for enc in (owner_encryptor(sk), encryptor(pk)):
        with pytest.raises(ProtocolError, match="plaintexts"):
            enc.encrypt_many([pk.plaintext_bound])
        with pytest.raises(ProtocolError, match="noise exponents"):
            enc.encrypt_many([1, 2], [3])
        with pytest.raises(ProtocolError, match="exponents must lie"):
            enc.encrypt(1, 1 << pk.r_bits)


def test_paillier_rejects_bad_noise(paillier_keys: tuple[PublicKey, PrivateKey]) -> None:
    pk, sk = paillier_keys
    for enc in (owner_encryptor(sk), encryptor(pk)):
        with pytest.raises(ProtocolError, match="noise exponents"):
            enc.encrypt_many([1, 2], [3])
        with pytest.raises(ProtocolError, match="exponents must lie"):
            enc.encrypt_many([1], [-1])


@pytest.mark.parametrize("bits", [1, 7, 8, 221, 224, 1024])
def test_random_exponent_bytes_are_uniform_bits(bits: int) -> None:
    raw = random_exponent_bytes(4000, bits)
    assert raw.shape == (4000, (bits + 7) // 8) and raw.dtype == np.uint8
    vals = [int.from_bytes(row.tobytes(), "little") for row in raw]
    assert max(vals) < 1 << bits
    bitmat = np.unpackbits(raw, axis=1, bitorder="little")[:, :bits]
    freq = bitmat.mean(axis=0)  # each bit is a fair coin: 0.5 +- 0.008 (sd), allow 6 sd
    assert np.all(np.abs(freq - 0.5) < 0.05)
    assert len(set(vals)) > min(3900, 2**bits - 1)  # no repeats beyond chance


@settings(max_examples=40, deadline=None)
@given(w=st.integers(1, 16), es=st.lists(st.integers(0, 2**224 - 1), max_size=12))
def test_bytes_digits_are_the_windows(w: int, es: list[int]) -> None:
    k = -(-224 // w)
    d = bytes_digits(exponent_bytes(es, 224), k, w)
    assert d.shape == (len(es), k)
    assert [sum(int(x) << (w * i) for i, x in enumerate(row)) for row in d.tolist()] == es
    assert d.size == 0 or (d.min() >= 0 and d.max() < 1 << w)


def test_exponent_bytes_checks_range() -> None:
    with pytest.raises(ProtocolError):
        exponent_bytes([-1], 16)
    with pytest.raises(ProtocolError):
        exponent_bytes([1 << 16], 16)


@settings(max_examples=60, deadline=None)
@given(w=st.integers(2, 12), es=st.lists(st.integers(-(2**200), 2**200), max_size=12))
def test_signed_digits_are_balanced_and_exact(w: int, es: list[int]) -> None:
    k = -(-201 // w) + 1
    d = signed_digits(es, k, w)
    assert [sum(int(x) << (w * i) for i, x in enumerate(row)) for row in d.tolist()] == es
    assert d.size == 0 or (d.min() >= -(1 << (w - 1)) and d.max() < 1 << (w - 1))
    with pytest.raises(ProtocolError):
        signed_digits([1 << (w * (k - 1))], k, w)


def test_signed_digits_make_packed_negatives_sparse() -> None:
    # a negative low slot below a positive one: a run of ones in binary, few signed digits
    e = (5 << 51) - 3
    assert bin(e).count("1") > 45
    assert int(np.count_nonzero(signed_digits([e], 9, 8))) == 2


@settings(max_examples=30, deadline=None)
@given(
    w=st.integers(2, 12),
    es=st.lists(st.integers(-(2**300), 2**300), max_size=15),
    base=st.integers(2, 2**500),
)
def test_signed_table_matches_pow(w: int, es: list[int], base: int) -> None:
    t = SignedFixedBaseTable(base, MOD, 300, window_bits=w)  # 2**300 itself: powmod fallback
    assert t.pow_many(es) == [pow(base, e, MOD) for e in es]


def test_signed_table_errors_and_fast_paths() -> None:
    with pytest.raises(ProtocolError):
        SignedFixedBaseTable(3, MOD, 64, window_bits=1)
    with pytest.raises(ProtocolError):
        SignedFixedBaseTable(0, 15, 8)  # not invertible
    t = FixedBaseTable(3, MOD, 64, window_bits=4)
    # all-zero, zero-free and mixed columns take different branches of the row products
    es = [0, 1 << 8, (1 << 64) - 1, 0x1111_1111_1111_1111, 0x1010]
    assert t.pow_many(es) == [pow(3, e, MOD) for e in es]
    assert t.pow_many([0, 0]) == [1, 1]


def test_fresh_encryptions_serialize_without_decoding(
    ou_keys: tuple[PublicKey, PrivateKey],
) -> None:
    """``encrypt`` keeps the workers' bytes; ``dumps`` sends them as is, ``data`` decodes once."""
    pk, sk = ou_keys
    x = np.arange(-12, 12).reshape(4, 3, 2)
    lay = he.SlotLayout.for_sums(pk.plaintext_bits, 2, 64, 100)
    ct = he.encrypt(sk, x, layout=lay, value_bound=64)
    assert ct._data is None and ct.shape == (4, 3) and ct.size == 12 and len(ct) == 4
    blob = he.dumps(ct)  # no decoding needed
    assert ct._data is None
    back = he.loads(blob, pk)
    assert back.data.tolist() == ct.data.tolist()  # reading data decodes the same integers
    assert ct._payload is None and he.dumps(ct) == blob  # re-encoded from data: same frame
    assert he.decrypt(sk, ct).tolist() == x.tolist()
    with pytest.raises(ProtocolError, match="payload"):
        he.CiphertextArray.from_payload(pk, b"\x01" * 5, (2,), layout=None, bound=1)

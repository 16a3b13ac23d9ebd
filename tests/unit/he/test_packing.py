"""Packing: exact round trips, headroom checks before overflow, overflow detection on decrypt."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import veil.he as he
from veil.errors import ConfigError, DataError, ProtocolError
from veil.he import SlotLayout
from veil.he.engine import encryptor
from veil.he.keys import PrivateKey, PublicKey


@settings(max_examples=60, deadline=None)
@given(
    slots=st.integers(1, 6),
    bits=st.integers(10, 70),
    data=st.data(),
)
def test_pack_unpack_roundtrip(slots: int, bits: int, data: st.DataObject) -> None:
    lay = SlotLayout(slots, bits, guard_bits=4)
    cap = lay.capacity
    vals = data.draw(st.lists(st.integers(-cap, cap), min_size=slots, max_size=slots))
    v = np.array(vals, dtype=object).reshape(1, slots)
    assert lay.unpack(lay.pack(v)).tolist() == v.tolist()


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_packed_sums_are_slotwise(data: st.DataObject) -> None:
    lay = SlotLayout.for_sums(500, 3, value_bound=1000, max_terms=16, guard_bits=2)
    rows = data.draw(st.integers(1, 16))
    v = np.array(
        data.draw(st.lists(st.integers(-1000, 1000), min_size=3 * rows, max_size=3 * rows)),
        dtype=np.int64,
    ).reshape(rows, 3)
    total = sum(int(p) for p in lay.pack(v))
    assert lay.unpack(np.array([total], dtype=object))[0].tolist() == v.sum(0).tolist()


def test_for_sums_width_and_fit() -> None:
    lay = SlotLayout.for_sums(681, 2, value_bound=2**20, max_terms=100_000)
    assert lay.slot_bits == (2**20 * 100_000).bit_length() + 1 + 8
    assert lay.capacity >= 2**20 * 100_000
    assert SlotLayout.max_slots(681, 2**20, 100_000) == 681 // lay.slot_bits
    with pytest.raises(ConfigError, match="at most"):
        SlotLayout.for_sums(681, 20, value_bound=2**20, max_terms=100_000)
    with pytest.raises(ConfigError):
        SlotLayout(0, 10)


def test_pack_refuses_values_above_capacity() -> None:
    lay = SlotLayout(2, 12, guard_bits=2)
    with pytest.raises(DataError, match="capacity"):
        lay.pack(np.array([[lay.capacity + 1, 0]]))
    with pytest.raises(DataError, match="last axis"):
        lay.pack(np.array([[1, 2, 3]]))


def test_unpack_detects_guard_and_top_carry() -> None:
    lay = SlotLayout(2, 12, guard_bits=3)
    over = lay.capacity + 5  # inside the guard zone
    with pytest.raises(ProtocolError, match="slot overflow"):
        lay.unpack(np.array([over], dtype=object))
    with pytest.raises(ProtocolError, match="top slot"):
        lay.unpack(np.array([1 << 30], dtype=object))
    with pytest.raises(ProtocolError, match="slot overflow"):
        lay.unpack(np.array([100], dtype=object), bound=99)


def test_overflow_refused_before_it_happens(keypair: tuple[PublicKey, PrivateKey]) -> None:
    pk, sk = keypair
    lay = SlotLayout.for_sums(pk.plaintext_bits, 2, value_bound=100, max_terms=4)
    ct = he.encrypt(pk, np.full((8, 2), 100), layout=lay, value_bound=100)
    ok = ct[:4].sum()  # 4 terms: allowed
    assert he.decrypt(sk, ok).tolist() == [400, 400]
    with pytest.raises(ProtocolError, match="could overflow"):
        ct.sum()  # 8 terms > max_terms (up to the guard-free capacity)
    with pytest.raises(ProtocolError, match="could overflow"):
        he.bucket_sum(ct, np.zeros(8, np.int64), 2)
    with pytest.raises(ProtocolError, match="could overflow"):
        ct.mul(10**6)


def test_value_bound_must_fit_the_layout(keypair: tuple[PublicKey, PrivateKey]) -> None:
    pk, _ = keypair
    lay = SlotLayout.for_sums(pk.plaintext_bits, 2, value_bound=100, max_terms=4)
    with pytest.raises(ConfigError, match="value_bound"):
        he.encrypt(pk, np.zeros((3, 2), np.int64), layout=lay)  # int64 range > capacity
    with pytest.raises(DataError, match="exceeds value_bound"):
        he.encrypt(pk, np.full((3, 2), 101), layout=lay, value_bound=100)


def test_overflow_detected_on_decrypt(keypair: tuple[PublicKey, PrivateKey]) -> None:
    """A ciphertext whose slot exceeds the capacity (bypassing the bound) is refused."""
    pk, sk = keypair
    lay = SlotLayout(2, 40, guard_bits=8)
    enc = encryptor(pk)
    raw = enc.encrypt((lay.capacity + 1000) + (5 << 40))  # slot 0 in the guard zone
    ct = he.CiphertextArray(pk, np.array([raw], dtype=object), layout=lay, bound=lay.capacity)
    with pytest.raises(ProtocolError, match="slot overflow"):
        he.decrypt(sk, ct)
    good = he.CiphertextArray(
        pk, np.array([enc.encrypt(-3 + (5 << 40))], dtype=object), layout=lay, bound=10
    )
    assert he.decrypt(sk, good).tolist() == [[-3, 5]]


def test_unpacked_bound_checked_on_decrypt(keypair: tuple[PublicKey, PrivateKey]) -> None:
    pk, sk = keypair
    raw = encryptor(pk).encrypt(10**6)
    ct = he.CiphertextArray(pk, np.array([raw], dtype=object), layout=None, bound=1000)
    with pytest.raises(ProtocolError, match="exceeds the ciphertext's bound"):
        he.decrypt(sk, ct)

"""Serialization: exact round trips and every refusal case names its reason."""

from __future__ import annotations

import struct

import numpy as np
import pytest

import veil.he as he
from veil.errors import ProtocolError
from veil.he import SlotLayout
from veil.he.keys import PrivateKey, PublicKey
from veil.he.serialize import _HEAD


def _ct(pk: PublicKey) -> he.CiphertextArray:
    lay = SlotLayout.for_sums(pk.plaintext_bits, 2, 1000, 10)
    return he.encrypt(pk, np.arange(12).reshape(3, 2, 2) - 6, layout=lay, value_bound=1000)


def test_roundtrip(keypair: tuple[PublicKey, PrivateKey]) -> None:
    pk, sk = keypair
    ct = _ct(pk)
    blob = he.dumps(ct)
    back = he.loads(blob, he.decode_public_key(he.encode_public_key(pk)))
    assert back.shape == (3, 2) and back.layout == ct.layout and back.bound == ct.bound
    assert [int(c) for c in back.data.flat] == [int(c) for c in ct.data.flat]
    assert np.array_equal(he.decrypt(sk, back), np.arange(12).reshape(3, 2, 2) - 6)
    reals = he.encrypt(pk, np.array([0.25, -1.5]), frac_bits=8, value_bound=512)
    assert he.decrypt(sk, he.loads(he.dumps(reals), pk)).tolist() == [0.25, -1.5]
    scalar = he.loads(he.dumps(reals.sum()), pk)
    assert scalar.shape == () and he.decrypt(sk, scalar) == -1.25
    assert he.loads(he.dumps(reals[:0]), pk).shape == (0,)


def test_public_key_codec(keypair: tuple[PublicKey, PrivateKey]) -> None:
    pk, _ = keypair
    blob = he.encode_public_key(pk)
    assert he.decode_public_key(blob) == pk
    with pytest.raises(ProtocolError, match="trailing"):
        he.decode_public_key(blob + b"\0")
    with pytest.raises(ProtocolError, match="magic"):
        he.decode_public_key(b"XXXX" + blob[4:])
    with pytest.raises(ProtocolError, match="truncated"):
        he.decode_public_key(blob[:-3])
    with pytest.raises(ProtocolError):
        he.decode_public_key(blob[:5] + bytes([9]) + blob[6:])  # unknown scheme id
    with pytest.raises(ProtocolError, match="randomness"):
        he.decode_public_key(blob[:8] + struct.pack(">H", 8) + blob[10:])  # 8-bit r: too weak
    with pytest.raises(ProtocolError, match="bits"):
        he.decode_public_key(blob[:6] + struct.pack(">H", 600) + blob[8:])  # size mismatch


def test_refuses_other_key(keypair: tuple[PublicKey, PrivateKey]) -> None:
    pk, _ = keypair
    other, _ = he.keygen(pk.scheme, 512, insecure=True)
    with pytest.raises(ProtocolError, match="under key .* not the expected"):
        he.loads(he.dumps(_ct(pk)), other, sender="ext1")


def _with_payload(pk: PublicKey, values: list[int]) -> bytes:
    ct = he.encrypt(pk, np.zeros(len(values), np.int64))
    blob = he.dumps(ct)
    w = pk.ct_bytes
    body = b"".join(int(v).to_bytes(w, "big") for v in values)
    return blob[: len(blob) - len(values) * w] + body


def test_refuses_out_of_range_and_non_units(keypair: tuple[PublicKey, PrivateKey]) -> None:
    pk, sk = keypair
    good = int(he.encrypt(pk, np.array([1])).data[0])
    with pytest.raises(ProtocolError, match="out of range"):
        he.loads(_with_payload(pk, [good, 0]), pk)
    too_big = pk.ct_modulus + 5
    if too_big < 1 << (8 * pk.ct_bytes):
        with pytest.raises(ProtocolError, match="out of range"):
            he.loads(_with_payload(pk, [too_big, good]), pk)
    with pytest.raises(ProtocolError, match="ciphertext from ext2 1 is not a unit"):
        he.loads(_with_payload(pk, [good, sk.p * 3]), pk, sender="ext2")


def test_refuses_malformed_frames(keypair: tuple[PublicKey, PrivateKey]) -> None:
    pk, _ = keypair
    blob = he.dumps(_ct(pk))
    with pytest.raises(ProtocolError, match="truncated"):
        he.loads(blob[:10], pk)
    with pytest.raises(ProtocolError, match="payload bytes"):
        he.loads(blob[:-1], pk)
    with pytest.raises(ProtocolError, match="payload bytes"):
        he.loads(blob + b"\0" * pk.ct_bytes, pk)
    with pytest.raises(ProtocolError, match="bad magic"):
        he.loads(b"NOPE" + blob[4:], pk)
    with pytest.raises(ProtocolError, match="version"):
        he.loads(blob[:4] + b"\x07" + blob[5:], pk)
    with pytest.raises(ProtocolError, match="scheme"):
        he.loads(blob[:5] + bytes([3 - int(pk.scheme)]) + blob[6:], pk)
    with pytest.raises(ProtocolError, match="bytes >"):
        he.loads(blob, pk, max_bytes=100)
    # a layout that does not fit the key
    fields = list(_HEAD.unpack_from(blob))
    fields[-2] = pk.plaintext_bits  # slot_bits: 2 slots of the whole plaintext
    with pytest.raises(ProtocolError, match="layout"):
        he.loads(_HEAD.pack(*fields) + blob[_HEAD.size :], pk)
    # a bound above the capacity
    fields = list(_HEAD.unpack_from(blob))
    blen = fields[8]
    big = (1 << (8 * blen)) - 1
    with pytest.raises(ProtocolError, match="capacity"):
        he.loads(blob[: _HEAD.size] + big.to_bytes(blen, "big") + blob[_HEAD.size + blen :], pk)
    # the shape disagrees with the payload
    off = _HEAD.size + blen
    bad_shape = blob[:off] + struct.pack(">Q", 4) + blob[off + 8 :]
    with pytest.raises(ProtocolError, match="payload bytes"):
        he.loads(bad_shape, pk)

"""Masks, sealing and message codecs: known answers and refusal of malformed input."""

from __future__ import annotations

import contextlib
import hashlib

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from veil.core.wire import encode_value
from veil.errors import ConfigError, PeerError, ProtocolError
from veil.fl.secagg import SecAggConfig, masks
from veil.fl.secagg.messages import (
    Abort,
    AdvertiseKeys,
    EncryptedShares,
    KeyDirectory,
    MaskedInput,
    UnmaskRequest,
    UnmaskResponse,
    decode_message,
    encode_message,
)


def test_mask_is_aes_ctr_keystream() -> None:
    """Known answer: the mask is AES-256(seed) applied to big-endian counter blocks starting at
    SHA-256(domain)[:16], read as little-endian uint64 (checked with AES-ECB block by block)."""
    seed, domain = bytes(range(32)), b"test-domain"
    got = masks.expand_mask(seed, 4, np.dtype(np.uint64), domain)
    ctr = int.from_bytes(hashlib.sha256(domain).digest()[:16], "big")
    ecb = Cipher(algorithms.AES(seed), modes.ECB()).encryptor()
    stream = b"".join(ecb.update(((ctr + i) % 2**128).to_bytes(16, "big")) for i in range(2))
    assert got.tolist() == np.frombuffer(stream, dtype="<u8").tolist()
    other = masks.expand_mask(seed, 4, np.dtype(np.uint64), b"other")
    assert not np.array_equal(got, other)
    assert masks.expand_mask(seed, 8, np.dtype(np.uint32), domain).tobytes() == stream


def test_agreement_is_symmetric_and_bound_to_info() -> None:
    a, b = masks.new_private_key(), masks.new_private_key()
    pa, pb = masks.public_bytes(a), masks.public_bytes(b)
    assert masks.agree(a, pb, b"x", peer="b") == masks.agree(b, pa, b"x", peer="a")
    assert masks.agree(a, pb, b"x", peer="b") != masks.agree(a, pb, b"y", peer="b")
    with pytest.raises(PeerError, match="public key") as info:
        masks.agree(a, b"\x00" * 32, b"x", peer="mallory")  # low-order point
    assert info.value.party == "mallory"
    with pytest.raises(PeerError, match="bytes"):
        masks.agree(a, b"\x01" * 31, b"x", peer="mallory")


def test_seal_binds_associated_data() -> None:
    key = bytes(32)
    blob = masks.seal(key, b"share", b"r|a|b")
    assert masks.open_sealed(key, blob, b"r|a|b", sender="a") == b"share"
    with pytest.raises(PeerError, match="authentication"):
        masks.open_sealed(key, blob, b"r|a|c", sender="a")
    with pytest.raises(PeerError, match="truncated"):
        masks.open_sealed(key, blob[:10], b"r|a|b", sender="a")


def test_messages_roundtrip() -> None:
    msgs = [
        AdvertiseKeys(b"e" * 32, b"m" * 32, 7),
        KeyDirectory(7, {"a": (b"e" * 32, b"m" * 32)}),
        EncryptedShares({"a": b"box"}, b"c" * 32),
        UnmaskRequest(("a", "b"), ("c",)),
    ]
    for m in msgs:
        assert decode_message(encode_message(m), type(m), max_bytes=1 << 16) == m
    y = np.arange(5, dtype=np.uint64)
    back = decode_message(encode_message(MaskedInput(y)), MaskedInput, max_bytes=1 << 16)
    assert isinstance(back, MaskedInput) and back.y.tolist() == y.tolist()
    resp = UnmaskResponse({"a": np.zeros(9, dtype=np.uint64)}, {})
    got = decode_message(encode_message(resp), UnmaskResponse, max_bytes=1 << 16, share_len=9)
    assert isinstance(got, UnmaskResponse) and list(got.seed_shares) == ["a"]
    abort = decode_message(encode_message(Abort("why")), AdvertiseKeys, max_bytes=1 << 16)
    assert abort == Abort("why")


@pytest.mark.parametrize(
    "obj,match",
    [
        ({"t": "keys", "enc_pk": b"x" * 31, "mask_pk": b"m" * 32, "dim": 1}, "32 bytes"),
        ({"t": "keys", "enc_pk": b"x" * 32, "mask_pk": b"m" * 32, "dim": -1}, "non-negative"),
        ({"t": "keys", "enc_pk": b"x" * 32, "dim": 1}, "missing"),
        ({"t": "shares", "sealed": {"a": b"x" * 5000}, "commit": b"c" * 32}, "over the limit"),
        ({"t": "unmask", "survivors": ["a", "a"], "dropped": []}, "repeats"),
        ({"t": "masked", "y": [1, 2]}, "array"),
        ({"t": "nope"}, "expected"),
        ([1, 2], "not a map"),
    ],
)
def test_malformed_messages_are_refused(obj: object, match: str) -> None:
    kind = {
        "keys": AdvertiseKeys,
        "shares": EncryptedShares,
        "unmask": UnmaskRequest,
        "masked": MaskedInput,
    }.get(obj.get("t") if isinstance(obj, dict) else "", AdvertiseKeys)  # type: ignore[arg-type]
    with pytest.raises(ProtocolError, match=match):
        decode_message(encode_value(obj), kind, max_bytes=1 << 16)  # type: ignore[arg-type]


def test_share_vectors_are_validated() -> None:
    bad = encode_value({"t": "reveal", "seed": {"a": np.zeros(8, dtype=np.uint64)}, "key": {}})
    with pytest.raises(ProtocolError, match="length 9"):
        decode_message(bad, UnmaskResponse, max_bytes=1 << 16, share_len=9)
    big = np.full(9, 2**31 - 1, dtype=np.uint64)
    bad = encode_value({"t": "reveal", "seed": {"a": big}, "key": {}})
    with pytest.raises(ProtocolError, match="outside the field"):
        decode_message(bad, UnmaskResponse, max_bytes=1 << 16, share_len=9)
    with pytest.raises(ProtocolError, match="over the limit"):
        decode_message(b"\x00" * 100, AdvertiseKeys, max_bytes=10)


def test_config_validation() -> None:
    with pytest.raises(ConfigError):
        SecAggConfig(max_weight=0.0)
    with pytest.raises(ConfigError):
        SecAggConfig(phase_timeout=0)
    with pytest.raises(ConfigError, match="at least 2"):
        SecAggConfig().plan("r", ["only"])
    with pytest.raises(ConfigError, match="unique"):
        SecAggConfig().plan("r", ["a", "a", "b"])


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=300),
        st.dictionaries(
            st.sampled_from(["t", "enc_pk", "mask_pk", "dim", "sealed", "commit", "seed", "key"]),
            st.one_of(
                st.sampled_from(["keys", "shares", "reveal", "abort"]),
                st.binary(max_size=40),
                st.integers(-(2**63), 2**63 - 1),
                st.dictionaries(st.text(max_size=3), st.binary(max_size=8), max_size=3),
            ),
            max_size=6,
        ).map(encode_value),
    )
)
def test_garbage_never_escapes_as_another_error(data: bytes) -> None:
    for kind in (AdvertiseKeys, EncryptedShares, UnmaskResponse):
        with contextlib.suppress(ProtocolError):
            decode_message(data, kind, max_bytes=1 << 16, share_len=9)

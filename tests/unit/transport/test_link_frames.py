"""The link frame format, sans I/O: chunking, reassembly, and refusal of every malformed input."""

from __future__ import annotations

import pickle
import struct

import numpy as np
import pytest

from veil.core import wire
from veil.transport import frames as fr
from veil.transport.frames import FrameError, Kind, Reassembler, encode_message

CHUNK = fr.MIN_CHUNK_BYTES


def _feed_all(asm: Reassembler, frames: list[bytes]) -> list[fr.Message]:
    out = [m for f in frames if (m := asm.feed(f)) is not None]
    return out


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 5])
def test_bytes_roundtrip(size: int) -> None:
    data = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
    frames = list(encode_message(Kind.BYTES, "k/1", b"", memoryview(data), CHUNK))
    assert len(frames) == max(1, -(-size // CHUNK))
    assert all(len(f) <= CHUNK + fr.FRAME_OVERHEAD for f in frames)
    msgs = _feed_all(Reassembler(1 << 20), frames)
    assert len(msgs) == 1
    assert msgs[0] == fr.Message(Kind.BYTES, "k/1", data, size)


@pytest.mark.parametrize(
    "arr",
    [
        np.arange(5000, dtype=np.float64).reshape(50, 100),  # spans several chunks
        np.asarray(np.int8(-3)),
        np.zeros((0, 7), dtype=np.uint16),
        np.ones(CHUNK, dtype=np.bool_),
    ],
    ids=["multi-chunk", "0-d", "empty", "bool"],
)
def test_array_roundtrip_into_one_buffer(arr: np.ndarray) -> None:
    header = wire.array_header(arr)
    body = arr.reshape(-1).view(np.uint8).data
    frames = list(encode_message(Kind.ARRAY, "a", header, body, CHUNK))
    asm = Reassembler(1 << 30)
    msgs = _feed_all(asm, frames)
    assert len(msgs) == 1 and asm.in_progress == 0
    got = msgs[0].item
    assert got.dtype == arr.dtype and got.shape == arr.shape
    np.testing.assert_array_equal(got, arr)
    assert msgs[0].nbytes == len(header) + arr.nbytes


def test_reserve_called_before_allocation() -> None:
    seen: list[int] = []
    asm = Reassembler(1 << 20, reserve=seen.append)
    frames = list(encode_message(Kind.BYTES, "k", b"", memoryview(b"x" * 10000), CHUNK))
    asm.feed(frames[0])
    assert seen == [10000] and asm.in_progress == 10000


def test_reserve_refusal_propagates() -> None:
    def refuse(n: int) -> None:
        raise FrameError(f"no room for {n}")

    asm = Reassembler(1 << 20, reserve=refuse)
    with pytest.raises(FrameError, match="no room for 5"):
        asm.feed(fr.control_frame(Kind.BYTES, "k", b"hello"))


def test_control_frames() -> None:
    asm = Reassembler(100)
    assert asm.feed(fr.control_frame(Kind.HELLO, "bob", b"alice")) == fr.Message(
        Kind.HELLO, "bob", "alice", 0
    )
    assert asm.feed(fr.control_frame(Kind.GOODBYE)) == fr.Message(Kind.GOODBYE, "", None, 0)
    msg = asm.feed(fr.abort_frame("é" * 5000))
    assert msg is not None and msg.kind is Kind.ABORT
    assert len(msg.item.encode()) <= fr.MAX_REASON_BYTES and msg.item.startswith("é")


def _frame(
    kind: int = Kind.BYTES,
    key: bytes = b"k",
    index: int = 0,
    count: int = 1,
    total: int | None = None,
    payload: bytes = b"abc",
    magic: bytes = fr.MAGIC,
    version: int = fr.VERSION,
    key_len: int | None = None,
) -> bytes:
    kl = len(key) if key_len is None else key_len
    t = len(payload) if total is None else total
    return fr.HEADER.pack(magic, version, kind, kl, index, count, t) + key + payload


PICKLE = pickle.dumps({"evil": print}, protocol=5)


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (b"", "truncated frame"),
        (b"\x00" * 10, "truncated frame"),
        (b"garbage" * 10, "bad magic"),
        (PICKLE, "bad magic"),
        (_frame(magic=b"VLA1"), "bad magic"),
        (_frame(version=2), "version 2 unsupported"),
        (_frame(kind=9), "unknown frame kind 9"),
        (_frame(key_len=5000), "over the limit"),
        (_frame(key=b"\xff\xfe"), "not UTF-8"),
        (_frame(key=b"k", key_len=2, payload=b""), "truncated frame: it ends inside its key"),
        (_frame(total=1 << 40), "oversized message"),
        (_frame(total=10), "truncated message"),
        (_frame(total=2), "overruns"),
        (_frame(index=3, count=4), "first chunk never came"),
        (_frame(count=0), "0 chunks"),
        (_frame(kind=Kind.HELLO, count=2, total=10), "single complete chunk"),
        (_frame(kind=Kind.ARRAY, payload=PICKLE), "bad array header"),
        (
            _frame(
                kind=Kind.ARRAY,
                payload=wire.array_header(np.zeros(4, np.int64)) + b"\x00" * 8,
            ),
            "array header declares",
        ),
    ],
    ids=[
        "empty",
        "short",
        "garbage",
        "pickle",
        "array-magic",
        "version",
        "kind",
        "key-too-long",
        "key-not-utf8",
        "key-truncated",
        "oversized",
        "body-short",
        "body-long",
        "orphan-chunk",
        "zero-chunks",
        "hello-multi",
        "pickle-in-array",
        "array-size-mismatch",
    ],
)
def test_malformed_frames_refused(frame: bytes, reason: str) -> None:
    with pytest.raises(FrameError, match=reason):
        Reassembler(1 << 20).feed(frame)


def test_continuation_must_match() -> None:
    data = memoryview(b"z" * (3 * CHUNK))
    f0, f1, f2 = encode_message(Kind.BYTES, "k", b"", data, CHUNK)
    asm = Reassembler(1 << 20)
    asm.feed(f0)
    with pytest.raises(FrameError, match="does not continue"):
        asm.feed(f2)  # skipped a chunk
    asm = Reassembler(1 << 20)
    asm.feed(f0)
    with pytest.raises(FrameError, match="does not continue"):
        asm.feed(fr.control_frame(Kind.BYTES, "other", b"x"))  # a new message mid-way
    asm = Reassembler(1 << 20)
    asm.feed(f0)
    bad_total = bytearray(f1)
    struct.pack_into("<Q", bad_total, 16, 7)
    with pytest.raises(FrameError, match="declares total"):
        asm.feed(bytes(bad_total))
    asm = Reassembler(1 << 20)
    asm.feed(f0)
    empty_mid = fr.HEADER.pack(fr.MAGIC, fr.VERSION, Kind.BYTES, 0, 1, 3, 3 * CHUNK)
    with pytest.raises(FrameError, match="empty chunk"):
        asm.feed(empty_mid)


def test_oversized_array_refused_before_allocating() -> None:
    header = wire.array_header(np.zeros(1, np.float64))
    # a header claiming 2^40 elements: refused from the declared total, no allocation attempted
    huge = bytearray(header)
    struct.pack_into("<Q", huge, 8, 1 << 40)
    frame = _frame(kind=Kind.ARRAY, total=len(huge) + (8 << 40), payload=bytes(huge))
    with pytest.raises(FrameError, match="oversized"):
        Reassembler(1 << 30).feed(frame)


def test_encode_refuses_long_key_and_small_chunks() -> None:
    with pytest.raises(Exception, match="key longer"):
        list(encode_message(Kind.BYTES, "k" * 600, b"", memoryview(b""), CHUNK))
    with pytest.raises(ValueError, match="at least"):
        list(encode_message(Kind.BYTES, "k", b"", memoryview(b""), 100))

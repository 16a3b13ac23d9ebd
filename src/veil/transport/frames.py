"""The link frame format: how messages travel on one long-lived stream between two parties.

Sans-I/O: :func:`encode_message` turns a message into frames, :class:`Reassembler` turns frames
back into messages; neither touches a socket, so both are unit-tested on their own.

Frame layout (little-endian, one gRPC message per frame)::

    magic    4s   b"VLF1"
    version  u8   1
    kind     u8   HELLO=1 BYTES=2 ARRAY=3 GOODBYE=4 ABORT=5
    key_len  u16  length of the UTF-8 key that follows (0 on continuation chunks)
    index    u32  chunk index within the message, 0-based
    count    u32  number of chunks of the message
    total    u64  payload length of the whole message (all chunks together)
    key      key_len bytes
    payload  the chunk's bytes

A message of ``total`` bytes goes as ``count`` frames; frame 0 carries the key. An ARRAY payload
is a :mod:`veil.core.wire` array frame (header + raw C-order bytes), and its frame 0 always holds
the whole array header, so the receiver allocates the final array once, from frame 0, and copies
every chunk straight into it: a large array costs 1x its size at the receiver, never 2x.

The receiver checks everything against limits before allocating: bad magic, unknown version or
kind, a key that is too long or not UTF-8, a declared total over ``max_message_bytes``, chunks
out of order, a body longer or shorter than declared, or an array header that does not match the
declared total all raise :class:`FrameError`. Nothing is ever unpickled: payloads are raw bytes.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from veil.core import wire
from veil.errors import ProtocolError
from veil.transport.base import MAX_KEY_BYTES

MAGIC = b"VLF1"
VERSION = 1
HEADER = struct.Struct("<4sBBHIIQ")
#: Bytes a frame adds around its payload, at most (header + longest key).
FRAME_OVERHEAD = HEADER.size + MAX_KEY_BYTES
#: Longest reason an ABORT frame carries.
MAX_REASON_BYTES = 4096
#: Smallest chunk size accepted: frame 0 of an array must hold the whole array header.
MIN_CHUNK_BYTES = 4096


class Kind(enum.IntEnum):
    """What a frame carries."""

    HELLO = 1  # first frame of a stream: key = the party addressed, payload = the sender's name
    BYTES = 2
    ARRAY = 3
    GOODBYE = 4  # clean end of the stream: the sender finished its job
    ABORT = 5  # the sender failed; payload = the reason (UTF-8)


class FrameError(ProtocolError):
    """A peer sent a frame that is malformed, out of order or over a limit."""


# ---------------------------------------------------------------------------------- sending
def _header(kind: Kind, key: bytes, index: int, count: int, total: int) -> bytes:
    return HEADER.pack(MAGIC, VERSION, kind, len(key), index, count, total) + key


def control_frame(kind: Kind, key: str = "", payload: bytes = b"") -> bytes:
    """A one-frame message (HELLO, GOODBYE, ABORT, or a small BYTES message)."""
    k = key.encode()
    return _header(kind, k, 0, 1, len(payload)) + payload


def abort_frame(reason: str) -> bytes:
    """An ABORT frame carrying ``reason`` (truncated to :data:`MAX_REASON_BYTES`)."""
    data = reason.encode("utf-8", "replace")[:MAX_REASON_BYTES]
    return control_frame(Kind.ABORT, "", data.decode("utf-8", "ignore").encode())


def encode_message(
    kind: Kind, key: str, head: bytes, body: memoryview, chunk_bytes: int
) -> Iterator[bytes]:
    """Yield the frames of one message whose payload is ``head + body``.

    Each frame holds at most ``chunk_bytes`` payload bytes. ``head`` (the array header, or empty)
    must fit in the first chunk; ``body`` is sliced as memoryviews, so only one chunk of it is
    copied (into the frame) at a time, never the whole message.
    """
    if chunk_bytes < MIN_CHUNK_BYTES:
        raise ValueError(f"chunk_bytes must be at least {MIN_CHUNK_BYTES}")
    if len(head) > chunk_bytes:
        raise ValueError("the head of a message must fit in one chunk")
    k = key.encode()
    if len(k) > MAX_KEY_BYTES:
        raise ProtocolError(f"message key longer than {MAX_KEY_BYTES} bytes: {key[:40]!r}...")
    body = body.cast("B") if body.format != "B" or body.ndim != 1 else body
    total = len(head) + len(body)
    count = max(1, -(-total // chunk_bytes))
    first = chunk_bytes - len(head)
    yield b"".join((_header(kind, k, 0, count, total), head, body[:first]))
    off = first
    for index in range(1, count):
        yield b"".join((_header(kind, b"", index, count, total), body[off : off + chunk_bytes]))
        off += chunk_bytes


# -------------------------------------------------------------------------------- receiving
@dataclass(frozen=True)
class Message:
    """A complete message out of the reassembler.

    ``item`` is ``bytes`` (BYTES), an ndarray (ARRAY), the sender's name (HELLO), the reason
    (ABORT) or ``None`` (GOODBYE). ``nbytes`` is its payload size as counted by link stats.
    """

    kind: Kind
    key: str
    item: Any
    nbytes: int


@dataclass
class _Partial:
    kind: Kind
    key: str
    count: int
    total: int
    next_index: int
    filled: int
    raw: np.ndarray[Any, Any] | None  # ARRAY: preallocated bytes of the final array
    body_offset: int  # ARRAY: length of the wire array header (not copied into raw)
    dtype: np.dtype[Any] | None
    shape: tuple[int, ...]
    parts: list[bytes]  # BYTES: collected chunks


class Reassembler:
    """Turns the frames of one stream back into messages, enforcing the limits.

    Parameters
    ----------
    max_message_bytes:
        Largest ``total`` a message may declare; larger ones are refused before allocating.
    reserve:
        Called with ``total`` when a message starts (before allocating); raises
        :class:`FrameError` to refuse it (the link's per-peer pending-bytes cap).
    """

    def __init__(self, max_message_bytes: int, reserve: Any = None) -> None:
        self.max_message_bytes = max_message_bytes
        self._reserve = reserve
        self._partial: _Partial | None = None

    @property
    def in_progress(self) -> int:
        """Bytes reserved for a message not yet complete (0 when between messages)."""
        return self._partial.total if self._partial is not None else 0

    def feed(self, frame: bytes) -> Message | None:
        """Consume one frame; return the message it completes, if any."""
        mv = memoryview(frame)
        if len(mv) < HEADER.size:
            raise FrameError(f"truncated frame: {len(mv)} bytes, a header needs {HEADER.size}")
        magic, version, kind_code, key_len, index, count, total = HEADER.unpack_from(mv, 0)
        if magic != MAGIC:
            raise FrameError(
                f"not a veil frame (bad magic {bytes(magic)!r}): the peer does not speak veil's "
                "link protocol"
            )
        if version != VERSION:
            raise FrameError(f"frame version {version} unsupported (this veil speaks {VERSION})")
        try:
            kind = Kind(kind_code)
        except ValueError:
            raise FrameError(f"unknown frame kind {kind_code}") from None
        if key_len > MAX_KEY_BYTES:
            raise FrameError(f"frame key of {key_len} bytes is over the limit {MAX_KEY_BYTES}")
        if len(mv) < HEADER.size + key_len:
            raise FrameError("truncated frame: it ends inside its key")
        payload = mv[HEADER.size + key_len :]
        p = self._partial
        if p is None:
            if index != 0:
                raise FrameError(f"chunk {index} of a message whose first chunk never came")
            try:
                key = bytes(mv[HEADER.size : HEADER.size + key_len]).decode("utf-8")
            except UnicodeDecodeError:
                raise FrameError("frame key is not UTF-8") from None
            return self._start(kind, key, count, total, payload)
        if key_len != 0 or kind != p.kind or index != p.next_index or count != p.count:
            raise FrameError(
                f"chunk {index}/{count} of kind {kind.name} does not continue the {p.kind.name} "
                f"message {p.key!r} (expected chunk {p.next_index}/{p.count})"
            )
        if total != p.total:
            raise FrameError(f"chunk declares total {total}, the message started with {p.total}")
        return self._add(p, payload)

    # ------------------------------------------------------------------------------ internals
    def _start(
        self, kind: Kind, key: str, count: int, total: int, payload: memoryview
    ) -> Message | None:
        if count < 1:
            raise FrameError("frame declares a message of 0 chunks")
        if kind in (Kind.HELLO, Kind.GOODBYE, Kind.ABORT):
            if count != 1 or len(payload) != total:
                raise FrameError(f"{kind.name} frame must be a single complete chunk")
            if total > MAX_REASON_BYTES:
                raise FrameError(f"{kind.name} frame longer than {MAX_REASON_BYTES} bytes")
            text = bytes(payload).decode("utf-8", "replace")
            item = None if kind is Kind.GOODBYE else text
            return Message(kind, key, item, 0)
        if total > self.max_message_bytes:
            raise FrameError(
                f"oversized message: declares {total} bytes, the limit is "
                f"{self.max_message_bytes} (max_message_bytes)"
            )
        if self._reserve is not None:
            self._reserve(total)
        if kind is Kind.BYTES:
            p = _Partial(kind, key, count, total, 0, 0, None, 0, None, (), [])
            return self._add(p, payload)
        # ARRAY: frame 0 holds the complete wire array header
        try:
            dtype, shape, hlen = wire.parse_array_header(payload)
        except ProtocolError as exc:
            raise FrameError(f"bad array header: {exc}") from None
        n = 1
        for s in shape:
            n *= s
        if hlen + n * dtype.itemsize != total:
            raise FrameError(
                f"array header declares shape {shape} dtype {dtype} ({n * dtype.itemsize} bytes) "
                f"but the message declares {total - hlen} body bytes"
            )
        raw = np.empty(n * dtype.itemsize, dtype=np.uint8)
        p = _Partial(kind, key, count, total, 0, hlen, raw, hlen, dtype, shape, [])
        return self._add(p, payload[hlen:], first=True)

    def _add(self, p: _Partial, payload: memoryview, *, first: bool = False) -> Message | None:
        n = len(payload)
        if p.filled + n > p.total:
            raise FrameError(f"message {p.key!r} overruns its declared length of {p.total} bytes")
        last = p.next_index == p.count - 1
        if n == 0 and not last and not first:
            raise FrameError(f"empty chunk {p.next_index} in the middle of message {p.key!r}")
        if p.raw is not None:
            start = p.filled - p.body_offset
            p.raw[start : start + n] = np.frombuffer(payload, dtype=np.uint8)
        else:
            p.parts.append(bytes(payload))
        p.filled += n
        p.next_index += 1
        if not last:
            self._partial = p
            return None
        self._partial = None
        if p.filled != p.total:
            raise FrameError(
                f"truncated message {p.key!r}: {p.filled} of {p.total} declared bytes arrived"
            )
        if p.raw is not None:
            assert p.dtype is not None
            arr = p.raw.view(p.dtype).reshape(p.shape)
            return Message(p.kind, p.key, arr, p.total)
        data = p.parts[0] if len(p.parts) == 1 else b"".join(p.parts)
        return Message(p.kind, p.key, data, p.total)


__all__ = [
    "FRAME_OVERHEAD",
    "HEADER",
    "MAGIC",
    "MAX_REASON_BYTES",
    "MIN_CHUNK_BYTES",
    "VERSION",
    "FrameError",
    "Kind",
    "Message",
    "Reassembler",
    "abort_frame",
    "control_frame",
    "encode_message",
]

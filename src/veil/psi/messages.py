"""The typed messages of ECDH-PSI and their byte encodings (msgpack values and array frames).

Every message a party can send is one of these classes; nothing else travels. Decoding checks
types, lengths and shapes and raises :class:`~veil.errors.PeerError` naming the sender: a
malformed message never crashes a party with an obscure exception, and nothing is unpickled.

==============  =====================  ==================================================
message         direction              content
==============  =====================  ==================================================
``Hello``       follower → leader      protocol + agreed options, 32-byte nonce, set size
``Welcome``     leader → follower      every party's nonce (→ the salt), leader's set size
``Points``      both ways, in chunks   ``(k, 32)`` singly-masked points, or ``(k, 16)``
                                       truncated doubly-masked values
``Result``      leader → follower      sorted positions, in the follower's sent order, of
                                       its points in the intersection (not in
                                       receiver-only mode)
==============  =====================  ==================================================
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from veil.core import wire
from veil.errors import PeerError, ProtocolError

NONCE_BYTES = 32
_SALT_DOMAIN = b"veil/psi/ecdh-x25519/v1/salt"


def _decode_dict(data: bytes, frm: str, kind: str) -> dict[str, Any]:
    try:
        value = wire.decode_value(data, max_bytes=1 << 20)
    except ProtocolError as exc:
        raise PeerError(frm, f"sent a malformed PSI {kind}: {exc}") from None
    if not isinstance(value, dict) or value.get("t") != kind:
        raise PeerError(frm, f"sent something that is not a PSI {kind} message")
    return value


def _field(value: dict[str, Any], name: str, typ: type, frm: str, kind: str) -> Any:
    v = value.get(name)
    if not isinstance(v, typ) or (typ is int and isinstance(v, bool)):
        raise PeerError(frm, f"PSI {kind} field {name!r} missing or not {typ.__name__}")
    return v


@dataclass(frozen=True)
class Hello:
    """Follower → leader: who I am, what I agreed to, my randomness for the salt, my set size."""

    agreed: dict[str, Any]
    nonce: bytes
    n_items: int

    def encode(self) -> bytes:
        """Bytes on the wire (msgpack)."""
        return wire.encode_value(
            {"t": "hello", "agreed": self.agreed, "nonce": self.nonce, "n": self.n_items}
        )

    @classmethod
    def decode(cls, data: bytes, frm: str) -> Hello:
        """Parse and validate a hello from ``frm``."""
        v = _decode_dict(data, frm, "hello")
        agreed = _field(v, "agreed", dict, frm, "hello")
        nonce = _field(v, "nonce", bytes, frm, "hello")
        n = _field(v, "n", int, frm, "hello")
        if len(nonce) != NONCE_BYTES or n < 0:
            raise PeerError(frm, "PSI hello has a bad nonce length or a negative set size")
        return cls(agreed, nonce, n)


@dataclass(frozen=True)
class Welcome:
    """Leader → follower: every party's nonce (in party order) and the leader's set size."""

    nonces: tuple[bytes, ...]
    n_leader: int

    def encode(self) -> bytes:
        """Bytes on the wire (msgpack)."""
        return wire.encode_value({"t": "welcome", "nonces": list(self.nonces), "n": self.n_leader})

    @classmethod
    def decode(cls, data: bytes, frm: str) -> Welcome:
        """Parse and validate a welcome from ``frm``."""
        v = _decode_dict(data, frm, "welcome")
        nonces = _field(v, "nonces", list, frm, "welcome")
        n = _field(v, "n", int, frm, "welcome")
        if n < 0 or not all(isinstance(x, bytes) and len(x) == NONCE_BYTES for x in nonces):
            raise PeerError(frm, "PSI welcome has a bad nonce or a negative set size")
        return cls(tuple(nonces), n)

    def salt(self) -> bytes:
        """The run's salt: SHA-256 over every party's nonce. Fresh if any one party is honest."""
        h = hashlib.sha256(_SALT_DOMAIN)
        for nonce in self.nonces:
            h.update(nonce)
        return h.digest()


@dataclass(frozen=True)
class Points:
    """A chunk of masked points ``(k, width)`` uint8 (32: singly masked; 16: doubly masked)."""

    data: np.ndarray[Any, Any]

    @property
    def rows(self) -> int:
        """Number of points in the chunk."""
        return int(self.data.shape[0])

    def encode(self) -> bytes:
        """Bytes on the wire: one array frame (what ``Link.send_array`` carries)."""
        return wire.encode_array(self.data)

    @classmethod
    def decode(cls, data: bytes, width: int, frm: str, limit: int) -> Points:
        """Parse an array frame from ``frm`` and :meth:`check` it."""
        try:
            arr = wire.decode_array(data, max_bytes=width * limit)
        except ProtocolError as exc:
            raise PeerError(frm, f"sent a malformed PSI point chunk: {exc}") from None
        return cls.check(arr, width, frm, limit)

    @classmethod
    def check(cls, arr: np.ndarray[Any, Any], width: int, frm: str, limit: int) -> Points:
        """Validate an array received from ``frm``: uint8, ``(k, width)``, ``k <= limit``."""
        if arr.dtype != np.uint8 or arr.ndim != 2 or arr.shape[1] != width:
            raise PeerError(
                frm,
                f"sent a PSI point chunk of dtype {arr.dtype} shape {arr.shape}; "
                f"expected uint8 (k, {width})",
            )
        if arr.shape[0] > limit:
            raise PeerError(frm, f"sent {arr.shape[0]} points where at most {limit} remain")
        return cls(arr)


@dataclass(frozen=True)
class Result:
    """Leader → follower: ascending positions (in the follower's sent order) in the intersection."""

    positions: np.ndarray[Any, Any]

    def encode(self) -> bytes:
        """Bytes on the wire: one array frame (what ``Link.send_array`` carries)."""
        return wire.encode_array(self.positions)

    @classmethod
    def decode(cls, data: bytes, n_sent: int, frm: str) -> Result:
        """Parse an array frame from ``frm`` and :meth:`check` it."""
        try:
            arr = wire.decode_array(data, max_bytes=8 * n_sent)
        except ProtocolError as exc:
            raise PeerError(frm, f"sent a malformed PSI result: {exc}") from None
        return cls.check(arr, n_sent, frm)

    @classmethod
    def check(cls, arr: np.ndarray[Any, Any], n_sent: int, frm: str) -> Result:
        """Validate positions received from ``frm`` against the ``n_sent`` points we sent."""
        if arr.dtype != np.uint64 or arr.ndim != 1:
            raise PeerError(
                frm, f"sent PSI result positions of dtype {arr.dtype}, shape {arr.shape}"
            )
        if arr.size and (int(arr[-1]) >= n_sent or np.any(np.diff(arr.astype(np.int64)) <= 0)):
            raise PeerError(frm, "sent PSI result positions that are out of range or not ascending")
        return cls(arr)

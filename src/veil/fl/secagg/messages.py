"""Typed messages of a secure-aggregation round and their safe byte encoding.

Every message is a frozen dataclass; on the wire it is ``encode_value({"t": tag, ...fields})``
(msgpack plus numpy array frames, :mod:`veil.core.wire`, never pickle). :func:`decode_message`
checks the size limit, the tag and every field's type, length and dtype, and raises
:class:`~veil.errors.ProtocolError` with the reason; callers name the sender.

Flow (client -> aggregator is "up", aggregator -> client is "down"):

====  ===================  ====================  =========================================
 #     up                   down                  content
====  ===================  ====================  =========================================
 0     AdvertiseKeys        KeyDirectory          two X25519 public keys; neighbours' keys
 1     EncryptedShares      ForwardedShares       AES-GCM sealed Shamir shares, routed
 2     MaskedInput          UnmaskRequest         masked vector; survivors / dropped lists
 3     UnmaskResponse       RoundOutcome          shares of self-mask seeds / mask keys
====  ===================  ====================  =========================================

Either side may send :class:`Abort` instead of its message of a phase.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import numpy as np

from veil.core.wire import decode_value, encode_value
from veil.errors import ProtocolError
from veil.fl.secagg.shamir import PRIME

KEY_LEN = 32
#: Longest sealed share accepted (nonce + msgpack of two small arrays + tag is ~200 bytes).
MAX_SEALED = 1024


def _field(obj: dict[str, Any], name: str) -> Any:
    if name not in obj:
        raise ProtocolError(f"message field {name!r} is missing")
    return obj[name]


def _bytes(v: Any, name: str, *, exact: int | None = None, most: int | None = None) -> bytes:
    if not isinstance(v, bytes):
        raise ProtocolError(f"field {name!r} must be bytes, got {type(v).__name__}")
    if exact is not None and len(v) != exact:
        raise ProtocolError(f"field {name!r} must be {exact} bytes, got {len(v)}")
    if most is not None and len(v) > most:
        raise ProtocolError(f"field {name!r} is {len(v)} bytes, over the limit of {most}")
    return v


def _names(v: Any, name: str) -> tuple[str, ...]:
    if not isinstance(v, list | tuple) or not all(isinstance(x, str) for x in v):
        raise ProtocolError(f"field {name!r} must be a list of client names")
    if len(set(v)) != len(v):
        raise ProtocolError(f"field {name!r} repeats a client name")
    return tuple(v)


def _str_map(v: Any, name: str) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise ProtocolError(f"field {name!r} must be a map keyed by client name")
    return v


def _field_vec(v: Any, name: str, length: int) -> np.ndarray:
    if not isinstance(v, np.ndarray) or v.dtype != np.uint64 or v.shape != (length,):
        raise ProtocolError(f"share {name!r} must be a uint64 vector of length {length}")
    if np.any(v >= PRIME):
        raise ProtocolError(f"share {name!r} holds values outside the field")
    return v


@dataclass(frozen=True)
class Abort:
    """Either side gives up the round; ``reason`` says why."""

    TAG: ClassVar[str] = "abort"
    reason: str

    def to_obj(self) -> dict[str, Any]:
        return {"reason": self.reason}

    @classmethod
    def from_obj(cls, obj: dict[str, Any]) -> Abort:
        reason = _field(obj, "reason")
        if not isinstance(reason, str):
            raise ProtocolError("abort reason must be a string")
        return cls(reason[:2000])


@dataclass(frozen=True)
class AdvertiseKeys:
    """Phase 0 up: the client's share-encryption and mask-agreement public keys, its dim."""

    TAG: ClassVar[str] = "keys"
    enc_pk: bytes
    mask_pk: bytes
    dim: int

    def to_obj(self) -> dict[str, Any]:
        return {"enc_pk": self.enc_pk, "mask_pk": self.mask_pk, "dim": self.dim}

    @classmethod
    def from_obj(cls, obj: dict[str, Any]) -> AdvertiseKeys:
        dim = _field(obj, "dim")
        if not isinstance(dim, int) or isinstance(dim, bool) or dim < 0:
            raise ProtocolError("field 'dim' must be a non-negative integer")
        return cls(
            _bytes(_field(obj, "enc_pk"), "enc_pk", exact=KEY_LEN),
            _bytes(_field(obj, "mask_pk"), "mask_pk", exact=KEY_LEN),
            dim,
        )


@dataclass(frozen=True)
class KeyDirectory:
    """Phase 0 down: the public keys of the client's live neighbours and the agreed dim."""

    TAG: ClassVar[str] = "directory"
    dim: int
    keys: dict[str, tuple[bytes, bytes]]

    def to_obj(self) -> dict[str, Any]:
        return {"dim": self.dim, "keys": {c: [e, m] for c, (e, m) in self.keys.items()}}

    @classmethod
    def from_obj(cls, obj: dict[str, Any]) -> KeyDirectory:
        dim = _field(obj, "dim")
        if not isinstance(dim, int) or isinstance(dim, bool) or dim < 0:
            raise ProtocolError("field 'dim' must be a non-negative integer")
        keys: dict[str, tuple[bytes, bytes]] = {}
        for c, pair in _str_map(_field(obj, "keys"), "keys").items():
            if not isinstance(pair, list) or len(pair) != 2:
                raise ProtocolError(f"keys of {c!r} must be a pair")
            keys[c] = (
                _bytes(pair[0], "enc_pk", exact=KEY_LEN),
                _bytes(pair[1], "mask_pk", exact=KEY_LEN),
            )
        return cls(dim, keys)


@dataclass(frozen=True)
class EncryptedShares:
    """Phase 1 up: sealed shares by recipient, and a hash commitment to the self-mask seed."""

    TAG: ClassVar[str] = "shares"
    sealed: dict[str, bytes]
    seed_commitment: bytes

    def to_obj(self) -> dict[str, Any]:
        return {"sealed": dict(self.sealed), "commit": self.seed_commitment}

    @classmethod
    def from_obj(cls, obj: dict[str, Any]) -> EncryptedShares:
        sealed = {
            c: _bytes(b, f"sealed[{c}]", most=MAX_SEALED)
            for c, b in _str_map(_field(obj, "sealed"), "sealed").items()
        }
        return cls(sealed, _bytes(_field(obj, "commit"), "commit", exact=32))


@dataclass(frozen=True)
class ForwardedShares:
    """Phase 1 down: the sealed shares addressed to this client, by sender."""

    TAG: ClassVar[str] = "forward"
    sealed: dict[str, bytes]

    def to_obj(self) -> dict[str, Any]:
        return {"sealed": dict(self.sealed)}

    @classmethod
    def from_obj(cls, obj: dict[str, Any]) -> ForwardedShares:
        sealed = {
            c: _bytes(b, f"sealed[{c}]", most=MAX_SEALED)
            for c, b in _str_map(_field(obj, "sealed"), "sealed").items()
        }
        return cls(sealed)


@dataclass(frozen=True)
class MaskedInput:
    """Phase 2 up: the masked, encoded vector (ring elements)."""

    TAG: ClassVar[str] = "masked"
    y: np.ndarray

    def to_obj(self) -> dict[str, Any]:
        return {"y": self.y}

    @classmethod
    def from_obj(cls, obj: dict[str, Any]) -> MaskedInput:
        y = _field(obj, "y")
        if not isinstance(y, np.ndarray):
            raise ProtocolError("masked input must be an array")
        return cls(y)


@dataclass(frozen=True)
class UnmaskRequest:
    """Phase 2 down: who the aggregator says survived (sent a masked input) and who dropped."""

    TAG: ClassVar[str] = "unmask"
    survivors: tuple[str, ...]
    dropped: tuple[str, ...]

    def to_obj(self) -> dict[str, Any]:
        return {"survivors": list(self.survivors), "dropped": list(self.dropped)}

    @classmethod
    def from_obj(cls, obj: dict[str, Any]) -> UnmaskRequest:
        return cls(
            _names(_field(obj, "survivors"), "survivors"),
            _names(_field(obj, "dropped"), "dropped"),
        )


@dataclass(frozen=True)
class UnmaskResponse:
    """Phase 3 up: shares of survivors' self-mask seeds and of dropped clients' mask keys."""

    TAG: ClassVar[str] = "reveal"
    seed_shares: dict[str, np.ndarray]
    key_shares: dict[str, np.ndarray]

    def to_obj(self) -> dict[str, Any]:
        return {"seed": dict(self.seed_shares), "key": dict(self.key_shares)}

    @classmethod
    def from_obj(cls, obj: dict[str, Any], *, share_len: int) -> UnmaskResponse:
        seed = {
            c: _field_vec(v, f"seed[{c}]", share_len)
            for c, v in _str_map(_field(obj, "seed"), "seed").items()
        }
        key = {
            c: _field_vec(v, f"key[{c}]", share_len)
            for c, v in _str_map(_field(obj, "key"), "key").items()
        }
        return cls(seed, key)


@dataclass(frozen=True)
class RoundOutcome:
    """Phase 3 down: the round succeeded; the survivors and (if configured) the decoded sum."""

    TAG: ClassVar[str] = "done"
    survivors: tuple[str, ...]
    total: np.ndarray | None

    def to_obj(self) -> dict[str, Any]:
        return {"survivors": list(self.survivors), "total": self.total}

    @classmethod
    def from_obj(cls, obj: dict[str, Any]) -> RoundOutcome:
        total = _field(obj, "total")
        if total is not None and (not isinstance(total, np.ndarray) or total.dtype != np.float64):
            raise ProtocolError("the broadcast sum must be a float64 array")
        return cls(_names(_field(obj, "survivors"), "survivors"), total)


Message = (
    Abort
    | AdvertiseKeys
    | KeyDirectory
    | EncryptedShares
    | ForwardedShares
    | MaskedInput
    | UnmaskRequest
    | UnmaskResponse
    | RoundOutcome
)
M = TypeVar(
    "M",
    AdvertiseKeys,
    KeyDirectory,
    EncryptedShares,
    ForwardedShares,
    MaskedInput,
    UnmaskRequest,
    UnmaskResponse,
    RoundOutcome,
)


def encode_message(msg: Message) -> bytes:
    """Bytes of ``msg`` for the wire."""
    obj = msg.to_obj()
    obj["t"] = msg.TAG
    return encode_value(obj)


def decode_message(
    data: bytes, expected: type[M], *, max_bytes: int, share_len: int = 0
) -> M | Abort:
    """Decode a message that must be ``expected`` (or an :class:`Abort`); validate every field."""
    if len(data) > max_bytes:
        raise ProtocolError(f"message of {len(data)} bytes is over the limit of {max_bytes}")
    obj = decode_value(data, max_bytes=max_bytes)
    if not isinstance(obj, dict):
        raise ProtocolError("message is not a map")
    tag = obj.get("t")
    if tag == Abort.TAG:
        return Abort.from_obj(obj)
    if tag != expected.TAG:
        raise ProtocolError(f"expected a {expected.TAG!r} message, got {tag!r}")
    if expected is UnmaskResponse:
        return UnmaskResponse.from_obj(obj, share_len=share_len)  # type: ignore[return-value]
    parse: Any = expected.from_obj
    return parse(obj)  # type: ignore[no-any-return]

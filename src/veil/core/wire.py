"""Safe wire codecs: numpy arrays and plain values to bytes and back. Never pickle.

Two formats, both versioned:

* **array frame** — ``MAGIC | version u8 | dtype code u8 | ndim u8 | pad u8 | shape u64[ndim] |``
  raw C-order bytes. Only the plain numeric dtypes in :data:`DTYPES` are accepted; object arrays
  are refused on both sides, so a frame can never smuggle code.
* **value** — msgpack of ``None``/bool/int/float/str/bytes/list/dict (str keys), with numpy
  arrays and scalars carried as msgpack extension type 1 holding an array frame. Unknown
  extension types are refused.

Decoding validates every length against the bytes present and raises :class:`ProtocolError`
with the reason; it never trusts a declared size beyond ``max_bytes``.
"""

from __future__ import annotations

import struct
from typing import Any

import msgpack
import numpy as np

from veil.errors import ProtocolError

MAGIC = b"VLA1"
VERSION = 1
_HEAD = struct.Struct("<4sBBBB")
_EXT_ARRAY = 1
_EXT_TUPLE = 2
MAX_NDIM = 32

#: dtype code <-> numpy dtype. Codes are part of the wire format: never renumber.
DTYPES: dict[int, np.dtype[Any]] = {
    1: np.dtype(np.bool_),
    2: np.dtype("<i1"),
    3: np.dtype("<i2"),
    4: np.dtype("<i4"),
    5: np.dtype("<i8"),
    6: np.dtype("<u1"),
    7: np.dtype("<u2"),
    8: np.dtype("<u4"),
    9: np.dtype("<u8"),
    10: np.dtype("<f4"),
    11: np.dtype("<f8"),
}
_CODES = {dt: code for code, dt in DTYPES.items()}


def dtype_code(dtype: np.dtype[Any]) -> int:
    """Return the wire code of ``dtype`` (little-endian normalised); refuse anything else."""
    dt = np.dtype(dtype).newbyteorder("<") if np.dtype(dtype).byteorder == ">" else np.dtype(dtype)
    try:
        return _CODES[dt]
    except KeyError:
        raise ProtocolError(
            f"dtype {dtype} cannot travel on the wire; use a numeric or bool dtype"
        ) from None


def array_header(arr: np.ndarray[Any, Any]) -> bytes:
    """Header bytes of the array frame for ``arr`` (the raw data follows it)."""
    if arr.ndim > MAX_NDIM:
        raise ProtocolError(f"array has {arr.ndim} dimensions; at most {MAX_NDIM} travel")
    code = dtype_code(arr.dtype)
    return _HEAD.pack(MAGIC, VERSION, code, arr.ndim, 0) + struct.pack(f"<{arr.ndim}Q", *arr.shape)


def as_wire_array(arr: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """``arr`` as a C-contiguous little-endian array (a view when it already is one)."""
    a = np.asarray(arr)
    if a.dtype.byteorder == ">":
        a = a.astype(a.dtype.newbyteorder("<"))
    return a if a.flags.c_contiguous else a.copy(order="C")


def encode_array(arr: np.ndarray[Any, Any]) -> bytes:
    """Encode ``arr`` as one array frame (header + raw bytes)."""
    a = as_wire_array(arr)
    return array_header(a) + a.tobytes()


def parse_array_header(
    buf: bytes | bytearray | memoryview,
) -> tuple[np.dtype[Any], tuple[int, ...], int]:
    """Parse a frame header: return (dtype, shape, header length). Validates magic and version."""
    mv = memoryview(buf)
    if len(mv) < _HEAD.size:
        raise ProtocolError(f"array frame truncated: {len(mv)} bytes, header needs {_HEAD.size}")
    magic, version, code, ndim, _ = _HEAD.unpack_from(mv, 0)
    if magic != MAGIC:
        raise ProtocolError("not an array frame (bad magic): the peer does not speak veil's format")

    if version != VERSION:
        raise ProtocolError(f"array frame version {version} unsupported (this veil: {VERSION})")
    if code not in DTYPES:
        raise ProtocolError(f"array frame has unknown dtype code {code}")
    if ndim > MAX_NDIM:
        raise ProtocolError(f"array frame declares {ndim} dimensions (max {MAX_NDIM})")
    hlen = _HEAD.size + 8 * ndim
    if len(mv) < hlen:
        raise ProtocolError("array frame truncated inside its shape")
    shape = struct.unpack_from(f"<{ndim}Q", mv, _HEAD.size)
    return DTYPES[code], tuple(int(s) for s in shape), hlen


def decode_array(
    buf: bytes | bytearray | memoryview, *, max_bytes: int | None = None
) -> np.ndarray[Any, Any]:
    """Decode one array frame. The result is a read-only-safe copy-free view when possible."""
    dtype, shape, hlen = parse_array_header(buf)
    count = 1
    for s in shape:
        count *= s
    need = count * dtype.itemsize
    if max_bytes is not None and need > max_bytes:
        raise ProtocolError(f"array frame declares {need} bytes, over the limit of {max_bytes}")
    body = memoryview(buf)[hlen:]
    if len(body) != need:
        raise ProtocolError(
            f"array frame body is {len(body)} bytes but its header declares {need} "
            f"(shape {shape}, dtype {dtype})"
        )
    return np.frombuffer(body, dtype=dtype, count=count).reshape(shape)


def _default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return msgpack.ExtType(_EXT_ARRAY, encode_array(obj))
    if isinstance(obj, np.generic):
        return msgpack.ExtType(_EXT_ARRAY, b"\x00" + encode_array(np.asarray(obj)))
    if isinstance(obj, tuple):
        return msgpack.ExtType(_EXT_TUPLE, encode_value(list(obj)))
    raise ProtocolError(
        f"value of type {type(obj).__name__} cannot travel on the wire; send numbers, strings, "
        "bytes, lists, dicts with str keys, or numpy arrays"
    )


def _ext_hook(code: int, data: bytes) -> Any:
    if code == _EXT_ARRAY:
        if data[:1] == b"\x00":
            arr = decode_array(data[1:])
            if arr.ndim != 0:
                raise ProtocolError("numpy scalar frame is not 0-d")
            return arr[()]
        return decode_array(data).copy()
    if code == _EXT_TUPLE:
        inner = decode_value(data)
        if not isinstance(inner, list):
            raise ProtocolError("tuple frame does not hold a list")
        return tuple(inner)
    raise ProtocolError(f"unknown msgpack extension type {code}")


def encode_value(value: Any) -> bytes:
    """Encode a plain value (see module docstring) to bytes."""
    if isinstance(value, tuple):
        value = msgpack.ExtType(_EXT_TUPLE, encode_value(list(value)))
    out = msgpack.packb(value, default=_default, use_bin_type=True, strict_types=True)
    assert isinstance(out, bytes)
    return out


def decode_value(data: bytes | bytearray | memoryview, *, max_bytes: int = 1 << 31) -> Any:
    """Decode bytes made by :func:`encode_value`. Raises :class:`ProtocolError` on bad input."""
    if len(data) > max_bytes:
        raise ProtocolError(f"value of {len(data)} bytes is over the limit of {max_bytes}")
    try:
        return msgpack.unpackb(
            bytes(data),
            ext_hook=_ext_hook,
            raw=False,
            strict_map_key=True,
            use_list=True,
        )
    except ProtocolError:
        raise
    except Exception as exc:  # msgpack raises several unrelated types on garbage
        raise ProtocolError(f"malformed value on the wire: {type(exc).__name__}: {exc}") from None

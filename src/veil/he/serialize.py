"""Safe, versioned serialization of :class:`~veil.he.vector.CiphertextArray` (no pickle).

Frame (all integers big-endian)::

    b"VLHE" | version u8 | scheme u8 | flags u8 (bit 0: packed) | ndim u8
    | key_bits u16 | ct_width u16 | frac_bits u16 | bound_len u16 | fingerprint 16 bytes
    | n_slots u32 | slot_bits u32 | guard_bits u32            (zeros when not packed)
    | bound (bound_len bytes) | shape u64[ndim] | ciphertexts (prod(shape) * ct_width bytes)

:func:`loads` takes the receiver's copy of the public key and refuses, with
:class:`~veil.errors.ProtocolError` naming the reason: a bad magic or version, another scheme,
another key (fingerprint mismatch), another size, a layout that does not fit the key, a bound
above the capacity, a length that disagrees with the shape, or any ciphertext that is out of
range (``0`` or ``>= n^2`` / ``>= n``) or not a unit. ``max_bytes`` caps what it accepts.
"""

from __future__ import annotations

import struct

from veil.errors import ConfigError, ProtocolError
from veil.he.codec import ints_from_bytes, validate_ciphertexts
from veil.he.keys import PublicKey
from veil.he.packing import SlotLayout
from veil.he.vector import CiphertextArray, objects

MAGIC = b"VLHE"
VERSION = 1
MAX_NDIM = 8
DEFAULT_MAX_BYTES = 1 << 32
_HEAD = struct.Struct(">4sBBBBHHHH16sIII")
_FLAG_PACKED = 1


def dumps(ct: CiphertextArray) -> bytes:
    """Serialize ``ct`` to one frame."""
    pk = ct.pk
    ndim = len(ct.shape)
    if ndim > MAX_NDIM:
        raise ProtocolError(f"ciphertext array has {ndim} dims; at most {MAX_NDIM}")
    bound = ct.bound.to_bytes((ct.bound.bit_length() + 7) // 8 or 1, "big")
    lay = ct.layout
    head = _HEAD.pack(
        MAGIC,
        VERSION,
        int(pk.scheme),
        _FLAG_PACKED if lay is not None else 0,
        ndim,
        pk.key_bits,
        pk.ct_bytes,
        ct.frac_bits,
        len(bound),
        pk.fingerprint,
        lay.n_slots if lay else 0,
        lay.slot_bits if lay else 0,
        lay.guard_bits if lay else 0,
    )
    shape = struct.pack(f">{ndim}Q", *ct.shape)
    return head + bound + shape + ct.payload()


def loads(
    blob: bytes | memoryview,
    pk: PublicKey,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    sender: str = "peer",
) -> CiphertextArray:
    """Parse and validate a frame from :func:`dumps` against the expected public key ``pk``.

    ``sender`` names the party the bytes came from in error messages.
    """
    b = memoryview(blob)
    if len(b) > max_bytes:
        raise ProtocolError(f"ciphertext frame from {sender} is {len(b)} bytes > {max_bytes}")
    if len(b) < _HEAD.size:
        raise ProtocolError(f"ciphertext frame from {sender} is truncated ({len(b)} bytes)")
    (
        magic,
        ver,
        scheme,
        flags,
        ndim,
        key_bits,
        width,
        frac,
        blen,
        fp,
        n_slots,
        slot_bits,
        guard,
    ) = _HEAD.unpack_from(b)
    if magic != MAGIC:
        raise ProtocolError(f"frame from {sender} is not a veil ciphertext array (bad magic)")
    if ver != VERSION:
        raise ProtocolError(f"ciphertext frame version {ver} from {sender} is not supported")
    if scheme != int(pk.scheme):
        raise ProtocolError(
            f"ciphertexts from {sender} use scheme id {scheme}, expected {pk.scheme.name}"
        )
    if fp != pk.fingerprint:
        raise ProtocolError(
            f"ciphertexts from {sender} are under key {fp.hex()[:12]}, not the expected "
            f"{pk.describe()}: wrong key or wrong session"
        )
    if key_bits != pk.key_bits or width != pk.ct_bytes:
        raise ProtocolError(f"ciphertext sizes from {sender} do not match {pk.describe()}")
    if flags & ~_FLAG_PACKED or ndim > MAX_NDIM:
        raise ProtocolError(f"ciphertext frame from {sender} has unknown flags or {ndim} dims")
    off = _HEAD.size
    end_meta = off + blen + 8 * ndim
    if blen == 0 or len(b) < end_meta:
        raise ProtocolError(f"ciphertext frame from {sender} is truncated in its header")
    bound = int.from_bytes(b[off : off + blen], "big")
    shape = struct.unpack_from(f">{ndim}Q", b, off + blen)
    count = 1
    for d in shape:
        count *= d
    if len(b) - end_meta != count * width:
        raise ProtocolError(
            f"ciphertext frame from {sender} holds {len(b) - end_meta} payload bytes, shape "
            f"{shape} needs {count * width}"
        )
    layout: SlotLayout | None = None
    try:
        if flags & _FLAG_PACKED:
            layout = SlotLayout(n_slots, slot_bits, guard)
            layout.check_fits(pk.plaintext_bits)
        elif n_slots or slot_bits or guard:
            raise ProtocolError("unpacked ciphertext frame carries a slot layout")
    except ConfigError as exc:
        raise ProtocolError(f"bad packing layout from {sender}: {exc}") from None
    cts = ints_from_bytes(b[end_meta:], width, count)
    validate_ciphertexts(pk, cts, what=f"ciphertext from {sender}")
    return CiphertextArray(
        pk, objects(cts).reshape(shape), layout=layout, bound=bound, frac_bits=frac
    )

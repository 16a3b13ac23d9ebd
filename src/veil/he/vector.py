"""Vector API: numpy arrays in, :class:`CiphertextArray` out, homomorphic ops (bucket sums:
:mod:`veil.he.buckets`).

Example
-------
>>> pk, sk = veil.he.keygen("ou")                                   # doctest: +SKIP
>>> layout = SlotLayout.for_sums(pk.plaintext_bits, 2, value_bound=2**20, max_terms=10**5)
>>> ct = encrypt(pk, np.stack([g, h], 1), layout=layout, value_bound=2**20)  # 1 ct per row
>>> hist = bucket_sum(ct, bin_idx, 32)                 # (features, 32) ciphertexts, 2 slots
>>> decrypt(sk, hist)                                  # (features, 32, 2) exact int64 sums

Threat model: semi-honest. Whoever holds a :class:`CiphertextArray` learns its public metadata:
the shape, the packing layout, ``frac_bits`` and ``bound`` — a public upper bound on every
slot's magnitude that grows only through public quantities (declared value bounds, row counts,
and the largest magnitude of plaintext operands: pass ``plain_bound=``/``scalar_bound=`` to
declare a public bound instead of revealing that maximum to the receiver). Values themselves
are hidden (IND-CPA of the scheme). :func:`~veil.he.buckets.bucket_sum` re-randomizes its
outputs by default so the key owner cannot link a sum to the encryptions it made; other
operations do not
(:meth:`CiphertextArray.rerandomize` before sending a result to the key owner).

Overflow: every operation checks the new ``bound`` against the capacity (slot capacity when
packed, ``2**plaintext_bits - 1`` otherwise) and raises :class:`~veil.errors.ProtocolError`
*before* computing anything that could wrap; decryption re-checks each value against the
bound (and the slot guard bits) and raises instead of returning a wrong number.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gmpy2
import numpy as np

from veil.errors import ConfigError, DataError, ProtocolError
from veil.he.codec import encode_public_key, ints_from_bytes, ints_to_bytes
from veil.he.encoding import FixedPoint, max_abs
from veil.he.engine import decryptor, encryptor
from veil.he.keys import PrivateKey, PublicKey
from veil.he.packing import SlotLayout
from veil.he.parallel import (
    Workers,
    decrypt_chunk,
    encrypt_chunk,
    mul_chunk,
)


class CiphertextArray:
    """An n-d array of ciphertexts under one public key (a numpy object array of ``mpz``).

    Attributes
    ----------
    pk:
        The public key.
    data:
        ``np.ndarray`` of dtype object holding the ciphertext integers.
    layout:
        :class:`SlotLayout` when each ciphertext packs ``n_slots`` values (the plaintext then
        has an extra trailing axis), else ``None``.
    bound:
        Public bound on ``|value|`` of every (slot) plaintext, in encoded integer units.
    frac_bits:
        Fixed-point fractional bits of the plaintexts.
    """

    __slots__ = ("_data", "_payload", "_shape", "bound", "frac_bits", "layout", "pk")
    #: numpy defers ``ndarray (op) CiphertextArray`` to our reflected operators.
    __array_ufunc__ = None

    def __init__(
        self,
        pk: PublicKey,
        data: np.ndarray,
        *,
        layout: SlotLayout | None,
        bound: int,
        frac_bits: int = 0,
    ) -> None:
        self.pk = pk
        self._data: np.ndarray | None = np.asarray(data, dtype=object)
        self._payload: bytes | None = None
        self._shape: tuple[int, ...] = tuple(self._data.shape)
        self.layout = layout
        self.bound = int(bound)
        self.frac_bits = int(frac_bits)
        if layout is not None:
            layout.check_fits(pk.plaintext_bits)
        if self.bound > self.capacity:
            raise ProtocolError(
                f"ciphertext bound {self.bound} exceeds the capacity {self.capacity} of its "
                "layout: the values could have overflowed"
            )

    @classmethod
    def from_payload(
        cls,
        pk: PublicKey,
        payload: bytes,
        shape: tuple[int, ...],
        *,
        layout: SlotLayout | None,
        bound: int,
        frac_bits: int = 0,
    ) -> CiphertextArray:
        """An array whose ciphertexts are the fixed-width words of ``payload`` (trusted: from
        our own encryption), decoded to integers only when :attr:`data` is first read.

        The key owner typically serializes fresh encryptions and sends them without touching
        them; :func:`veil.he.serialize.dumps` then reuses ``payload`` as is.
        """
        count = int(np.prod(shape, dtype=np.int64))
        if len(payload) != count * pk.ct_bytes:
            raise ProtocolError(
                f"payload of {len(payload)} bytes does not hold {shape} ciphertexts"
            )
        out = cls(pk, np.empty((0,), dtype=object), layout=layout, bound=bound, frac_bits=frac_bits)
        out._data, out._payload, out._shape = None, payload, tuple(int(d) for d in shape)
        return out

    @property
    def data(self) -> np.ndarray:
        """``np.ndarray`` of dtype object holding the ciphertext integers (``mpz``)."""
        if self._data is None:
            assert self._payload is not None
            count = len(self._payload) // self.pk.ct_bytes
            arr = objects(ints_from_bytes(self._payload, self.pk.ct_bytes, count))
            self._data, self._payload = arr.reshape(self._shape), None
        return self._data

    def payload(self) -> bytes:
        """The ciphertexts as concatenated fixed-width big-endian words (row-major)."""
        if self._payload is not None:
            return self._payload
        return ints_to_bytes(self.data.reshape(-1).tolist(), self.pk.ct_bytes)

    # -- shape -----------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the ciphertext array (without the slot axis)."""
        return self._shape if self._data is None else tuple(self._data.shape)

    @property
    def plain_shape(self) -> tuple[int, ...]:
        """Shape of the decrypted array (``shape + (n_slots,)`` when packed)."""
        return self.shape if self.layout is None else (*self.shape, self.layout.n_slots)

    @property
    def size(self) -> int:
        """Number of ciphertexts."""
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def n_slots(self) -> int:
        """Values per ciphertext (1 when not packed)."""
        return 1 if self.layout is None else self.layout.n_slots

    @property
    def capacity(self) -> int:
        """Largest ``|value|`` a (slot) plaintext may reach and still decrypt exactly."""
        return self.pk.plaintext_bound - 1 if self.layout is None else self.layout.capacity

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d ciphertext array")
        return self.shape[0]

    def __repr__(self) -> str:
        slots = "" if self.layout is None else f", {self.layout.n_slots} slots"
        return f"CiphertextArray(shape={self.shape}{slots}, {self.pk.describe()})"

    def __getitem__(self, key: Any) -> CiphertextArray:
        sub = self.data[key]
        if not isinstance(sub, np.ndarray):
            sub = np.array(sub, dtype=object).reshape(())
        return self._like(sub, self.bound)

    def reshape(self, *shape: Any) -> CiphertextArray:
        """Same ciphertexts, new shape (numpy semantics)."""
        return self._like(self.data.reshape(*shape), self.bound)

    def _like(self, data: np.ndarray, bound: int, frac_bits: int | None = None) -> CiphertextArray:
        return CiphertextArray(
            self.pk,
            data,
            layout=self.layout,
            bound=bound,
            frac_bits=self.frac_bits if frac_bits is None else frac_bits,
        )

    def _grown(self, bound: int, what: str) -> int:
        if bound > self.capacity:
            raise ProtocolError(
                f"{what} could overflow: the result bound {bound} exceeds the capacity "
                f"{self.capacity} ({_room(self)}); refused before computing. Use a layout with "
                "more headroom (SlotLayout.for_sums with a larger max_terms) or fewer slots"
            )
        return bound

    # -- arithmetic ------------------------------------------------------------------------
    def __add__(self, other: Any) -> CiphertextArray:
        return self.add(other)

    __radd__ = __add__

    def __sub__(self, other: Any) -> CiphertextArray:
        if isinstance(other, CiphertextArray):
            return self.add(-other)
        a = np.asarray(other)
        # exact negation: no wrap-around for unsigned types or the int64 minimum
        return self.add(-(a.astype(object) if a.dtype.kind in "biu" else a))

    def __rsub__(self, other: Any) -> CiphertextArray:
        return (-self).add(other)

    def __neg__(self) -> CiphertextArray:
        enc = encryptor(self.pk)
        return self._like(_map1(enc.neg, self.data), self.bound)

    def __mul__(self, other: Any) -> CiphertextArray:
        return self.mul(other)

    __rmul__ = __mul__

    def add(self, other: Any, *, plain_bound: int | None = None) -> CiphertextArray:
        """Element-wise sum with another :class:`CiphertextArray` or a plaintext array.

        A plaintext operand is encoded with this array's ``frac_bits`` and (when packed) must
        broadcast to :attr:`plain_shape`. ``plain_bound`` declares a public bound on its
        magnitude (default: its actual maximum, which the result's ``bound`` then reveals).
        """
        enc = encryptor(self.pk)
        if isinstance(other, CiphertextArray):
            _same_space(self, other)
            a, b = np.broadcast_arrays(self.data, other.data)
            bound = self._grown(self.bound + other.bound, "ciphertext addition")
            return self._like(_map2(enc.add, a, b), bound)
        v = FixedPoint(self.frac_bits).encode(other)
        pb = max_abs(v) if plain_bound is None else int(plain_bound)
        if max_abs(v) > pb:
            raise DataError(f"plaintext operand exceeds its declared bound {pb}")
        bound = self._grown(self.bound + pb, "adding a plaintext")
        if self.layout is not None:
            v = self.layout.pack(np.broadcast_to(v, np.broadcast_shapes(v.shape, self.plain_shape)))
        a, b = np.broadcast_arrays(self.data, v)
        return self._like(_map2(enc.add_plain, a, b), bound)

    def mul(
        self,
        k: Any,
        *,
        frac_bits: int = 0,
        scalar_bound: int | None = None,
        workers: Workers | None = None,
    ) -> CiphertextArray:
        """Multiply each ciphertext by a plaintext scalar (broadcast to :attr:`shape`).

        When packed, all slots of a ciphertext are multiplied by the same scalar. Real
        multipliers need ``frac_bits`` (the result has ``self.frac_bits + frac_bits``);
        integer multipliers are exact. ``scalar_bound`` declares a public bound on ``|k|``;
        ``workers`` spreads the exponentiations over a :class:`Workers` pool.
        """
        if frac_bits == 0 and np.asarray(k).dtype.kind == "f":
            raise DataError("real multipliers need frac_bits > 0 (e.g. mul(w, frac_bits=20))")
        v = FixedPoint(frac_bits).encode(k)
        kb = max_abs(v) if scalar_bound is None else int(scalar_bound)
        if max_abs(v) > kb:
            raise DataError(f"multiplier exceeds its declared bound {kb}")
        bound = self._grown(self.bound * kb, "multiplication by a plaintext")
        a, b = np.broadcast_arrays(self.data, v)
        if workers is not None and workers.parallel and a.size >= 64:
            pk = self.pk
            flat_a, flat_b = a.reshape(-1).tolist(), np.ascontiguousarray(b).reshape(-1)
            spans = workers.chunks(len(flat_a))
            parts = workers.map(
                mul_chunk,
                [encode_public_key(pk)] * len(spans),
                [ints_to_bytes(flat_a[i:j], pk.ct_bytes) for i, j in spans],
                [flat_b[i:j] for i, j in spans],
            )
            out = objects(ints_from_bytes(b"".join(parts), pk.ct_bytes, a.size))
            return self._like(out.reshape(a.shape), bound, self.frac_bits + frac_bits)
        enc = encryptor(self.pk)
        return self._like(_map2(enc.mul_plain, a, b), bound, self.frac_bits + frac_bits)

    def sum(self, axis: int | None = None) -> CiphertextArray:
        """Homomorphic sum along ``axis`` (all elements when ``None``)."""
        enc = encryptor(self.pk)
        m = enc.modulus
        if axis is None:
            count, flat = self.size, self.data.reshape(-1)
            bound = self._grown(self.bound * max(count, 1), "summation")
            return self._like(np.array(_prod(flat.tolist(), m), dtype=object).reshape(()), bound)
        moved = np.moveaxis(self.data, axis, -1)
        count = moved.shape[-1]
        bound = self._grown(self.bound * max(count, 1), "summation")
        out = np.empty(moved.shape[:-1], dtype=object)
        for idx in np.ndindex(out.shape):
            out[idx] = _prod(moved[idx].tolist(), m)
        return self._like(out, bound)

    def rerandomize(self) -> CiphertextArray:
        """Multiply every ciphertext by a fresh encryption of zero (unlinkable, same values)."""
        enc = encryptor(self.pk)
        return self._like(_map1(enc.rerandomize, self.data), self.bound)


def _room(ct: CiphertextArray) -> str:
    if ct.layout is None:
        return f"{ct.pk.plaintext_bits}-bit plaintexts"
    return f"{ct.layout.slot_bits}-bit slots with {ct.layout.guard_bits} guard bits"


def _same_space(a: CiphertextArray, b: CiphertextArray) -> None:
    if a.pk.fingerprint != b.pk.fingerprint:
        raise ProtocolError(
            f"cannot combine ciphertexts under {a.pk.describe()} and {b.pk.describe()}"
        )
    if a.layout != b.layout or a.frac_bits != b.frac_bits:
        raise ProtocolError(
            "cannot add ciphertext arrays with different packing layouts or fixed-point scales "
            f"({a.layout}, frac {a.frac_bits} vs {b.layout}, frac {b.frac_bits})"
        )


def objects(values: Sequence[Any]) -> np.ndarray:
    """A 1-d object array of ``values`` (``np.fromiter``: assigning a list of ``mpz`` into an
    object array probes every element for the sequence protocol, ~1 us each)."""
    return np.fromiter(values, dtype=object, count=len(values))


def _map1(fn: Any, a: np.ndarray) -> np.ndarray:
    return objects([fn(x) for x in a.reshape(-1).tolist()]).reshape(a.shape)


def _map2(fn: Any, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    flat_b = b.reshape(-1).tolist()
    out = [fn(x, y) for x, y in zip(a.reshape(-1).tolist(), flat_b, strict=True)]
    return objects(out).reshape(a.shape)


def _prod(values: list[Any], m: Any) -> Any:
    acc = gmpy2.mpz(1)
    for c in values:
        acc = acc * c % m
    return acc


def _public_bound(x: np.ndarray, frac_bits: int) -> int:
    a = np.asarray(x)
    if a.dtype.kind == "b":
        return 1 << frac_bits
    if a.dtype.kind in "iu":
        info = np.iinfo(a.dtype)
        return max(abs(int(info.min)), int(info.max)) << frac_bits
    raise DataError(
        "encrypting reals or Python integers needs a public value_bound (largest |x| after "
        "fixed-point encoding); it is what the overflow checks rely on"
    )


def encrypt(
    key: PublicKey | PrivateKey,
    x: Any,
    *,
    frac_bits: int = 0,
    layout: SlotLayout | None = None,
    value_bound: int | None = None,
    workers: Workers | None = None,
) -> CiphertextArray:
    """Encrypt an array (at the key owner or anyone holding ``pk``).

    Parameters
    ----------
    key:
        Public key, or the key owner's private key (faster owner path:
        :func:`veil.he.engine.owner_encryptor`; the ciphertexts are distributed exactly as
        under the public key, and only its public part is kept).
    x:
        Integers or reals; with ``layout`` the last axis (of length ``n_slots``) is packed.
    frac_bits:
        Fixed-point fractional bits (reals are rounded to ``x * 2**frac_bits``).
    layout:
        Packing layout (:meth:`SlotLayout.for_sums`), or ``None`` for one value per ciphertext.
    value_bound:
        Public bound on ``|encoded value|``; defaults to the range of ``x``'s integer dtype
        (required for reals). Values above it raise :class:`DataError`.
    workers:
        A :class:`Workers` pool (default: in-process).
    """
    pk = key.public if isinstance(key, PrivateKey) else key
    secret = (key.p, key.q, key.t) if isinstance(key, PrivateKey) else None
    v = FixedPoint(frac_bits).encode(x)
    vb = _public_bound(np.asarray(x), frac_bits) if value_bound is None else int(value_bound)
    if max_abs(v) > vb:
        raise DataError(f"a value of magnitude {max_abs(v)} exceeds value_bound={vb}")
    if layout is not None:
        layout.check_fits(pk.plaintext_bits)
        if v.ndim == 0 or v.shape[-1] != layout.n_slots:
            raise DataError(f"packing {layout.n_slots} slots needs x.shape[-1] == n_slots")
        shape, rows = v.shape[:-1], np.reshape(v, (-1, layout.n_slots))
        lay: tuple[int, int, int] | None = (layout.n_slots, layout.slot_bits, layout.guard_bits)
    else:
        shape, rows, lay = v.shape, np.reshape(v, (-1, 1))[:, 0], None
    cap = layout.capacity if layout is not None else pk.plaintext_bound - 1
    if vb > cap:
        raise ConfigError(
            f"value_bound {vb} exceeds the capacity {cap} of "
            + ("the packing layout" if layout is not None else f"{pk.describe()}")
            + ": declare a tighter value_bound or build the layout for it (SlotLayout.for_sums)"
        )
    w = workers or Workers(1)
    blob = encode_public_key(pk)
    spans = w.chunks(len(rows))
    parts = w.map(
        encrypt_chunk,
        [blob] * len(spans),
        [secret] * len(spans),
        [rows[a:b] for a, b in spans],
        [lay] * len(spans),
    )
    return CiphertextArray.from_payload(
        pk, b"".join(parts), tuple(shape), layout=layout, bound=vb, frac_bits=frac_bits
    )


def decrypt_ints(
    sk: PrivateKey, ct: CiphertextArray, *, workers: Workers | None = None
) -> np.ndarray:
    """Decrypt to the encoded signed integers (object array of :attr:`plain_shape`).

    Raises :class:`ProtocolError` if ``ct`` is under another key or a value exceeds its bound
    (overflow, or a peer that misstated the bound).
    """
    pk = sk.public
    if ct.pk.fingerprint != pk.fingerprint:
        raise ProtocolError(
            f"ciphertexts are under {ct.pk.describe()}, not this private key's {pk.describe()}"
        )
    flat = ct.data.reshape(-1).tolist()
    w = workers or Workers(1)
    if w.parallel and len(flat) >= 64:
        blob = encode_public_key(pk)
        spans = w.chunks(len(flat))
        secret = (sk.p, sk.q, sk.t)
        parts = w.map(
            decrypt_chunk,
            [blob] * len(spans),
            [secret] * len(spans),
            [ints_to_bytes(flat[a:b], pk.ct_bytes) for a, b in spans],
        )
        ms = [m for part in parts for m in part]
    else:
        dec = decryptor(sk)
        ms = [dec.decrypt(c) for c in flat]
    plain = np.empty(len(ms), dtype=object)
    plain[:] = ms
    if ct.layout is not None:
        return ct.layout.unpack(plain.reshape(ct.shape), bound=ct.bound)
    for i, m in enumerate(ms):
        if abs(m) > ct.bound:
            raise ProtocolError(
                f"decrypted value {i} exceeds the ciphertext's bound {ct.bound}: overflow or a "
                "misstated bound; the result is not trustworthy"
            )
    return plain.reshape(ct.shape)


def decrypt(sk: PrivateKey, ct: CiphertextArray, *, workers: Workers | None = None) -> np.ndarray:
    """Decrypt and decode: int64 (``frac_bits == 0``; object if larger) or float64 values."""
    return FixedPoint(ct.frac_bits).decode(decrypt_ints(sk, ct, workers=workers))

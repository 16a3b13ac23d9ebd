"""The HE device (SecretFlow's HEU): additively homomorphic encryption under one party's key.

``heu = ctx.he("ou", key_owner=bank, evaluators=(ext1, ext2))`` builds an :class:`HEDevice` at
every party (collectively): the key owner generates a key pair (:func:`veil.he.keygen`) and
sends the public key (safe codec, no pickle) to every other party. ``x.to(heu)`` encrypts a
party's array at its owner (the key owner, or any party: all hold the public key) and sends the
ciphertexts to the evaluators. Evaluators add ciphertexts and plaintexts and multiply by
plaintexts; only the key owner decrypts, through ``ctx.reveal(value, to=key_owner)``.

Threat model: semi-honest; the scheme is IND-CPA (:mod:`veil.he`). Importing reveals the shape
and fixed-point scale to every party (sent as metadata) and the public ``bound`` of the values
to the evaluators. The key owner sees only what is revealed to it; results are re-randomized
before they are sent to it, so it cannot link them to its own encryptions. Evaluators see only
ciphertexts. Revealing to anyone but the key owner is refused (:class:`RevealDenied`): it holds
the only private key. OU is not CCA-secure: the key owner must never return decryptions of
arbitrary ciphertexts to other parties.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

import veil.he as he
from veil.core import wire
from veil.errors import ConfigError, DataError, ProtocolError, RevealDenied
from veil.transport.base import Link


class HEDevice:
    """One party's handle on an HE device.

    Parameters
    ----------
    ctx:
        The party's context (``party``, ``link``, ``next_key``); every party constructs it.
    scheme:
        ``"paillier"`` (DJN) or ``"ou"``.
    key_owner:
        The party that generates and keeps the private key.
    evaluators:
        Parties that receive ciphertexts and compute on them.
    key_bits:
        Modulus size (2048 default, 3072; smaller only with ``insecure=True``, for tests).
    frac_bits:
        Fixed-point fractional bits for real inputs (default 20).
    value_bound:
        Public bound on ``|x|`` of real inputs (default ``2**20``); integers use their dtype.
    workers:
        Processes for HE batches at this party (default 1: in-process).
    """

    reveal_kind = "he"

    def __init__(
        self,
        ctx: Any,
        scheme: str,
        key_owner: str,
        evaluators: Sequence[str],
        *,
        key_bits: int = 2048,
        insecure: bool = False,
        frac_bits: int = 20,
        value_bound: float = 2.0**20,
        workers: int = 1,
    ) -> None:
        link: Link = ctx.link
        self.ctx = ctx
        self.scheme = he.Scheme.parse(scheme)
        self.key_owner = key_owner
        self.evaluators = tuple(evaluators)
        for p in (key_owner, *self.evaluators):
            if p not in link.parties:
                raise ConfigError(f"HE device party {p!r} is not in the job {list(link.parties)}")
        if not self.evaluators or key_owner in self.evaluators:
            raise ConfigError("an HE device needs evaluators other than the key owner")
        if len(set(self.evaluators)) != len(self.evaluators):
            raise ConfigError(f"duplicate evaluators in {self.evaluators}")
        self.frac_bits = int(frac_bits)
        self.value_bound = float(value_bound)
        self.workers = he.Workers(workers) if workers > 1 else he.Workers(1)
        self._sk: he.PrivateKey | None = None
        key = ctx.next_key("he.pk")
        if ctx.party == key_owner:
            self.pk, self._sk = he.keygen(self.scheme, key_bits, insecure=insecure)
            blob = he.encode_public_key(self.pk)
            for p in link.peers:
                link.send_bytes(p, key, blob)
        else:
            self.pk = he.decode_public_key(link.recv_bytes(key_owner, key))

    def __repr__(self) -> str:
        return (
            f"HEDevice({self.scheme.name.lower()!r}, key_owner={self.key_owner!r}, "
            f"evaluators={self.evaluators})"
        )

    @property
    def link(self) -> Link:
        """This party's link."""
        out: Link = self.ctx.link
        return out

    def close(self) -> None:
        """Stop this party's worker processes (if any)."""
        self.workers.close()

    # ------------------------------------------------------------------ import
    def import_party_object(self, obj: Any) -> HEObject:
        """Encrypt a party's numeric array at its owner and send it to the evaluators.

        Collective. Floats are encoded with ``frac_bits`` under the public ``value_bound``;
        integers and booleans exactly. Every party receives the shape and scale (metadata).
        """
        link = self.link
        key = self.ctx.next_key("he.import")
        owner = obj.owner
        if obj.is_local:
            x = np.asarray(obj.value)
            if x.dtype.kind not in "biuf":
                raise DataError(f"{owner!r}: only numeric arrays can be encrypted, got {x.dtype}")
            frac = self.frac_bits if x.dtype.kind == "f" else 0
            bound = int(self.value_bound * 2**frac) if frac else None
            enc_key: he.PublicKey | he.PrivateKey = self._sk if self._sk is not None else self.pk
            ct = he.encrypt(enc_key, x, frac_bits=frac, value_bound=bound, workers=self.workers)
            meta = wire.encode_value({"shape": list(x.shape), "frac": frac})
            blob = he.dumps(ct)
            for p in link.peers:
                link.send_bytes(p, key, meta)
                if p in self.evaluators:
                    link.send_bytes(p, f"{key}.ct", blob)
            held = ct if owner in self.evaluators else None
            return HEObject(self, held, tuple(x.shape), frac, self._holders(owner))
        meta = wire.decode_value(link.recv_bytes(owner, key))
        if not isinstance(meta, dict) or "shape" not in meta or "frac" not in meta:
            raise ProtocolError(f"malformed HE import metadata from {owner!r}")
        shape, frac = tuple(int(s) for s in meta["shape"]), int(meta["frac"])
        ct_in = None
        if self.ctx.party in self.evaluators:
            ct_in = he.loads(link.recv_bytes(owner, f"{key}.ct"), self.pk, sender=owner)
            if ct_in.shape != shape:
                raise ProtocolError(
                    f"{owner!r} sent ciphertexts of shape {ct_in.shape}, not {shape}"
                )
        return HEObject(self, ct_in, shape, frac, self._holders(owner))

    def _holders(self, owner: str) -> tuple[str, ...]:
        del owner  # the evaluators hold every imported value (the owner keeps its plaintext)
        return self.evaluators


class HEObject:
    """A ciphertext array on an :class:`HEDevice`, held by the evaluators (``None`` elsewhere).

    Evaluators compute identically on their copies (SPMD), so every holder keeps the same
    ciphertexts. Supported: ``+``/``-`` with another :class:`HEObject` or a public numpy
    array, ``*`` by a public array (reals are multiplied in fixed point), ``sum(axis)``.
    """

    reveal_kind = "he"

    def __init__(
        self,
        device: HEDevice,
        ct: he.CiphertextArray | None,
        shape: tuple[int, ...],
        frac_bits: int,
        holders: tuple[str, ...],
    ) -> None:
        self.device = device
        self.ct = ct
        self.shape = shape
        self.frac_bits = frac_bits
        self.holders = holders

    @property
    def dtype(self) -> str:
        """``float64`` for fixed-point values, ``int64`` for integers."""
        return "float64" if self.frac_bits else "int64"

    def __repr__(self) -> str:
        return f"HEObject(shape={self.shape}, dtype={self.dtype}, holders={self.holders})"

    def _new(self, ct: he.CiphertextArray | None, shape: tuple[int, ...], frac: int) -> HEObject:
        return HEObject(self.device, ct, shape, frac, self.holders)

    def __add__(self, other: Any) -> HEObject:
        if isinstance(other, HEObject):
            if other.device is not self.device or other.frac_bits != self.frac_bits:
                raise ProtocolError("cannot add HE values of different devices or scales")
            shape = np.broadcast_shapes(self.shape, other.shape)
            ct = None if self.ct is None or other.ct is None else self.ct + other.ct
            return self._new(ct, shape, self.frac_bits)
        plain = _public(other)
        shape = np.broadcast_shapes(self.shape, plain.shape)
        return self._new(None if self.ct is None else self.ct + plain, shape, self.frac_bits)

    __radd__ = __add__

    def __neg__(self) -> HEObject:
        return self._new(None if self.ct is None else -self.ct, self.shape, self.frac_bits)

    def __sub__(self, other: Any) -> HEObject:
        return self + (-other if isinstance(other, HEObject) else -_public(other))

    def __rsub__(self, other: Any) -> HEObject:
        return (-self).__add__(other)

    def __mul__(self, other: Any) -> HEObject:
        plain = _public(other)
        shape = np.broadcast_shapes(self.shape, plain.shape)
        frac = self.device.frac_bits if plain.dtype.kind == "f" else 0
        ct = None
        if self.ct is not None:
            ct = self.ct.mul(plain, frac_bits=frac, workers=self.device.workers)
        return self._new(ct, shape, self.frac_bits + frac)

    __rmul__ = __mul__

    def sum(self, axis: int | None = None) -> HEObject:
        """Homomorphic sum over ``axis`` (all elements when ``None``)."""
        shape = () if axis is None else tuple(np.delete(np.array(self.shape), axis).tolist())
        return self._new(None if self.ct is None else self.ct.sum(axis), shape, self.frac_bits)

    def reveal_to(self, recipients: Sequence[str]) -> Any:
        """Decrypt at the key owner (called by ``ctx.reveal``; collective).

        The first holder re-randomizes the ciphertexts and sends them to the key owner, which
        decrypts. Recipients other than the key owner are refused with :class:`RevealDenied`.
        """
        dev = self.device
        if tuple(recipients) != (dev.key_owner,):
            raise RevealDenied(
                f"an HE value can be revealed only to its key owner {dev.key_owner!r}, not to "
                f"{list(recipients)}; reveal the decrypted result onward from there"
            )
        link, me = dev.link, dev.ctx.party
        key = dev.ctx.next_key("he.reveal")
        sender = self.holders[0]
        if me == sender:
            if self.ct is None:
                raise ProtocolError(f"{me!r} should hold the ciphertexts but does not")
            link.send_bytes(dev.key_owner, key, he.dumps(self.ct.rerandomize()))
            return None
        if me != dev.key_owner:
            return None
        assert dev._sk is not None
        ct = he.loads(link.recv_bytes(sender, key), dev.pk, sender=sender)
        if ct.shape != self.shape:
            raise ProtocolError(f"{sender!r} revealed shape {ct.shape}, expected {self.shape}")
        return he.decrypt(dev._sk, ct, workers=dev.workers)


def _public(x: Any) -> np.ndarray[Any, Any]:
    if hasattr(x, "owner") and hasattr(x, "is_local"):
        raise ProtocolError(
            "a party's private value cannot enter HE arithmetic directly: encrypt it with "
            "x.to(heu) first (plaintext operands must be public to all evaluators)"
        )
    a = np.asarray(x)
    if a.dtype.kind not in "biuf":
        raise DataError(f"HE plaintext operands must be numeric, got {a.dtype}")
    return a.astype(np.int64) if a.dtype.kind in "bu" else a

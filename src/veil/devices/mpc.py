"""The MPC device (SecretFlow's SPU): secret-shared computation across parties.

``mpc = ctx.mpc("aby3", parties=(alice, bob, carol))`` or
``ctx.mpc("semi2k", parties=(a, b), dealer=d)`` builds an :class:`MPCDevice` at every party
(collectively: protocol setup exchanges PRG seeds). ``x.to(mpc)`` secret-shares a party's
value; operators and :mod:`veil.mpc` functions compute on the shares; ``ctx.reveal`` opens a
result. ``mpc(fn)(*args)`` runs a numpy-style function on secret tensors.

What is revealed: importing reveals the *shape and dtype* of the value to every party (the
owner sends them as metadata); nothing else leaves the owner except uniformly random shares.
The threat model is the protocol's (see :mod:`veil.mpc.protocols.semi2k.protocol` and
:mod:`veil.mpc.protocols.aby3.protocol`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from veil.core import wire
from veil.core.fixedpoint import DEFAULT_FRAC_BITS
from veil.errors import DataError, PeerError
from veil.mpc.engine import Engine, infer_dtype
from veil.mpc.tensor import FXP, INT, SecretTensor
from veil.transport.base import Link

#: Largest number of elements accepted in an import's metadata.
MAX_IMPORT_ELEMENTS = 1 << 34


class DeviceContext(Protocol):
    """What the device needs from the runtime's context."""

    party: str
    link: Link

    def next_key(self, tag: str) -> str: ...


class MPCDevice:
    """One party's handle on an MPC device.

    Parameters
    ----------
    ctx:
        The party's context (``party``, ``link``, ``next_key``).
    protocol:
        ``"semi2k"`` (N ≥ 2 parties + a trusted ``dealer``), ``"aby3"`` (3 parties) or ``"ref"``
        (plaintext oracle, no privacy).
    parties:
        Names of the computing parties.
    dealer:
        semi2k's trusted dealer party (a separate party of the cluster).
    frac_bits:
        Fixed-point fractional bits (default 18).
    options:
        Protocol options (semi2k ``trunc="pair"|"local"``).
    """

    def __init__(
        self,
        ctx: DeviceContext,
        protocol: str,
        parties: tuple[str, ...],
        dealer: str | None = None,
        *,
        frac_bits: int = DEFAULT_FRAC_BITS,
        **options: Any,
    ) -> None:
        self.ctx = ctx
        self.protocol = protocol
        self.parties = tuple(parties)
        self.dealer = dealer
        self.engine = Engine(
            ctx.link,
            ctx.next_key,
            protocol,
            self.parties,
            dealer=dealer,
            frac_bits=frac_bits,
            device=self,
            **options,
        )

    def __repr__(self) -> str:
        extra = f", dealer={self.dealer!r}" if self.dealer else ""
        return f"MPCDevice({self.protocol!r}, parties={self.parties}{extra})"

    # ------------------------------------------------------------ import
    def import_party_object(self, obj: Any) -> SecretTensor:
        """Secret-share a party's value (collective; the owner need not compute).

        The owner sends ``{shape, dtype}`` to every other party of the job, then shares.
        Floats become ``fxp64``, integers and booleans ``int64``.
        """
        link = self.ctx.link
        key = self.ctx.next_key("mpc.import")
        owner = obj.owner
        value = None
        if obj.is_local:
            value = np.asarray(obj.value)
            if value.dtype.kind not in "biuf":
                raise DataError(
                    f"cannot import a {value.dtype} value into MPC at {owner!r}; "
                    "convert it to a numeric numpy array first"
                )
            meta = {"shape": list(value.shape), "dtype": infer_dtype(value)}
            payload = wire.encode_value(meta)
            for p in link.peers:
                link.send_bytes(p, key, payload)
            shape, dtype = tuple(value.shape), str(meta["dtype"])
        else:
            shape, dtype = self._read_meta(link.recv_bytes(owner, key), owner)
        return self.engine.input(owner, value, shape, dtype)

    @staticmethod
    def _read_meta(data: bytes, owner: str) -> tuple[tuple[int, ...], str]:
        meta = wire.decode_value(data, max_bytes=1 << 16)
        if not isinstance(meta, dict) or set(meta) != {"shape", "dtype"}:
            raise PeerError(owner, "sent malformed import metadata")
        shape, dtype = meta["shape"], meta["dtype"]
        if (
            not isinstance(shape, list | tuple)
            or not all(isinstance(s, int) and s >= 0 for s in shape)
            or dtype not in (FXP, INT)
            or int(np.prod(shape, dtype=np.float64)) > MAX_IMPORT_ELEMENTS
        ):
            raise PeerError(owner, f"sent invalid import metadata {meta!r}")
        return tuple(int(s) for s in shape), str(dtype)

    # ------------------------------------------------------------ helpers
    def constant(self, value: Any) -> SecretTensor:
        """A public value as a secret tensor on this device (no communication)."""
        return self.engine.constant(value)

    def __call__(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Wrap a numpy-style function to run on secret tensors: ``mpc(fn)(*args)``.

        :class:`PartyObject` arguments (anything with ``owner`` and ``is_local``) are imported
        first; secret tensors pass through; other arguments stay public. The function may use
        operators, indexing, ``.sum``/``.T`` and :mod:`veil.mpc` functions.
        """

        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            conv = [self._arg(a) for a in args]
            kw = {k: self._arg(v) for k, v in kwargs.items()}
            return fn(*conv, **kw)

        return run

    def _arg(self, a: Any) -> Any:
        if isinstance(a, SecretTensor):
            return a
        if hasattr(a, "owner") and hasattr(a, "is_local"):
            return self.import_party_object(a)
        return a


__all__ = ["MPCDevice"]

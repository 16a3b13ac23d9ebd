"""The per-party MPC engine: a protocol instance plus the fixed-point codec.

An :class:`Engine` is what secret tensors point to. It is constructed collectively (every party
of the device, in the same program order) because protocol setup exchanges seeds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from veil.core.fixedpoint import DEFAULT_FRAC_BITS, FixedPoint
from veil.core.ring import from_signed
from veil.errors import ConfigError, DataError
from veil.mpc.comm import Comm
from veil.mpc.protocols.base import Protocol
from veil.mpc.protocols.registry import default_registry
from veil.mpc.tensor import FXP, INT, SecretTensor
from veil.transport.base import Link


class Engine:
    """One party's MPC engine.

    Parameters
    ----------
    link:
        This party's link.
    next_key:
        SPMD key source (``ctx.next_key``).
    protocol:
        ``"ref"``, ``"semi2k"`` or ``"aby3"``.
    parties:
        Computing parties.
    dealer:
        semi2k's trusted dealer.
    frac_bits:
        Fixed-point fractional bits (default 18).
    device:
        The device object owning this engine (returned by ``SecretTensor.device``).
    options:
        Protocol options (semi2k: ``trunc="pair"|"local"``).
    """

    def __init__(
        self,
        link: Link,
        next_key: Callable[[str], str],
        protocol: str,
        parties: tuple[str, ...],
        *,
        dealer: str | None = None,
        frac_bits: int = DEFAULT_FRAC_BITS,
        device: Any = None,
        **options: Any,
    ) -> None:
        for p in (*parties, *((dealer,) if dealer else ())):
            if p not in link.parties:
                raise ConfigError(f"MPC party {p!r} is not in the cluster {list(link.parties)}")
        if len(set(parties)) != len(parties):
            raise ConfigError(f"duplicate MPC parties in {list(parties)}")
        self.fxp = FixedPoint(frac_bits)
        self.comm = Comm(link, next_key, f"mpc.{protocol}")
        self.protocol: Protocol = default_registry().create(
            protocol, self.comm, tuple(parties), frac_bits, dealer=dealer, **options
        )
        self.device = device if device is not None else self
        self.party = link.party

    def input(self, owner: str, value: Any, shape: tuple[int, ...], dtype: str) -> SecretTensor:
        """Secret-share ``value`` (known at ``owner`` only; ``None`` elsewhere)."""
        ring = None
        pshape = tuple(shape) or (1,)
        if self.party == owner:
            ring = self.encode(np.asarray(value), dtype).reshape(pshape)
        shares = self.protocol.input(owner, ring, pshape)
        return SecretTensor(self, shares, shape, dtype)

    def encode(self, value: np.ndarray[Any, Any], dtype: str) -> np.ndarray[Any, Any]:
        """Plain value → ring (fixed point for ``fxp64``, two's complement for ``int64``)."""
        if dtype == FXP:
            return self.fxp.encode(value)
        if dtype == INT:
            if value.dtype.kind not in "iub":
                raise DataError(f"int64 secrets need integer input, got {value.dtype}")
            return from_signed(value.astype(np.int64))
        raise DataError(f"unknown secret dtype {dtype!r}; use 'fxp64' or 'int64'")

    def constant(self, value: Any, dtype: str | None = None) -> SecretTensor:
        """A public value as a (trivially shared) secret tensor (local)."""
        v = np.asarray(value)
        dt = dtype or (INT if v.dtype.kind in "iub" else FXP)
        ring = self.encode(v, dt).reshape(v.shape or (1,))
        zero = self.protocol.zeros(v.shape or (1,))
        shares = self.protocol.add_public(zero, ring) if zero else ()
        return SecretTensor(self, shares, v.shape, dt)


def infer_dtype(value: Any) -> str:
    """``int64`` for integer/bool arrays, ``fxp64`` for floats."""
    return INT if np.asarray(value).dtype.kind in "iub" else FXP


__all__ = ["Engine", "infer_dtype"]

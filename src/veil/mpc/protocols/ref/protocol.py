"""ref: the plaintext reference protocol, the oracle of the conformance suite.

Threat model
------------
None — it provides **no privacy**: every computing party holds the plaintext of every value
(inputs are sent in the clear to all of them). Use it to test programs and as the oracle the
secure protocols are compared with; never with real data across institutions. Truncation is
exact (floor), so secure results may differ by one unit in the last place.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from veil.core.ring import Ring
from veil.errors import ConfigError
from veil.mpc.comm import FRAME_HEADER_BYTES as H
from veil.mpc.comm import Comm
from veil.mpc.protocols.base import FIXED_KERNELS, Cost, Protocol, Shape, Shares, numel
from veil.mpc.protocols.ref import arithmetic, conversion


class Ref(Protocol):
    """One party's plaintext oracle (any number of parties ≥ 1, no dealer)."""

    name = "ref"

    def __init__(
        self, comm: Comm, parties: tuple[str, ...], frac_bits: int, *, dealer: str | None = None
    ) -> None:
        if not parties:
            raise ConfigError("ref needs at least one party")
        if dealer is not None:
            raise ConfigError("ref takes no dealer")
        super().__init__(comm, parties, frac_bits)

    @property
    def ncomp(self) -> int:
        return 1

    def input(self, owner: str, value: Ring | None, shape: Shape) -> Shares:
        key = self.comm.key("input")
        if self.comm.party == owner:
            assert value is not None
            v = np.array(value, dtype=np.uint64, copy=True).reshape(shape)
            for p in self.parties:
                if p != owner:
                    self.comm.send(p, key, v)
            return (v,) if self.rank is not None else ()
        if self.rank is None:
            return ()
        self.comm.tick()
        return (self.comm.recv(owner, key, shape),)

    def reveal(self, x: Shares, shape: Shape, to: tuple[str, ...]) -> Ring | None:
        key = self.comm.key("reveal")
        first = self.parties[0]
        if self.comm.party == first:
            for p in to:
                if p not in self.parties:
                    self.comm.send(p, key, x[0])
        if self.comm.party not in to:
            return None
        if x:
            return np.array(x[0], copy=True)
        self.comm.tick()
        return self.comm.recv(first, key, shape)

    def add_public(self, x: Shares, c: Ring) -> Shares:
        return (x[0] + c,) if x else ()

    def mul(self, x: Shares, y: Shares, shape: Shape) -> Shares:
        return arithmetic.mul(x, y)

    def matmul(self, x: Shares, y: Shares, sx: Shape, sy: Shape) -> Shares:
        return arithmetic.matmul(x, y)

    def trunc(self, x: Shares, shape: Shape, bits: int) -> Shares:
        return arithmetic.trunc(x, bits)

    def msb(self, x: Shares, shape: Shape) -> Shares:
        return conversion.msb(x)

    def a2b(self, x: Shares, shape: Shape) -> Shares:
        return conversion.identity(x)

    def b2a(self, b: Shares, shape: Shape) -> Shares:
        return conversion.identity(b)

    def cost(self, kernel: str, shape: Shape, **kw: Any) -> Cost:
        """Every kernel is local: zero rounds and bytes."""
        if kernel in FIXED_KERNELS:
            return self.fixed_cost(kernel, shape, **kw)
        if kernel in ("mul", "matmul", "trunc", "mul_trunc", "matmul_trunc", "msb", "a2b", "b2a"):
            return Cost(0, 0)
        if kernel == "input":
            msgs = len(self.parties) - (kw["owner"] in self.parties)
            return Cost(1, msgs * (8 * numel(shape) + H))
        if kernel == "reveal":
            msgs = sum(r not in self.parties for r in kw["to"])
            return Cost(1 if msgs else 0, msgs * (8 * numel(shape) + H))
        raise ConfigError(f"ref declares no cost for kernel {kernel!r}")


__all__ = ["Ref"]

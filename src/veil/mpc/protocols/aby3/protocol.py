"""aby3: three parties, 2-out-of-3 replicated secret sharing over Z_2^64, no dealer.

Threat model
------------
Semi-honest (passive) adversary, **honest majority**: privacy holds against any single
corrupted party; two colluding parties can reconstruct every secret. No trusted dealer: the
correlated randomness comes from pairwise AES-CTR keys set up at construction, and for
truncation and comparison one of the three parties acts as the helper of the other two (it
knows the masks but receives no data-dependent message). Not secure against parties that
deviate from the protocol (no MACs).

What each kernel reveals
------------------------
Nothing: each message is re-randomised by a zero sharing or masked by randomness the receiver
does not know. Only :meth:`Aby3.reveal` opens a secret, to the parties named.

Costs (``n`` elements, ``h`` = 16 header bytes per frame)
--------------------------------------------------------
===========  ======  =====================================================
kernel       rounds  bytes sent (all parties)
===========  ======  =====================================================
mul          1       3(8n + h)                      (integer product)
mul_trunc    2       64n + 7h                        (fixed-point product)
matmul       1       3(8|x@y| + h)
trunc        2       64n + 7h
msb          9       semi2k msb for 2 parties + 2(8n + h)
a2b / b2a    8 / 9   semi2k a2b / b2a for 2 parties + 2(8n + h)
===========  ======  =====================================================
"""

from __future__ import annotations

from typing import Any

import numpy as np

from veil.core.prg import SEED_BYTES, Prg, new_seed
from veil.core.ring import Ring
from veil.errors import ConfigError
from veil.mpc.comm import FRAME_HEADER_BYTES as H
from veil.mpc.comm import Comm
from veil.mpc.protocols.aby3 import arithmetic as ar
from veil.mpc.protocols.aby3 import conversion
from veil.mpc.protocols.base import (
    FIXED_KERNELS,
    Cost,
    Protocol,
    Shape,
    Shares,
    matmul_shape,
    numel,
)
from veil.mpc.protocols.semi2k.protocol import Semi2k


class Aby3(Protocol):
    """One party's aby3 engine (exactly three computing parties)."""

    name = "aby3"

    def __init__(
        self, comm: Comm, parties: tuple[str, ...], frac_bits: int, *, dealer: str | None = None
    ) -> None:
        if len(parties) != 3:
            raise ConfigError(f"aby3 needs exactly 3 parties, got {list(parties)}")
        if dealer is not None:
            raise ConfigError("aby3 takes no dealer (it is honest-majority by construction)")
        super().__init__(comm, parties, frac_bits)
        key = comm.key("aby3.setup")
        self._own = Prg(new_seed())
        self.zero_own = self.zero_next = self.pair_own = self.pair_next = self._own
        if self.rank is not None:
            seeds = new_seed() + new_seed()
            prev = parties[(self.rank - 1) % 3]
            nxt = parties[(self.rank + 1) % 3]
            comm.send(prev, key, np.frombuffer(seeds, dtype=np.uint8))
            got = comm.recv(nxt, key, (2 * SEED_BYTES,), np.uint8).tobytes()
            self.zero_own, self.pair_own = Prg(seeds[:SEED_BYTES]), Prg(seeds[SEED_BYTES:])
            self.zero_next, self.pair_next = Prg(got[:SEED_BYTES]), Prg(got[SEED_BYTES:])
        # Two-party sub-engine between parties 0 and 1 with party 2 as helper (msb, trunc).
        self.sub = Semi2k(comm, parties[:2], frac_bits, dealer=parties[2])

    @property
    def ncomp(self) -> int:
        return 2

    # ------------------------------------------------------------------ i/o
    def input(self, owner: str, value: Ring | None, shape: Shape) -> Shares:
        key = self.comm.key("input")
        if self.comm.party == owner:
            assert value is not None
            x2 = np.array(value, dtype=np.uint64, copy=True).reshape(shape)
            x0 = self._own.random_u64(shape)
            x1 = self._own.random_u64(shape)
            x2 -= x0 + x1
            comps = (x0, x1, x2)
            mine: Shares = ()
            for i, p in enumerate(self.parties):
                pair = (comps[i], comps[(i + 1) % 3])
                if p == owner:
                    mine = pair
                else:
                    self.comm.send(
                        p, key, np.concatenate([pair[0].reshape(-1), pair[1].reshape(-1)])
                    )
            return mine
        if self.rank is None:
            return ()
        n = numel(shape)
        both = self.comm.recv(owner, key, (2 * n,))
        self.comm.tick()
        return (both[:n].reshape(shape), both[n:].reshape(shape))

    def reveal(self, x: Shares, shape: Shape, to: tuple[str, ...]) -> Ring | None:
        key = self.comm.key("reveal")
        me = self.comm.party
        for p in to:
            if p == me or not x:
                continue
            if p in self.parties:
                j = self.parties.index(p)
                if self.rank == (j + 1) % 3:
                    self.comm.send(p, key, x[1])  # x_{j+2}, the component p lacks
            elif self.rank == 0:
                self.comm.send(p, key, x[0])
            elif self.rank == 1:
                self.comm.send(p, key, x[0] + x[1])
        if me not in to:
            return None
        self.comm.tick()
        if x:
            assert self.rank is not None
            src = self.parties[(self.rank + 1) % 3]
            out: Ring = x[0] + x[1] + self.comm.recv(src, key, shape)
            return out
        out = self.comm.recv(self.parties[0], key, shape)
        out += self.comm.recv(self.parties[1], key, shape)
        return out

    # ---------------------------------------------------------------- local
    def add_public(self, x: Shares, c: Ring) -> Shares:
        if self.rank == 0:
            return (x[0] + c, x[1])
        if self.rank == 2:
            return (x[0], x[1] + c)
        return x

    # ------------------------------------------------------------ kernels
    def mul(self, x: Shares, y: Shares, shape: Shape) -> Shares:
        key = self.comm.key("mul")
        if not x:
            return ()
        return ar.reshare(self, key, ar.local_product(x, y) + ar.zero_mask(self, shape), shape)

    def mul_trunc(self, x: Shares, y: Shares, shape: Shape, bits: int) -> Shares:
        z = ar.local_product(x, y) if x else None
        return ar.trunc_additive(self, z, shape, bits)

    def matmul(self, x: Shares, y: Shares, sx: Shape, sy: Shape) -> Shares:
        key = self.comm.key("matmul")
        if not x or self.rank is None:
            return ()
        so = matmul_shape(sx, sy)
        z = ar.local_matmul(x, y, self.rank)
        z += ar.zero_mask(self, so)
        return ar.reshare(self, key, z, so)

    def matmul_trunc(self, x: Shares, y: Shares, sx: Shape, sy: Shape, bits: int) -> Shares:
        so = matmul_shape(sx, sy)
        z = ar.local_matmul(x, y, self.rank) if x and self.rank is not None else None
        return ar.trunc_additive(self, z, so, bits)

    def trunc(self, x: Shares, shape: Shape, bits: int) -> Shares:
        return ar.trunc_additive(self, x[0] if x else None, shape, bits)

    def msb(self, x: Shares, shape: Shape) -> Shares:
        return conversion.msb(self, x, shape)

    def a2b(self, x: Shares, shape: Shape) -> Shares:
        """Replicated XOR shares ``(b_i, b_{i+1})`` of the bits of ``x``. Eight rounds."""
        return conversion.a2b(self, x, shape)

    def b2a(self, b: Shares, shape: Shape) -> Shares:
        """Replicated arithmetic shares of replicated XOR-shared words. Nine rounds."""
        return conversion.b2a(self, b, shape)

    # ---------------------------------------------------------------- cost
    def cost(self, kernel: str, shape: Shape, **kw: Any) -> Cost:
        """Declared cost; ``kw``: ``shape_y`` (matmul), ``owner`` (input), ``to`` (reveal)."""
        n = numel(shape)
        if kernel in FIXED_KERNELS:
            return self.fixed_cost(kernel, shape, **kw)
        if kernel == "input":
            return Cost(1, (3 - (kw["owner"] in self.parties)) * (16 * n + H))
        if kernel == "reveal":
            msgs = sum(1 if r in self.parties else 2 for r in kw["to"])
            return Cost(1, msgs * (8 * n + H))
        if kernel == "mul":
            return Cost(1, 3 * (8 * n + H))
        if kernel in ("mul_trunc", "trunc"):
            return Cost(2, 64 * n + 7 * H)
        if kernel == "matmul":
            so = matmul_shape(shape, kw["shape_y"])
            return Cost(1, 3 * (8 * numel(so) + H))
        if kernel == "matmul_trunc":
            so = matmul_shape(shape, kw["shape_y"])
            return Cost(2, 64 * numel(so) + 7 * H)
        if kernel == "msb":
            sub = self.sub.cost("msb", shape)
            return Cost(sub.rounds + 1, sub.bytes + 2 * (8 * n + H))
        if kernel in ("a2b", "b2a"):
            sub = self.sub.cost(kernel, shape)
            return Cost(sub.rounds + 1, sub.bytes + 2 * (8 * n + H))
        raise ConfigError(f"aby3 declares no cost for kernel {kernel!r}")


__all__ = ["Aby3"]

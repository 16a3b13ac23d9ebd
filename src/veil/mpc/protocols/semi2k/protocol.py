"""semi2k: N ≥ 2 parties, additive secret sharing over Z_2^64, correlations from a dealer.

Threat model
------------
Semi-honest (passive) adversary, dishonest majority among the computing parties: any coalition
of up to N − 1 computing parties learns nothing beyond its inputs and the values explicitly
revealed. The dealer is a *trusted* separate party (semi-honest, colluding with nobody): it
sees no input-dependent message, but it knows every mask, so dealer + one party together
break privacy. Not secure against parties that deviate from the protocol (no MACs).

What each kernel reveals
------------------------
Nothing: every opened value is masked by a uniform dealer value (``x − a``, ``x + r``) that the
parties cannot remove. Only :meth:`Semi2k.reveal` opens a secret, to the parties named.

Costs (``n`` elements, N parties, ``h`` = 16 header bytes per frame)
--------------------------------------------------------------------
==========  ======  =====================================================================
kernel      rounds  bytes sent (all parties)
==========  ======  =====================================================================
mul         1       N(N−1)(16n + h) + 8n + h
matmul      1       N(N−1)(8(|x| + |y|) + h) + 8|x@y| + h
trunc       1       pair: N(N−1)(8n + h) + 16n + h; local (N = 2 only): 0
mul_trunc   2       pair: N(N−1)(24n + 2h) + 24n + 2h (the triple carries the mask)
msb         8       N(N−1)·38n + 35n + headers (:meth:`Semi2k.cost`)
a2b         7       N(N−1)·144n + 96n + headers
b2a         8       N(N−1)·160n + 104n + headers
fix         1       N(N−1)(8|x| + h)  (opens x − A once; A is reused, see below)
fixed_mm    2       N(N−1)(8|y| + h) + 24|o| + 2h + N(N−1)(8|o| + h)  (o = x[rows] @ y)
==========  ======  =====================================================================

``fix`` / ``fixed_matmul_trunc`` (:class:`~veil.mpc.fixed.FixedMatrix`) reuse one dealer mask
``A`` of a matrix across many products: ``x − A`` is opened once, and every product masks its
other operand and its result with fresh dealer values, so each opened value is still uniform
("matrix triple reuse", SecureML; SPU's Beaver cache).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from veil.core.prg import Prg, new_seed
from veil.core.ring import Ring
from veil.errors import ConfigError
from veil.mpc.comm import FRAME_HEADER_BYTES as H
from veil.mpc.comm import Comm
from veil.mpc.correlated.dealer import DealerSource
from veil.mpc.protocols.base import (
    FIXED_KERNELS,
    Cost,
    Fixed,
    Protocol,
    Rows,
    Shape,
    Shares,
    matmul_shape,
    numel,
)
from veil.mpc.protocols.semi2k import arithmetic, conversion
from veil.mpc.protocols.semi2k.boolean import carry_cost_bytes, prefix_cost_bytes

TRUNC_MODES = ("pair", "local")


class Semi2k(Protocol):
    """One party's semi2k engine.

    Parameters
    ----------
    comm:
        Messaging of the device.
    parties:
        Computing parties (N ≥ 2), in share order.
    frac_bits:
        Fixed-point fractional bits.
    dealer:
        Name of the trusted dealer party (required, not a computing party).
    trunc:
        ``"pair"`` (default): a dealer truncation pair — one round, ±1 ulp, no failure
        probability, any N. ``"local"``: SecureML share-local truncation — no communication,
        2 parties only, ±1 ulp, but with probability ≈ ``|x|/2^63`` per element (``x`` the
        value being truncated, in ring units) a large error; see
        :func:`~veil.mpc.protocols.semi2k.arithmetic.trunc_local`. It is not the default
        because intermediate values of ``exp``/polynomials reach 2^55 (failure 2^-8 per
        element; the conformance suite catches it).
    """

    name = "semi2k"

    def __init__(
        self,
        comm: Comm,
        parties: tuple[str, ...],
        frac_bits: int,
        *,
        dealer: str | None = None,
        trunc: str = "pair",
    ) -> None:
        if len(parties) < 2:
            raise ConfigError(f"semi2k needs at least 2 computing parties, got {list(parties)}")
        if dealer is None:
            raise ConfigError(
                "semi2k needs a trusted dealer party: ctx.mpc('semi2k', parties=..., dealer=d)"
            )
        if trunc not in TRUNC_MODES:
            raise ConfigError(f"semi2k trunc must be one of {TRUNC_MODES}, got {trunc!r}")
        if trunc == "local" and len(parties) != 2:
            raise ConfigError("semi2k trunc='local' works for exactly 2 parties; use 'pair'")
        super().__init__(comm, parties, frac_bits)
        self.trunc_mode = trunc
        self.dealer_name = dealer
        self.dealer = DealerSource(comm, parties, dealer, comm.key("semi2k.setup"))
        self._own = Prg(new_seed())

    @property
    def ncomp(self) -> int:
        return 1

    # ------------------------------------------------------------------ i/o
    def input(self, owner: str, value: Ring | None, shape: Shape) -> Shares:
        key = self.comm.key("input")
        if self.comm.party == owner:
            assert value is not None
            rest = np.array(value, dtype=np.uint64, copy=True).reshape(shape)
            mine: Ring | None = None
            for i, p in enumerate(self.parties):
                if p == owner:
                    continue
                if i == len(self.parties) - 1 and owner not in self.parties:
                    self.comm.send(p, key, rest)
                    continue
                s = self._own.random_u64(shape)
                rest -= s
                self.comm.send(p, key, s)
            if owner in self.parties:
                mine = rest
            return (mine,) if mine is not None else ()
        if self.rank is None:
            return ()
        self.comm.tick()
        return (self.comm.recv(owner, key, shape),)

    def reveal(self, x: Shares, shape: Shape, to: tuple[str, ...]) -> Ring | None:
        key = self.comm.key("reveal")
        if x:
            for p in to:
                if p != self.comm.party:
                    self.comm.send(p, key, x[0])
        if self.comm.party not in to:
            return None
        total = np.array(x[0], copy=True) if x else np.zeros(shape, dtype=np.uint64)
        for p in self.parties:
            if p != self.comm.party:
                total += self.comm.recv(p, key, shape)
        self.comm.tick()
        return total

    # ---------------------------------------------------------------- local
    def add_public(self, x: Shares, c: Ring) -> Shares:
        if not x:
            return ()
        return (x[0] + c,) if self.rank == 0 else x

    # ------------------------------------------------------------ kernels
    def mul(self, x: Shares, y: Shares, shape: Shape) -> Shares:
        return arithmetic.mul(self, x, y, shape)

    def matmul(self, x: Shares, y: Shares, sx: Shape, sy: Shape) -> Shares:
        return arithmetic.matmul(self, x, y, sx, sy)

    def mul_trunc(self, x: Shares, y: Shares, shape: Shape, bits: int) -> Shares:
        if self.trunc_mode == "local":
            return super().mul_trunc(x, y, shape, bits)
        return arithmetic.mul_trunc(self, x, y, shape, shape, bits, matmul=False)

    def matmul_trunc(self, x: Shares, y: Shares, sx: Shape, sy: Shape, bits: int) -> Shares:
        if self.trunc_mode == "local":
            return super().matmul_trunc(x, y, sx, sy, bits)
        return arithmetic.mul_trunc(self, x, y, sx, sy, bits, matmul=True)

    def fix(self, x: Shares, shape: Shape) -> Fixed:
        """Open ``x − A`` once for a reused dealer mask ``A`` (:func:`arithmetic.fix`)."""
        if self.trunc_mode == "local":
            return super().fix(x, shape)
        return arithmetic.fix(self, x, shape)

    def fixed_matmul_trunc(
        self, fx: Fixed, rows: Rows, transpose: bool, y: Shares, sy: Shape, bits: int
    ) -> Shares:
        if self.trunc_mode == "local":
            return super().fixed_matmul_trunc(fx, rows, transpose, y, sy, bits)
        return arithmetic.fixed_matmul_trunc(self, fx, rows, transpose, y, sy, bits)

    def trunc(self, x: Shares, shape: Shape, bits: int) -> Shares:
        if self.trunc_mode == "local":
            return arithmetic.trunc_local(self, x, shape, bits)
        return arithmetic.trunc_pair(self, x, shape, bits)

    def msb(self, x: Shares, shape: Shape) -> Shares:
        return conversion.msb(self, x, shape)

    def a2b(self, x: Shares, shape: Shape) -> Shares:
        """XOR shares of the bits of ``x`` (one ``uint64`` word per element). Seven rounds."""
        return conversion.a2b(self, x, shape)

    def b2a(self, b: Shares, shape: Shape) -> Shares:
        """Arithmetic shares of XOR-shared words. Eight rounds."""
        return conversion.b2a(self, b, shape)

    # ---------------------------------------------------------------- cost
    def fixed_cost(self, kernel: str, shape: Shape, **kw: Any) -> Cost:
        """``fix``: one round, ``x − A`` to every peer. ``fixed_matmul_trunc`` (``shape`` the
        selected operand's): as ``matmul_trunc`` without the ``8|x|`` term per peer."""
        if self.trunc_mode == "local":
            return super().fixed_cost(kernel, shape, **kw)
        pairs = len(self.parties) * (len(self.parties) - 1)
        if kernel == "fix":
            return Cost(1, pairs * (8 * numel(shape) + H))
        sy: Shape = kw["shape_y"]
        no = numel(matmul_shape(shape, sy))
        beaver = pairs * (8 * numel(sy) + H) + 8 * no + H
        return Cost(2, beaver + 16 * no + H + pairs * (8 * no + H))

    def cost(self, kernel: str, shape: Shape, **kw: Any) -> Cost:
        """Declared cost; ``kw``: ``shape_y`` (matmul), ``owner`` (input), ``to`` (reveal)."""
        N = len(self.parties)
        n = numel(shape)
        pairs = N * (N - 1)
        if kernel in FIXED_KERNELS:
            return self.fixed_cost(kernel, shape, **kw)
        if kernel == "input":
            return Cost(1, (N - (kw["owner"] in self.parties)) * (8 * n + H))
        if kernel == "reveal":
            msgs = sum(N - (r in self.parties) for r in kw["to"])
            return Cost(1, msgs * (8 * n + H))
        if kernel == "mul":
            return Cost(1, pairs * (16 * n + H) + 8 * n + H)
        if kernel == "matmul":
            sy: Shape = kw["shape_y"]
            so = matmul_shape(shape, sy)
            return Cost(1, pairs * (8 * (n + numel(sy)) + H) + 8 * numel(so) + H)
        if kernel in ("mul_trunc", "matmul_trunc"):
            if self.trunc_mode == "local":
                base = self.cost(kernel[:-6], shape, **kw)
                return Cost(base.rounds, base.bytes)
            sy = kw.get("shape_y", shape)
            so = matmul_shape(shape, sy) if kernel == "matmul_trunc" else shape
            no = numel(so)
            beaver = pairs * (8 * (n + numel(sy)) + H) + 8 * no + H
            return Cost(2, beaver + 16 * no + H + pairs * (8 * no + H))
        if kernel == "trunc":
            if self.trunc_mode == "local":
                return Cost(0, 0)
            return Cost(1, pairs * (8 * n + H) + 16 * n + H)
        if kernel == "msb":
            open_ = pairs * (8 * n + H) + 8 * n + H
            b2a = pairs * (n + H) + 8 * n + H
            return Cost(8, open_ + carry_cost_bytes(N, n, H) + b2a)
        if kernel == "a2b":
            open_ = pairs * (8 * n + H) + 8 * n + H
            return Cost(7, open_ + prefix_cost_bytes(N, n, H))
        if kernel == "b2a":
            gate = pairs * (16 * n + H) + 8 * n + H
            reopen = pairs * (8 * n + H)
            return Cost(8, 8 * n + H + gate + prefix_cost_bytes(N, n, H) + reopen)
        raise ConfigError(f"semi2k declares no cost for kernel {kernel!r}")


__all__ = ["TRUNC_MODES", "Semi2k"]

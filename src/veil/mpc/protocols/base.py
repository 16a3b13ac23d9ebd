"""The interface every MPC protocol implements, on share tuples.

A party's share of a secret ring array is a tuple of ``uint64`` arrays of the secret's shape:
one component for additive sharing (``semi2k``) and the plaintext oracle (``ref``), two for
replicated sharing (``aby3``: ``(x_i, x_{i+1})``). Parties that hold no share (the dealer, or a
data owner outside the computation) hold the empty tuple and still call every kernel in the
same order, because some kernels need them (the dealer) and keys must stay aligned.

Linear operations that need no communication (add, subtract, multiply by a public integer,
reshape, slice, transpose, sum) apply to every component and are generic
(:func:`map_shares`); protocols implement the rest.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from veil.core.ring import Ring
from veil.mpc.comm import Comm

Shares = tuple[Ring, ...]
Shape = tuple[int, ...]


@dataclass(frozen=True)
class Cost:
    """Declared cost of one kernel call: rounds on the critical path and bytes sent by all
    parties together (payload plus frame headers)."""

    rounds: int
    bytes: int


#: Public selection of rows of a fixed operand: a slice (step 1) or an integer index array.
Rows = slice | np.ndarray[Any, Any]

#: Kernels of the fixed-operand interface (:meth:`Protocol.fix`), costed by
#: :meth:`Protocol.fixed_cost`.
FIXED_KERNELS = ("fix", "fixed_matmul_trunc")


@dataclass(frozen=True)
class Fixed:
    """A secret matrix prepared by :meth:`Protocol.fix` for many products with fresh operands.

    ``parts`` is protocol-specific: by default the party's shares themselves; semi2k keeps
    the opened ``X − A`` and its share of the reused mask ``A`` (the dealer keeps ``A``).
    """

    shape: Shape
    parts: tuple[Ring, ...]


def select_rows(m: Ring, rows: Rows, transpose: bool) -> Ring:
    """``m[rows]`` (``.T`` if ``transpose``) of a 2-D array (a view for slices)."""
    sel = m[rows]
    return sel.T if transpose else sel


def selected_shape(shape: Shape, rows: Rows, transpose: bool) -> Shape:
    """Shape of :func:`select_rows` on a matrix of ``shape``."""
    n = len(range(*rows.indices(shape[0]))) if isinstance(rows, slice) else len(rows)
    return (shape[1], n) if transpose else (n, shape[1])


def map_shares(fn: Callable[[Ring], Ring], x: Shares) -> Shares:
    """Apply a local, linear, component-wise function to every component."""
    return tuple(fn(c) for c in x)


def zip_shares(fn: Callable[[Ring, Ring], Ring], x: Shares, y: Shares) -> Shares:
    """Combine two share tuples component-wise (both empty at non-holders)."""
    return tuple(fn(a, b) for a, b in zip(x, y, strict=True))


def numel(shape: Shape) -> int:
    """Number of elements of ``shape``."""
    return math.prod(shape)


class Protocol(ABC):
    """One party's instance of an MPC protocol.

    Parameters
    ----------
    comm:
        Messaging of the device.
    parties:
        The computing parties, in share order.
    frac_bits:
        Fixed-point fractional bits (used by :meth:`trunc` callers).
    """

    #: Registry name.
    name: str = ""

    def __init__(self, comm: Comm, parties: tuple[str, ...], frac_bits: int) -> None:
        self.comm = comm
        self.parties = parties
        self.frac_bits = frac_bits
        self.rank: int | None = parties.index(comm.party) if comm.party in parties else None

    @property
    def holds_shares(self) -> bool:
        """True at the computing parties."""
        return self.rank is not None

    # ----------------------------------------------------------- input/output
    @abstractmethod
    def input(self, owner: str, value: Ring | None, shape: Shape) -> Shares:
        """Secret-share ``value`` (a ring array known at ``owner`` only).

        Every party of the device calls this; ``owner`` may be outside the computing parties.
        """

    @abstractmethod
    def reveal(self, x: Shares, shape: Shape, to: tuple[str, ...]) -> Ring | None:
        """Open ``x`` to the parties ``to`` (reveals the value to them); ``None`` elsewhere."""

    # ----------------------------------------------------------------- local
    @abstractmethod
    def add_public(self, x: Shares, c: Ring) -> Shares:
        """``x + c`` for a public ring array ``c`` broadcastable to ``x`` (local)."""

    def zeros(self, shape: Shape) -> Shares:
        """A sharing of zeros (local)."""
        if not self.holds_shares:
            return ()
        return tuple(np.zeros(shape, dtype=np.uint64) for _ in range(self.ncomp))

    @property
    @abstractmethod
    def ncomp(self) -> int:
        """Components per share tuple at a computing party."""

    # ------------------------------------------------------------ arithmetic
    @abstractmethod
    def mul(self, x: Shares, y: Shares, shape: Shape) -> Shares:
        """Ring product ``x * y`` of two secrets of the same ``shape`` (no truncation)."""

    @abstractmethod
    def matmul(self, x: Shares, y: Shares, sx: Shape, sy: Shape) -> Shares:
        """Ring matrix product ``x @ y`` (no truncation)."""

    @abstractmethod
    def trunc(self, x: Shares, shape: Shape, bits: int) -> Shares:
        """Divide by ``2^bits`` (floor, probabilistic ±1 in the last place; see each protocol)."""

    def mul_trunc(self, x: Shares, y: Shares, shape: Shape, bits: int) -> Shares:
        """``trunc(x * y)``; protocols may fuse the two."""
        return self.trunc(self.mul(x, y, shape), shape, bits)

    def matmul_trunc(self, x: Shares, y: Shares, sx: Shape, sy: Shape, bits: int) -> Shares:
        """``trunc(x @ y)``; protocols may fuse the two."""
        return self.trunc(self.matmul(x, y, sx, sy), matmul_shape(sx, sy), bits)

    # ------------------------------------------------------ fixed operand
    def fix(self, x: Shares, shape: Shape) -> Fixed:
        """Prepare the secret matrix ``x`` for many :meth:`fixed_matmul_trunc` calls.

        Default: keep the shares (products are ordinary :meth:`matmul_trunc` calls). semi2k
        opens ``x − A`` once for a dealer mask ``A`` reused by every later product.
        """
        return Fixed(shape, x)

    def fixed_matmul_trunc(
        self, fx: Fixed, rows: Rows, transpose: bool, y: Shares, sy: Shape, bits: int
    ) -> Shares:
        """``trunc(op(x[rows]) @ y)`` with ``op`` the transpose if ``transpose`` (2-D ``x``)."""
        xs = tuple(select_rows(c, rows, transpose) for c in fx.parts)
        return self.matmul_trunc(xs, y, selected_shape(fx.shape, rows, transpose), sy, bits)

    def fixed_cost(self, kernel: str, shape: Shape, **kw: Any) -> Cost:
        """Declared cost of :data:`FIXED_KERNELS`: ``fix`` on the matrix' ``shape``,
        ``fixed_matmul_trunc`` on the *selected* operand's shape (``kw``: ``shape_y``)."""
        if kernel == "fix":
            return Cost(0, 0)
        return self.cost("matmul_trunc", shape, **kw)

    # ------------------------------------------------------------ comparison
    @abstractmethod
    def msb(self, x: Shares, shape: Shape) -> Shares:
        """Arithmetic sharing of the most significant bit (0/1) of each element."""

    @abstractmethod
    def a2b(self, x: Shares, shape: Shape) -> Shares:
        """Boolean sharing (``uint64`` words, the protocol's own XOR representation) of ``x``."""

    @abstractmethod
    def b2a(self, b: Shares, shape: Shape) -> Shares:
        """Arithmetic sharing of boolean-shared words ``b`` (inverse of :meth:`a2b`)."""

    # ------------------------------------------------------------------ cost
    @abstractmethod
    def cost(self, kernel: str, shape: Shape, **kw: Any) -> Cost:
        """Declared cost of ``kernel`` on operands of ``shape`` (see each protocol)."""


def _matmul_shape(sx: Shape, sy: Shape, batch: Shape) -> Shape:
    """Result shape of ``matmul`` for operand shapes ``sx`` and ``sy``."""
    if len(sx) == 1 and len(sy) == 1:
        return ()
    if len(sx) == 1:
        return (*sy[:-2], sy[-1])
    if len(sy) == 1:
        return sx[:-1]
    return (*batch, sx[-2], sy[-1])


def matmul_shape(sx: Shape, sy: Shape) -> Shape:
    """Result shape of ``x @ y`` (numpy semantics)."""
    batch = np.broadcast_shapes(sx[:-2], sy[:-2]) if len(sx) > 2 or len(sy) > 2 else ()
    return _matmul_shape(sx, sy, tuple(batch))


__all__ = [
    "FIXED_KERNELS",
    "Cost",
    "Fixed",
    "Protocol",
    "Rows",
    "Shape",
    "Shares",
    "map_shares",
    "matmul_shape",
    "numel",
    "select_rows",
    "selected_shape",
    "zip_shares",
]

"""Secret tensors: shares + shape + dtype, with numpy-style operators.

A :class:`SecretTensor` is one party's handle on a secret array: its share tuple (empty at
parties that hold no share), the public shape and a dtype, ``"fxp64"`` (fixed point with the
engine's fractional bits) or ``"int64"`` (integers; comparison results are ``int64`` 0/1).
Arithmetic follows numpy broadcasting; an integer operand meeting a fixed-point one is promoted
locally (multiplied by 2^f). Every operator is collective: all parties of the device must call
it in the same order (SPMD).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from veil.core.ring import Ring, from_signed
from veil.errors import DataError, ProtocolError
from veil.mpc.protocols.base import Shape, Shares, map_shares, matmul_shape, zip_shares

if TYPE_CHECKING:
    from veil.mpc.engine import Engine

FXP = "fxp64"
INT = "int64"


def _is_int_public(v: np.ndarray[Any, Any]) -> bool:
    return v.dtype.kind in "iub"


class SecretTensor:
    """A secret-shared array on an MPC engine (collective operations; see module docstring)."""

    __array_priority__ = 1000  # numpy defers ``ndarray op SecretTensor`` to us

    def __init__(self, engine: Engine, shares: Shares, shape: Shape, dtype: str) -> None:
        self.engine = engine
        self.shape: Shape = tuple(int(s) for s in shape)
        # 0-d secrets keep (1,)-shaped share arrays: numpy scalar arithmetic would warn on the
        # ring's intended wrap-around.
        self.shares: Shares = tuple(c.reshape(1) if c.ndim == 0 else c for c in shares)
        self.dtype = dtype

    @property
    def pshape(self) -> Shape:
        """Shape of the share arrays (``(1,)`` for a 0-d secret)."""
        return self.shape or (1,)

    # ------------------------------------------------------------ basics
    @property
    def device(self) -> Any:
        """The device this tensor lives on."""
        return self.engine.device

    @property
    def ndim(self) -> int:
        """Number of dimensions."""
        return len(self.shape)

    @property
    def size(self) -> int:
        """Number of elements."""
        return math.prod(self.shape)

    @property
    def reveal_kind(self) -> str:
        """Kind recorded in the audit ledger."""
        return "mpc"

    def __repr__(self) -> str:
        proto = self.engine.protocol.name
        return f"SecretTensor(shape={self.shape}, dtype={self.dtype}, protocol={proto})"

    def __bool__(self) -> bool:
        raise ProtocolError(
            "a secret tensor has no truth value (that would reveal it); use veil.mpc.where "
            "instead of Python if/while, or ctx.reveal to open it"
        )

    def __array__(self, *args: Any, **kwargs: Any) -> Any:
        raise ProtocolError(
            "a secret tensor cannot be converted to a numpy array; use ctx.reveal to open it"
        )

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d secret tensor")
        return self.shape[0]

    def _new(self, shares: Shares, shape: Shape, dtype: str | None = None) -> SecretTensor:
        return SecretTensor(self.engine, shares, shape, dtype or self.dtype)

    def reveal_to(self, recipients: tuple[str, ...]) -> Any:
        """Open to ``recipients`` (**reveals** the value to them); ``None`` at other parties.

        ``fxp64`` decodes to float64, ``int64`` to int64.
        """
        ring = self.engine.protocol.reveal(self.shares, self.pshape, tuple(recipients))
        if ring is None:
            return None
        ring = ring.reshape(self.shape)
        if self.dtype == FXP:
            return self.engine.fxp.decode(ring)
        return ring.view(np.int64).copy()

    # ------------------------------------------------------ shape helpers
    def _local(self, fn: Callable[[np.ndarray[Any, Any]], np.ndarray[Any, Any]]) -> SecretTensor:
        """Apply a local shape/linear function to every component."""
        if self.shares:
            out = map_shares(lambda c: np.ascontiguousarray(fn(c.reshape(self.shape))), self.shares)
            return self._new(out, out[0].shape)
        dummy = np.broadcast_to(np.zeros((), dtype=np.uint8), self.shape)
        return self._new((), np.shape(fn(dummy)))

    def broadcast_to(self, shape: Shape) -> SecretTensor:
        """Broadcast (copies the shares; local)."""
        if tuple(shape) == self.shape:
            return self
        return self._local(lambda c: np.broadcast_to(c, shape))

    def reshape(self, *shape: Any) -> SecretTensor:
        """Reshape (local)."""
        shp = shape[0] if len(shape) == 1 and isinstance(shape[0], tuple | list) else shape
        return self._local(lambda c: np.reshape(c, shp))

    def transpose(self, *axes: int) -> SecretTensor:
        """Permute axes (local)."""
        return self._local(lambda c: np.transpose(c, axes or None))

    @property
    def T(self) -> SecretTensor:  # noqa: N802 - numpy's name
        """Transpose (local)."""
        return self.transpose()

    def __getitem__(self, idx: Any) -> SecretTensor:
        if isinstance(idx, SecretTensor):
            raise ProtocolError("indexing with a secret index is not supported; use mpc.where")
        return self._local(lambda c: c[idx])

    def sum(
        self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False
    ) -> SecretTensor:
        """Sum along ``axis`` (local, exact)."""
        return self._local(lambda c: np.sum(c, axis=axis, keepdims=keepdims, dtype=c.dtype))

    def mean(
        self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False
    ) -> SecretTensor:
        """Mean along ``axis``: the sum times ``2^-k`` (exact in fixed point), then times
        ``2^k / n`` in [0.5, 1] (relative encoding error ≤ 2^-(frac_bits-1)). A single product
        by ``1/n`` would lose ``n · 2^-frac_bits`` relative precision for large ``n``."""
        s = self.to_fxp().sum(axis=axis, keepdims=keepdims)
        count = max(self.size // max(s.size, 1) if self.size else 1, 1)
        k = max(count - 1, 0).bit_length()
        if k == 0:
            return s
        return (s * 2.0**-k) * (2.0**k / count)

    # ------------------------------------------------------------ dtype
    def to_fxp(self) -> SecretTensor:
        """Integer → fixed point (local shift by f bits)."""
        if self.dtype == FXP:
            return self
        f = np.uint64(self.engine.fxp.frac_bits)
        return self._new(map_shares(lambda c: c << f, self.shares), self.shape, FXP)

    # ------------------------------------------------------------ arithmetic
    def _coerce(self, other: Any) -> SecretTensor | np.ndarray[Any, Any]:
        if isinstance(other, SecretTensor):
            if other.engine is not self.engine:
                raise ProtocolError("operands live on different MPC devices")
            return other
        return np.asarray(other)

    def _encode_public(self, v: np.ndarray[Any, Any], dtype: str) -> Ring:
        if dtype == FXP:
            return self.engine.fxp.encode(v)
        if not _is_int_public(v):
            raise DataError("cannot combine an int64 secret with a non-integer public value")
        return from_signed(v.astype(np.int64))

    def _align(self, other: SecretTensor) -> tuple[SecretTensor, SecretTensor]:
        a, b = self, other
        if a.dtype != b.dtype:
            a, b = a.to_fxp(), b.to_fxp()
        shape = tuple(np.broadcast_shapes(a.shape, b.shape))
        return a.broadcast_to(shape), b.broadcast_to(shape)

    def __add__(self, other: Any) -> SecretTensor:
        o = self._coerce(other)
        if isinstance(o, SecretTensor):
            a, b = self._align(o)
            return a._new(zip_shares(np.add, a.shares, b.shares), a.shape)
        a = self if (self.dtype == FXP or _is_int_public(o)) else self.to_fxp()
        shape = tuple(np.broadcast_shapes(a.shape, o.shape))
        a = a.broadcast_to(shape)
        c = np.broadcast_to(self._encode_public(o, a.dtype), shape).reshape(a.pshape)
        return a._new(self.engine.protocol.add_public(a.shares, c) if a.shares else (), shape)

    __radd__ = __add__

    def __neg__(self) -> SecretTensor:
        return self._new(map_shares(np.negative, self.shares), self.shape)

    def __sub__(self, other: Any) -> SecretTensor:
        return self + (-other if isinstance(other, SecretTensor) else -np.asarray(other))

    def __rsub__(self, other: Any) -> SecretTensor:
        return (-self).__add__(other)

    def __mul__(self, other: Any) -> SecretTensor:
        o = self._coerce(other)
        eng = self.engine
        if isinstance(o, SecretTensor):
            shape = tuple(np.broadcast_shapes(self.shape, o.shape))
            a, b = self.broadcast_to(shape), o.broadcast_to(shape)
            if a.dtype == FXP and b.dtype == FXP:
                out = eng.protocol.mul_trunc(a.shares, b.shares, a.pshape, eng.fxp.frac_bits)
                return a._new(out, shape, FXP)
            dtype = FXP if FXP in (a.dtype, b.dtype) else INT
            return a._new(eng.protocol.mul(a.shares, b.shares, a.pshape), shape, dtype)
        shape = tuple(np.broadcast_shapes(self.shape, o.shape))
        a = self.broadcast_to(shape)
        if _is_int_public(o):
            c = np.broadcast_to(from_signed(o.astype(np.int64)), shape).reshape(a.pshape)
            return a._new(map_shares(lambda s: s * c, a.shares), shape)
        if a.dtype == INT:
            a = a.to_fxp()
        c = np.broadcast_to(eng.fxp.encode(o), shape).reshape(a.pshape)
        prod = map_shares(lambda s: s * c, a.shares)
        return a._new(eng.protocol.trunc(prod, a.pshape, eng.fxp.frac_bits), shape, FXP)

    __rmul__ = __mul__

    def __truediv__(self, other: Any) -> SecretTensor:
        if isinstance(other, SecretTensor):
            from veil.mpc.ops.reciprocal import div

            return div(self, other)
        return self * (1.0 / np.asarray(other, dtype=np.float64))

    def __matmul__(self, other: Any) -> SecretTensor:
        o = self._coerce(other)
        eng = self.engine
        if not isinstance(o, SecretTensor):
            o = eng.constant(o)
        a, b = self, o
        if a.dtype != b.dtype:
            a, b = a.to_fxp(), b.to_fxp()
        if a.ndim == 0 or b.ndim == 0:
            raise DataError("matmul needs operands with at least one dimension")
        if a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
            raise DataError(f"matmul shape mismatch: {a.shape} @ {b.shape}")
        so = matmul_shape(a.shape, b.shape)
        if a.dtype == FXP:
            out = eng.protocol.matmul_trunc(a.shares, b.shares, a.shape, b.shape, eng.fxp.frac_bits)
        else:
            out = eng.protocol.matmul(a.shares, b.shares, a.shape, b.shape)
        return a._new(out, so, a.dtype)

    def __rmatmul__(self, other: Any) -> SecretTensor:
        return self.engine.constant(np.asarray(other)) @ self

    # ------------------------------------------------------------ comparison
    def __lt__(self, other: Any) -> SecretTensor:
        from veil.mpc.ops.compare import less

        return less(self, other)

    def __gt__(self, other: Any) -> SecretTensor:
        from veil.mpc.ops.compare import greater

        return greater(self, other)

    def __le__(self, other: Any) -> SecretTensor:
        from veil.mpc.ops.compare import greater

        return 1 - greater(self, other)

    def __ge__(self, other: Any) -> SecretTensor:
        from veil.mpc.ops.compare import less

        return 1 - less(self, other)

    def __eq__(self, other: Any) -> SecretTensor:  # type: ignore[override]
        from veil.mpc.ops.compare import equal

        return equal(self, other)

    __hash__ = None  # type: ignore[assignment]

    # ------------------------------------------------------------ numpy interop
    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        """Run numpy ufuncs (``np.exp(x)``, ``a + x`` with ``a`` an ndarray, ...) securely.

        Supported: add, subtract, multiply, true_divide, matmul, negative, less, greater,
        less_equal, greater_equal, equal, maximum, minimum, absolute, exp, log, sqrt, reciprocal.
        Anything else raises :class:`ProtocolError` (never a silent plaintext fallback).
        """
        from veil.mpc import ops_table

        fn = ops_table.UFUNCS.get(ufunc.__name__) if method == "__call__" and not kwargs else None
        if fn is None:
            raise ProtocolError(
                f"numpy {ufunc.__name__}.{method} is not supported on secret tensors; use the "
                "functions of veil.mpc"
            )
        return fn(*inputs)


def concatenate(items: Sequence[SecretTensor], axis: int = 0) -> SecretTensor:
    """Concatenate secret tensors along ``axis`` (local)."""
    if not items:
        raise DataError("concatenate needs at least one tensor")
    items = list(items)
    if any(t.dtype != items[0].dtype for t in items):
        items = [t.to_fxp() for t in items]
    first = items[0]
    if first.shares:
        ncomp = len(first.shares)
        out = tuple(np.concatenate([t.shares[k] for t in items], axis=axis) for k in range(ncomp))
        return first._new(out, out[0].shape)
    # no shares here (dealer, outsider): only the shape; numpy raises on a mismatch
    nd = first.ndim
    ax = axis % nd if nd and -nd <= axis < nd else -1

    def rest(shape: Shape) -> Shape:
        return shape[:ax] + shape[ax + 1 :]

    if ax < 0 or any(t.ndim != nd or rest(t.shape) != rest(first.shape) for t in items):
        dummies = [np.broadcast_to(np.zeros((), np.uint8), t.shape) for t in items]
        return first._new((), np.concatenate(dummies, axis=axis).shape)
    return first._new(
        (), (*first.shape[:ax], sum(t.shape[ax] for t in items), *rest(first.shape)[ax:])
    )


def stack(items: Sequence[SecretTensor], axis: int = 0) -> SecretTensor:
    """Stack secret tensors along a new ``axis`` (local)."""
    return concatenate([t.reshape((*t.shape[:axis], 1, *t.shape[axis:])) for t in items], axis)


__all__ = ["FXP", "INT", "SecretTensor", "concatenate", "stack"]

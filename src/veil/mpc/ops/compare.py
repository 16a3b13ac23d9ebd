"""Comparisons and everything built from them: <, >, ==, where, relu, abs, max/argmax.

All reduce to the protocol's MSB extraction (``msb``: 8 rounds in semi2k, 9 in aby3) on a
difference, so ``a < b`` is exact whenever ``|a − b| < 2^63`` in the ring (any fixed-point values
within the encoding bound). Results are ``int64`` 0/1 secret tensors. Several comparisons of
one call are batched into a single MSB extraction (one set of rounds).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from veil.mpc.tensor import INT, SecretTensor, concatenate


def msb_many(items: Sequence[SecretTensor]) -> list[SecretTensor]:
    """MSB (0/1, ``int64``) of several tensors in one batched extraction."""
    if not items:
        return []
    first = items[0]
    flat = concatenate([t.reshape(-1) for t in items]) if len(items) > 1 else first.reshape(-1)
    eng = first.engine
    bits = SecretTensor(eng, eng.protocol.msb(flat.shares, flat.pshape), flat.shape, INT)
    out, start = [], 0
    for t in items:
        out.append(bits[start : start + t.size].reshape(t.shape))
        start += t.size
    return out


def msb(x: SecretTensor) -> SecretTensor:
    """1 where ``x < 0`` (as a signed ring value), else 0."""
    return msb_many([x])[0]


def less(a: SecretTensor, b: Any) -> SecretTensor:
    """``a < b`` as 0/1 (``b`` secret or public). Exact for ``|a − b| < 2^63`` ring units."""
    return msb(a - b)


def greater(a: SecretTensor, b: Any) -> SecretTensor:
    """``a > b`` as 0/1."""
    return msb(-(a - b))


def equal(a: SecretTensor, b: Any) -> SecretTensor:
    """``a == b`` as 0/1: ``1 − [a < b] − [a > b]`` (one batched extraction)."""
    d = a - b
    lt, gt = msb_many([d, -d])
    return 1 - lt - gt


def where(cond: SecretTensor, a: Any, b: Any) -> SecretTensor:
    """``cond ? a : b`` for a 0/1 ``cond`` (secret): ``b + cond·(a − b)`` (one product)."""
    if isinstance(a, SecretTensor):
        diff = a - b
    elif isinstance(b, SecretTensor):
        diff = -(b - a)
    else:
        diff = cond.engine.constant(np.asarray(a) - np.asarray(b))
    out: SecretTensor = cond * diff + b
    return out


def relu(x: SecretTensor) -> SecretTensor:
    """``max(x, 0)``: exact (one MSB extraction and one product)."""
    return x - msb(x) * x


def abs(x: SecretTensor) -> SecretTensor:
    """``|x|`` exact (one MSB extraction and one product)."""
    return x - 2 * (msb(x) * x)


def sign(x: SecretTensor) -> SecretTensor:
    """−1 for negative, +1 otherwise (``int64``)."""
    return 1 - 2 * msb(x)


def maximum(a: SecretTensor, b: Any) -> SecretTensor:
    """Elementwise maximum (one comparison and one product)."""
    return where(greater(a, b), a, b) if isinstance(b, SecretTensor) else a - msb(a - b) * (a - b)


def minimum(a: SecretTensor, b: Any) -> SecretTensor:
    """Elementwise minimum."""
    return -maximum(-a, -b if isinstance(b, SecretTensor) else -np.asarray(b))


def _last(x: SecretTensor, axis: int | None) -> SecretTensor:
    if axis is None:
        return x.reshape(-1)
    ax = axis % x.ndim
    order = [i for i in range(x.ndim) if i != ax] + [ax]
    return x.transpose(*order) if ax != x.ndim - 1 else x


def max(x: SecretTensor, axis: int | None = None) -> SecretTensor:
    """Maximum along ``axis`` (``None``: all).

    A tournament of ``ceil(log2 k)`` levels, each one batched comparison and one product.
    """
    v = _last(x, axis)
    if v.shape[-1] == 0:
        raise ValueError("max of an empty axis")
    while v.shape[-1] > 1:
        k = v.shape[-1] // 2
        lo, hi, rest = v[..., :k], v[..., k : 2 * k], v[..., 2 * k :]
        m = maximum(lo, hi)
        v = concatenate([m, rest], axis=-1) if rest.shape[-1] else m
    return v[..., 0]


def argmax(x: SecretTensor, axis: int | None = None) -> SecretTensor:
    """Index (``int64``, secret) of the first maximum along ``axis``; tournament as :func:`max`.

    Reveals nothing (the index stays secret).
    """
    v = _last(x, axis)
    k0 = v.shape[-1]
    if k0 == 0:
        raise ValueError("argmax of an empty axis")
    idx = v.engine.constant(np.broadcast_to(np.arange(k0, dtype=np.int64), v.shape).copy())
    while v.shape[-1] > 1:
        k = v.shape[-1] // 2
        lo, hi, rest = v[..., :k], v[..., k : 2 * k], v[..., 2 * k :]
        ilo, ihi, irest = idx[..., :k], idx[..., k : 2 * k], idx[..., 2 * k :]
        c = greater(hi, lo)  # ties keep the lower index
        # c is 0/1, so both products are plain ring products: one batched multiplication.
        packed = concatenate([_relabel(hi - lo, INT), ihi - ilo], axis=-1)
        prod = concatenate([c, c], axis=-1) * packed
        m = lo + _relabel(prod[..., :k], lo.dtype)
        im = ilo + prod[..., k:]
        v = concatenate([m, rest], axis=-1) if rest.shape[-1] else m
        idx = concatenate([im, irest], axis=-1) if irest.shape[-1] else im
    return idx[..., 0]


def _relabel(t: SecretTensor, dtype: str) -> SecretTensor:
    """The same ring shares under another dtype label (no arithmetic)."""
    return SecretTensor(t.engine, t.shares, t.shape, dtype)


__all__ = [
    "abs",
    "argmax",
    "equal",
    "greater",
    "less",
    "max",
    "maximum",
    "minimum",
    "msb",
    "msb_many",
    "relu",
    "sign",
    "where",
]

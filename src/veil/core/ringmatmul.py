"""Exact matrix product mod 2^64 from float64 BLAS products.

numpy's integer ``matmul`` does not use BLAS (≈ 1.3 s for 1000³ here, against 0.034 s for one
float64 GEMM on one core). We split each operand into three *balanced* limbs,
``a ≡ a0 + a1·2^22 + a2·2^44 (mod 2^64)`` with ``a0, a1 ∈ [−2^21, 2^21)`` and
``a2 ∈ [−2^19, 2^19)``, and keep only the terms that survive mod 2^64::

    a·b ≡ a0·b0 + 2^22·(a0·b1 + a1·b0) + 2^44·(a0·b2 + a1·b1 + a2·b0)   (mod 2^64)

The middle bracket comes from Karatsuba's identity ``(a0 + a1)(b0 + b1) − a0·b0 − a1·b1``, and
``a1·b1`` is reused in the last bracket, so five float64 GEMMs of the operands' size do the
work of six (``a0@b0``, ``a1@b1``, ``(a0+a1)@(b0+b1)`` and ``[a0, a2]@[b2; b0]`` with the limbs
concatenated along the inner dimension). A float64 sum is exact while it stays within 2^53, and
balanced limbs halve every product's magnitude, so the inner dimension is cut into chunks of
2048 (``|a0·b0|, |a1·b1| ≤ 2^42``), 512 (``|(a0+a1)(b0+b1)| ≤ 2^44``) and 8192
(``|a0·b2|, |a2·b0| ≤ 2^40``): for 1000³ every term is one GEMM but the Karatsuba one (two).
Partial sums are converted to ``int64`` (exact) and accumulated in ``uint64`` with
wrap-around, which is exact.

Small products (matrix-vector, or at most :data:`DIRECT_MAX_MACS` multiply-adds) go straight
to numpy's ``uint64`` ``matmul``, which wraps mod 2^64 exactly: splitting into limbs costs about
1 ms of fixed overhead (limb extraction, six conversions, three GEMM calls), against ≈ 20 µs
for a 1024 × 31 matrix-vector product done directly — the shape of every logistic-regression
step.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from veil.core.ring import Ring
from veil.errors import DataError

_M22 = np.uint64((1 << 22) - 1)
_M20 = np.uint64((1 << 20) - 1)
_H21 = np.uint64(1 << 21)
_H19 = np.uint64(1 << 19)
_S22 = np.uint64(22)
_CHUNK_SQ = 2048  # |a0·b0|, |a1·b1| <= 2^42
_CHUNK_K = 512  # |(a0 + a1)(b0 + b1)| <= 2^44
_CHUNK_X = 8192  # |a0·b2|, |a2·b0| <= 2^40
#: Products with at most this many multiply-adds (or a vector operand) skip the limb split.
DIRECT_MAX_MACS = 1 << 21

Float = np.ndarray[Any, np.dtype[np.float64]]


def _balanced(x: Ring, mask: np.uint64, half: np.uint64) -> Ring:
    """``x mod 2^w`` as a signed value in ``[−half, half)`` (``mask = 2^w − 1``), as int64 bits."""
    out: Ring = (x + half) & mask
    out -= half
    return out


def _limbs(x: Ring) -> tuple[Float, Float, Float]:
    """Balanced limbs ``(a0, a1, a2)`` of ``x`` as float64 (see module docstring)."""
    l0 = _balanced(x, _M22, _H21)
    rest = (x - l0) >> _S22  # exact: x − l0 is a multiple of 2^22 (mod 2^64)
    l1 = _balanced(rest, _M22, _H21)
    rest -= l1
    rest >>= _S22
    l2 = _balanced(rest, _M20, _H19)
    return tuple(v.view(np.int64).astype(np.float64) for v in (l0, l1, l2))  # type: ignore[return-value]


def _exact(a: Float, b: Float, chunk: int) -> Ring:
    """``a @ b`` as uint64 (mod 2^64), summing the inner dimension in chunks that stay exact."""
    k = a.shape[-1]
    if k <= chunk:
        whole: Ring = np.matmul(a, b).astype(np.int64).view(np.uint64)
        return whole
    out: Ring | None = None
    for s in range(0, k, chunk):
        part = np.matmul(a[..., s : s + chunk], b[..., s : s + chunk, :]).astype(np.int64)
        if out is None:
            out = part.view(np.uint64)
        else:
            out += part.view(np.uint64)
    assert out is not None
    return out


def ring_matmul(a: Ring, b: Ring, *, direct_max_macs: int = DIRECT_MAX_MACS) -> Ring:
    """Exact ``a @ b mod 2^64`` for ``uint64`` arrays with numpy ``matmul`` semantics.

    Parameters
    ----------
    a, b:
        ``uint64`` arrays; 1-D operands are promoted as in :func:`numpy.matmul`.
    direct_max_macs:
        Products up to this many multiply-adds, or with a 1-D operand, use numpy's integer
        ``matmul`` directly (``-1``: always split into limbs; tests use it).

    Returns
    -------
    numpy.ndarray
        ``uint64`` product, bit-identical to the mathematical product mod 2^64.
    """
    a = np.asarray(a, dtype=np.uint64)
    b = np.asarray(b, dtype=np.uint64)
    if a.ndim == 0 or b.ndim == 0:
        raise DataError("matmul needs operands with at least one dimension")
    va, vb = a.ndim == 1, b.ndim == 1
    a2 = a[None, :] if va else a
    b2 = b[:, None] if vb else b
    if a2.shape[-1] != b2.shape[-2]:
        raise DataError(f"matmul shape mismatch: {a.shape} @ {b.shape}")
    k = a2.shape[-1]
    out_shape = (*np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2]), a2.shape[-2], b2.shape[-1])
    macs = int(np.prod(out_shape, dtype=np.int64)) * k
    if k == 0 or 0 in out_shape:
        res: Ring = np.zeros(out_shape, dtype=np.uint64)
    elif direct_max_macs >= 0 and (va or vb or macs <= direct_max_macs):
        res = np.matmul(a2, b2)
    else:
        a0, a1, a2l = _limbs(a2)
        b0, b1, b2l = _limbs(b2)
        p00 = _exact(a0, b0, _CHUNK_SQ)
        p11 = _exact(a1, b1, _CHUNK_SQ)
        t1 = _exact(a0 + a1, b0 + b1, _CHUNK_K)
        t1 -= p00
        t1 -= p11
        t2 = _exact(
            np.concatenate([a0, a2l], axis=-1), np.concatenate([b2l, b0], axis=-2), _CHUNK_X
        )
        t2 += p11
        t1 <<= _S22
        t2 <<= np.uint64(44)
        res = p00
        res += t1
        res += t2
    if va:
        res = res[..., 0, :]
    if vb:
        res = res[..., 0]
    return res


__all__ = ["DIRECT_MAX_MACS", "ring_matmul"]

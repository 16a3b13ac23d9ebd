"""Polynomial evaluation on secret fixed-point tensors in logarithmic depth."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from veil.mpc.tensor import FXP, SecretTensor, concatenate


def powers(x: SecretTensor, degree: int) -> list[SecretTensor]:
    """``[x, x^2, ..., x^degree]`` in ``ceil(log2(degree))`` batched products.

    Each level multiplies all known powers by the highest power of two so far in one
    multiplication call (one set of rounds per level).
    """
    x = x.to_fxp()
    pw: dict[int, SecretTensor] = {1: x}
    m = 1
    while m < degree:
        js = list(range(1, min(m, degree - m) + 1))
        flat = x.size
        lhs = concatenate([pw[j].reshape(-1) for j in js])
        rhs = concatenate([pw[m].reshape(-1)] * len(js))
        prod = lhs * rhs
        for i, j in enumerate(js):
            pw[m + j] = prod[i * flat : (i + 1) * flat].reshape(x.shape)
        m *= 2
    return [pw[k] for k in range(1, degree + 1)]


def lincomb(
    coeffs: Sequence[float], pws: Sequence[SecretTensor], *, extra_bits: int = 0
) -> SecretTensor:
    """``coeffs[0] + Σ coeffs[k]·pws[k−1]`` with a single truncation (one set of rounds).

    Coefficients are encoded with ``f + extra_bits`` fractional bits (small coefficients keep
    their precision); the caller guarantees ``Σ|coeffs[k]·pws[k−1]| · 2^(2f + extra_bits) <
    2^62``.
    """
    first = pws[0]
    eng = first.engine
    bits = eng.fxp.frac_bits + extra_bits
    acc = None
    for c, p in zip(coeffs[1:], pws, strict=False):
        enc = np.uint64(np.int64(round(float(c) * 2.0**bits)).view(np.uint64))
        term = tuple(s * enc for s in p.shares)
        acc = term if acc is None else tuple(a + t for a, t in zip(acc, term, strict=True))
    assert acc is not None
    out = eng.protocol.trunc(acc, first.pshape, bits)
    return SecretTensor(eng, out, first.shape, FXP) + float(coeffs[0])


def polyval(coeffs: Sequence[float], x: SecretTensor, *, extra_bits: int = 0) -> SecretTensor:
    """``Σ coeffs[k]·x^k`` (ascending coefficients); see :func:`lincomb` for ``extra_bits``."""
    if len(coeffs) == 1:
        return x * 0.0 + float(coeffs[0])
    return lincomb(coeffs, powers(x, len(coeffs) - 1), extra_bits=extra_bits)


__all__ = ["lincomb", "polyval", "powers"]

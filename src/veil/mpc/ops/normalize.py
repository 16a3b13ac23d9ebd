"""Normalisation of positive secrets to a mantissa and a power of ``B = 2^step``.

``x = m·B^e`` with ``m ∈ [1/B, 1)`` is found with ``K = kmax − kmin`` comparisons
``b_k = [x ≥ B^k]``, all in one batched MSB extraction (one set of rounds on ``K·n`` elements).
Since the ``b_k`` are monotone, powers of the exponent are *linear* in them (telescoping sums),
so ``B^(kmax−e)`` is computed locally and ``m = x·B^(kmax−e) / B^kmax`` costs one product with
truncation. A larger ``step`` means fewer comparisons and a wider mantissa range.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from veil.errors import ConfigError
from veil.mpc.ops.compare import msb
from veil.mpc.tensor import FXP, INT, SecretTensor, concatenate


@dataclass(frozen=True)
class Normalized:
    """``x = m·(2^step)^e`` with the comparison bits kept for building scale factors."""

    m: SecretTensor  # fixed point with f + extra_bits fractional bits
    e: SecretTensor
    bits: SecretTensor  # (K, *shape) int 0/1, b_k = [x ≥ 2^(step·k)]
    kmin: int
    kmax: int
    step: int
    extra_bits: int = 0

    def inverse_scale(self, log2_base: int) -> SecretTensor:
        """Integer ``C^(kmax − e)`` for ``C = 2^log2_base`` (``log2_base = step``: the
        normaliser's own base; ``step/2``: its square root)."""
        ks = np.arange(self.kmin, self.kmax)
        top = (self.kmax - ks) * log2_base
        coef = (np.left_shift(1, top) - np.left_shift(1, top - log2_base)).astype(np.int64)
        coef = coef.reshape((-1,) + (1,) * (self.bits.ndim - 1))
        full = 1 << ((self.kmax - self.kmin) * log2_base)
        return -(self.bits * coef).sum(axis=0) + full

    def rescale(self, y: SecretTensor, log2_base: int) -> SecretTensor:
        """``y · B^(−e)`` (one product with truncation by ``kmax·log2_base`` bits)."""
        s = self.inverse_scale(log2_base)
        eng = y.engine
        out = eng.protocol.mul_trunc(y.to_fxp().shares, s.shares, y.pshape, self.kmax * log2_base)
        return SecretTensor(eng, out, y.shape, FXP)


def normalize(
    x: SecretTensor, lo_exp: int, hi_exp: int, step: int = 2, extra_bits: int = 0
) -> Normalized:
    """Normalise ``x`` (positive, ``2^lo_exp ≤ x < 2^hi_exp``) to ``m ∈ [2^-step, 1)``.

    ``m`` keeps ``f + extra_bits`` fractional bits (a small mantissa keeps its precision).

    Values below the range give ``m < 2^-step`` and values above give ``m ≥ 1``: the callers'
    approximations are then wrong (documented, not detected).
    """
    kmin, kmax = math.floor(lo_exp / step), math.ceil(hi_exp / step)
    f = x.engine.fxp.frac_bits
    if (
        kmax < 1
        or kmin >= kmax
        or step * (kmax - kmin) > 40
        or step * kmax + f > 60
        or not 0 <= extra_bits <= step * kmax
    ):
        raise ConfigError(
            f"normalisation range 2^{lo_exp}..2^{hi_exp} is not supported with {f} fractional "
            "bits (need 1 ≤ hi_exp, a span ≤ 40 bits, and hi_exp + f ≤ 60)"
        )
    x = x.to_fxp()
    ks = range(kmin, kmax)
    base = float(2.0**step)
    stacked = concatenate([(x - base**k).reshape((1, *x.shape)) for k in ks], axis=0)
    bits = 1 - msb(stacked)
    e = bits.sum(axis=0) + kmin
    norm = Normalized(x, e, bits, kmin, kmax, step)
    s = norm.inverse_scale(step)
    eng = x.engine
    m_sh = eng.protocol.mul_trunc(x.shares, s.shares, x.pshape, step * kmax - extra_bits)
    m = SecretTensor(eng, m_sh, x.shape, FXP)
    e_int = SecretTensor(eng, e.shares, e.shape, INT)
    return Normalized(m, e_int, bits, kmin, kmax, step, extra_bits)


__all__ = ["Normalized", "normalize"]

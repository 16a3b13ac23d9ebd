"""Pooled-data oracles: what PLINK computes, evaluated directly on the pooled twin."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from gwas_synth import Synthetic


def pooled_genotype(syn: Synthetic, snp: str, a1: str) -> npt.NDArray[np.float64]:
    """Pooled A1 counts of ``snp`` (NaN missing), counting allele ``a1``."""
    row = int(np.flatnonzero(syn.variants.snp == snp)[0])
    g = syn.pooled_geno[row].astype(np.float64)
    g[g < 0] = np.nan
    if syn.variants.a1[row] != a1:
        assert syn.variants.a2[row] == a1
        g = 2.0 - g
    return g


def binary_pheno(syn: Synthetic) -> npt.NDArray[np.float64]:
    raw = syn.pooled_pheno
    return np.where(raw == 2, 1.0, np.where(raw == 1, 0.0, np.nan))


def hwe_exact_reference(het: int, hom1: int, hom2: int) -> float:
    """Wigginton et al. (2005) exact HWE test, the paper's recursion (scalar)."""
    n = het + hom1 + hom2
    if n == 0:
        return 1.0
    rare = 2 * min(hom1, hom2) + het
    probs = [0.0] * (rare + 1)
    mid = rare * (2 * n - rare) // (2 * n)
    if (rare % 2) != (mid % 2):
        mid += 1
    probs[mid] = 1.0
    total = 1.0
    cur_homr = (rare - mid) // 2
    cur_homc = n - mid - cur_homr
    h = mid
    while h >= 2:
        probs[h - 2] = probs[h] * h * (h - 1.0) / (4.0 * (cur_homr + 1.0) * (cur_homc + 1.0))
        total += probs[h - 2]
        h -= 2
        cur_homr += 1
        cur_homc += 1
    cur_homr = (rare - mid) // 2
    cur_homc = n - mid - cur_homr
    h = mid
    while h <= rare - 2:
        probs[h + 2] = probs[h] * 4.0 * cur_homr * cur_homc / ((h + 2.0) * (h + 1.0))
        total += probs[h + 2]
        h += 2
        cur_homr -= 1
        cur_homc -= 1
    obs = probs[het]
    p = sum(pr for pr in probs if pr <= obs * (1 + 1e-9))
    return min(1.0, p / total)


def chi2_sf1(x: float) -> float:
    return math.erfc(math.sqrt(x / 2.0))

"""Synthetic multi-site GWAS data with every awkward case, and its pooled twin for oracles."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from veil.gwas.plinkio import Fileset, SampleTable, VariantTable

SPECIAL_MONO = "rs_mono"
SPECIAL_SEPARATED = "rs_sep"
SPECIAL_ONLY_LAST = "rs_only_last"
SPECIAL_ALL_HET = "rs_allhet"


@dataclass
class Synthetic:
    """Per-site filesets plus the pooled data in the reference (site 0) orientation."""

    sites: list[Fileset]
    covariates: list[npt.NDArray[np.float64]]
    pooled_geno: npt.NDArray[np.int8]  # (V_union, N), -1 missing, counts of reference A1
    pooled_pheno: npt.NDArray[np.float64]  # raw .fam coding
    pooled_cov: npt.NDArray[np.float64]
    pooled_site: npt.NDArray[np.int64]
    variants: VariantTable  # reference orientation, union order


def make_synthetic(
    seed: int = 7,
    n_per_site: tuple[int, ...] = (160, 120, 140),
    n_variants: int = 60,
    quantitative: bool = False,
    missing_rate: float = 0.04,
) -> Synthetic:
    rng = np.random.default_rng(seed)
    n_sites = len(n_per_site)
    n = sum(n_per_site)
    site_of = np.repeat(np.arange(n_sites), n_per_site)
    cov = np.column_stack([rng.normal(size=n), rng.integers(0, 2, size=n).astype(float)])
    freqs = rng.uniform(0.05, 0.6, size=n_variants)
    geno = rng.binomial(2, freqs[:, None], size=(n_variants, n)).astype(np.int8)
    effect = np.zeros(n_variants)
    effect[:5] = [0.8, -0.6, 0.5, 0.4, -0.3]
    lin = 0.4 * cov[:, 0] + 0.5 * cov[:, 1] - 0.3 + effect @ geno
    if quantitative:
        pheno = 50.0 + 2.0 * lin + rng.normal(scale=3.0, size=n)
    else:
        y = rng.random(n) < 1.0 / (1.0 + np.exp(-(lin - lin.mean())))
        pheno = np.where(y, 2.0, 1.0)
        # perfectly separated variant: all cases carry 2 copies, controls none
        sep = np.where(y, 2, 0).astype(np.int8)
        geno[-2] = sep
    geno[-1] = 0  # monomorphic
    geno[-3] = 1  # everybody heterozygous: collinear with the intercept
    miss = rng.random(geno.shape) < missing_rate
    geno[miss] = -1
    pheno[rng.choice(n, size=4, replace=False)] = -9.0
    cov[rng.choice(n, size=3, replace=False), 0] = np.nan
    ids = [f"rs{i}" for i in range(n_variants)]
    ids[-1], ids[-2], ids[-3] = SPECIAL_MONO, SPECIAL_SEPARATED, SPECIAL_ALL_HET
    ids[-4] = SPECIAL_ONLY_LAST
    if quantitative:
        ids[-2] = "rs_notsep"
    a1 = np.array(["A", "C", "G", "T"])[rng.integers(0, 4, n_variants)]
    a2 = np.array([{"A": "G", "C": "T", "G": "A", "T": "C"}[x] for x in a1])
    variants = VariantTable(
        np.full(n_variants, "1"),
        np.array(ids),
        np.zeros(n_variants),
        np.arange(1, n_variants + 1, dtype=np.int64) * 1000,
        a1,
        a2,
    )
    # the variant only at the last site: missing elsewhere in the pooled twin
    geno[-4, site_of != n_sites - 1] = -1
    sites: list[Fileset] = []
    covs: list[npt.NDArray[np.float64]] = []
    for s in range(n_sites):
        cols = site_of == s
        g = geno[:, cols].copy()
        rows = np.arange(n_variants)
        if s != n_sites - 1:
            rows = rows[rows != n_variants - 4]
        g = g[rows]
        vt = variants.take(rows)
        # site 1 lists every third variant with swapped alleles (and counts the other allele)
        if s == 1:
            flip = np.arange(rows.size) % 3 == 0
            g[flip] = np.where(g[flip] >= 0, 2 - g[flip], -1)
            vt = VariantTable(
                vt.chrom,
                vt.snp,
                vt.cm,
                vt.bp,
                np.where(flip, vt.a2, vt.a1),
                np.where(flip, vt.a1, vt.a2),
            )
        # and a different variant order at the last site
        if s == n_sites - 1:
            perm = rng.permutation(rows.size)
            g, vt = g[perm], vt.take(perm)
        m = int(cols.sum())
        samples = SampleTable(
            np.array([f"F{s}_{i}" for i in range(m)]),
            np.array([f"I{s}_{i}" for i in range(m)]),
            np.full(m, "0"),
            np.full(m, "0"),
            np.zeros(m, dtype=np.int8),
            pheno[cols].copy(),
        )
        sites.append(Fileset(f"h{s + 1}", Path(f"h{s + 1}"), vt, samples, g))
        covs.append(cov[cols].copy())
    return Synthetic(sites, covs, geno, pheno, cov, site_of, variants)


def write_pooled(syn: Synthetic, prefix: Path) -> Path:
    """Write the pooled fileset and covariates (``PREFIX.cov``); return the covariate path."""
    from veil.gwas.plinkio import write_covariates, write_fileset

    samples = SampleTable(
        np.concatenate([f.samples.fid for f in syn.sites]),
        np.concatenate([f.samples.iid for f in syn.sites]),
        np.concatenate([f.samples.father for f in syn.sites]),
        np.concatenate([f.samples.mother for f in syn.sites]),
        np.concatenate([f.samples.sex for f in syn.sites]),
        syn.pooled_pheno,
    )
    write_fileset(prefix, syn.variants, samples, syn.pooled_geno)
    cov_path = prefix.with_name(prefix.name + ".cov")
    write_covariates(cov_path, samples, syn.pooled_cov, ["C1", "C2"])
    return cov_path


def write_sites(syn: Synthetic, folder: Path) -> list[tuple[Path, Path]]:
    """Write each site's fileset and covariates; return ``(prefix, covariate path)`` pairs."""
    from veil.gwas.plinkio import write_covariates, write_fileset

    out = []
    for f, cov in zip(syn.sites, syn.covariates, strict=True):
        prefix = folder / f.site
        write_fileset(prefix, f.variants, f.samples, f.genotypes)
        cpath = folder / f"{f.site}.cov"
        write_covariates(cpath, f.samples, cov, ["C1", "C2"])
        out.append((prefix, cpath))
    return out

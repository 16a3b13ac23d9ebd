"""Splitting a study over hospitals, and the benchmark's replication helper."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from veil.errors import ConfigError
from veil.gwas.bench import replicate
from veil.gwas.demo_data import Study
from veil.gwas.plinkio import SampleTable, VariantTable, read_fileset
from veil.gwas.split import SplitMode, assign_sites, split_study, write_split


def study(n: int = 60, v: int = 9) -> Study:
    rng = np.random.default_rng(0)
    ids = np.array([f"s{i}" for i in range(n)])
    zero = np.full(n, "0")
    samples = SampleTable(
        ids, ids, zero, zero, np.zeros(n, np.int8), rng.integers(1, 3, n).astype(float)
    )
    variants = VariantTable(
        np.full(v, "10"),
        np.array([f"rs{i}" for i in range(v)]),
        np.zeros(v),
        np.arange(1, v + 1, dtype=np.int64),
        np.full(v, "A"),
        np.full(v, "G"),
    )
    strat = (np.arange(n) % 3 == 0).astype(float)[:, None]
    geno = rng.integers(-1, 3, (v, n)).astype(np.int8)
    return Study(variants, samples, geno, strat, ("STRATUM",))


@pytest.mark.parametrize("mode", list(SplitMode))
def test_assign_sites_is_a_partition(mode: SplitMode) -> None:
    s = study()
    parts = assign_sites(60, 4, mode, s.covariates[:, 0], seed=3)
    assert sorted(np.concatenate(parts).tolist()) == list(range(60))
    sizes = [p.size for p in parts]
    assert max(sizes) - min(sizes) <= (1 if mode is not SplitMode.BALANCED else 2)
    strat_share = [s.covariates[p, 0].mean() for p in parts]
    if mode is SplitMode.BY_STRATUM:
        assert strat_share[0] == 0.0 and strat_share[-1] == 1.0
    if mode is SplitMode.BALANCED:
        assert max(strat_share) - min(strat_share) < 0.15


def test_split_write_and_errors(tmp_path: Path) -> None:
    s = study()
    out = write_split(s, tmp_path, 3, SplitMode.BALANCED, seed=1)
    total = 0
    for name, prefix, cov in out:
        fs = read_fileset(prefix, name)
        total += len(fs.samples)
        assert cov.is_file()
    assert total == 60
    with pytest.raises(ConfigError, match="cannot split 60 subjects over 0 sites"):
        split_study(s, 0)


def test_replicate() -> None:
    s = study(n=10)
    r = replicate(s, 3)
    assert r.genotypes.shape == (9, 30) and len(set(r.samples.iid)) == 30
    np.testing.assert_array_equal(r.genotypes[:, 10:20], s.genotypes)

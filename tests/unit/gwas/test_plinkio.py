"""PLINK fileset I/O: round trips, clear errors naming site and file, results layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gwas_synth import make_synthetic

from veil.errors import DataError
from veil.gwas.plinkio import (
    Fileset,
    SampleTable,
    parse_phenotype,
    read_covariates,
    read_fileset,
    write_covariates,
    write_fileset,
)
from veil.gwas.results import write_results
from veil.gwas.session import GwasOptions, Test, prepare_local, run_local

pytest.importorskip("bed_reader")


@pytest.fixture
def written(tmp_path: Path) -> tuple[Path, Fileset]:
    syn = make_synthetic(seed=3, n_per_site=(37, 20, 25), n_variants=17)
    site = syn.sites[0]
    prefix = tmp_path / "h1"
    write_fileset(prefix, site.variants, site.samples, site.genotypes)
    return prefix, site


def test_round_trip(written: tuple[Path, Fileset]) -> None:
    prefix, site = written
    back = read_fileset(prefix, "h1")
    np.testing.assert_array_equal(back.genotypes, site.genotypes)
    assert list(back.variants.snp) == list(site.variants.snp)
    assert list(back.variants.a1) == list(site.variants.a1)
    np.testing.assert_array_equal(back.samples.pheno, site.samples.pheno)
    assert (back.genotypes == -1).any() and back.genotypes.dtype == np.int8


@pytest.mark.parametrize("suffix", [".bed", ".bim", ".fam"])
def test_missing_file_names_site_and_file(written: tuple[Path, Fileset], suffix: str) -> None:
    prefix, _ = written
    prefix.with_name(prefix.name + suffix).unlink()
    with pytest.raises(DataError, match=rf"site 'h1'.*h1\{suffix}"):
        read_fileset(prefix, "h1")


def test_bed_size_mismatch(written: tuple[Path, Fileset]) -> None:
    prefix, _ = written
    bim = prefix.with_name("h1.bim")
    lines = bim.read_text().splitlines()
    bim.write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(DataError, match=r"site 'h1'.*h1\.bed has .* bytes but 15 variants"):
        read_fileset(prefix, "h1")


def test_bad_magic_and_malformed_line(written: tuple[Path, Fileset]) -> None:
    prefix, _ = written
    fam = prefix.with_name("h1.fam")
    fam.write_text(fam.read_text() + "only three fields\n")
    with pytest.raises(DataError, match=r"h1\.fam line 38 has 3 fields"):
        read_fileset(prefix, "h1")
    bed = prefix.with_name("h1.bed")
    data = bytearray(bed.read_bytes())
    data[2] = 0
    bed.write_bytes(bytes(data))
    fam.write_text("\n".join(fam.read_text().splitlines()[:-1]) + "\n")
    with pytest.raises(DataError, match="bad magic"):
        read_fileset(prefix, "h1")


def test_phenotype_coding() -> None:
    def samples(pheno: list[float]) -> SampleTable:
        n = len(pheno)
        ids = np.array([str(i) for i in range(n)])
        z = np.full(n, "0")
        return SampleTable(ids, ids, z, z, np.zeros(n, np.int8), np.array(pheno))

    cc = parse_phenotype(samples([1, 2, 0, -9, 2]), "h1")
    assert cc.binary
    np.testing.assert_array_equal(cc.values, [0, 1, np.nan, np.nan, 1])
    qt = parse_phenotype(samples([1.5, 2, 0, -9]), "h1")
    assert not qt.binary
    np.testing.assert_array_equal(qt.values, [1.5, 2, 0, np.nan])
    with pytest.raises(DataError, match="site 'h1': every phenotype"):
        parse_phenotype(samples([-9, 0, -9]), "h1")


def test_all_missing_phenotype_fails_the_run() -> None:
    syn = make_synthetic(seed=4, n_per_site=(30, 30), n_variants=12)
    syn.sites[1].samples.pheno[:] = -9
    sites, al = prepare_local(syn.sites)
    with pytest.raises(DataError, match="site 'h2': every phenotype"):
        run_local(sites, al.variants, GwasOptions(test=Test.ASSOC))


def test_covariates(tmp_path: Path, written: tuple[Path, Fileset]) -> None:
    prefix, _ = written
    site = read_fileset(prefix, "h1")
    values = np.arange(2 * len(site.samples), dtype=float).reshape(-1, 2)
    values[3, 1] = np.nan
    path = tmp_path / "c.txt"
    write_covariates(path, site.samples, values, ["AGE", "PC1"])
    # drop one subject from the file: it must come back missing
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:5] + lines[6:]) + "\n")
    got, names = read_covariates(path, "h1", site.samples, ["PC1"])
    assert names == ["PC1"]
    expect = values[:, 1].copy()
    expect[4] = np.nan
    np.testing.assert_array_equal(got[:, 0], expect)
    with pytest.raises(DataError, match=r"site 'h1': covariate\(s\) \['BMI'\] not in"):
        read_covariates(path, "h1", site.samples, ["BMI"])
    with pytest.raises(DataError, match="site 'h1': covariate file .* does not exist"):
        read_covariates(tmp_path / "nope", "h1", site.samples)


def test_results_tsv_layout(tmp_path: Path) -> None:
    syn = make_synthetic(seed=6, n_per_site=(60, 60), n_variants=15)
    sites, al = prepare_local(syn.sites)
    res = run_local(sites, al.variants, GwasOptions(test=Test.ASSOC))
    out = tmp_path / "results.tsv"
    write_results(out, res)
    rows = [ln.split("\t") for ln in out.read_text().splitlines()]
    assert rows[0] == ["CHR", "SNP", "BP", "A1", "F_A", "F_U", "A2", "CHISQ", "P", "OR"]
    assert len(rows) == len(res.variants) + 1
    mono = next(r for r in rows if r[1] == "rs_mono")
    assert mono[7:] == ["NA", "NA", "NA"]
    assert not (tmp_path / "results.tsv.part").exists()

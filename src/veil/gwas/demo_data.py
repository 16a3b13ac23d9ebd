"""The snpStats ``for.exercise`` study as a PLINK fileset, fetched from Debian at run time.

1,000 subjects (500 cases, 500 controls) x 28,501 SNPs of chromosome 10, in two ancestry strata
(CEU and JPT+CHB). The data ship in Debian's ``r-bioc-snpstats`` package (GPL): they are
downloaded with ``apt-get download`` and unpacked with ``dpkg -x`` into a cache directory on
first use, never committed or redistributed by veil. No R is needed: the ``.RData`` file is
decoded by :mod:`veil.gwas.rdata`.

Coding: snpStats stores genotypes as raw bytes, 0 missing, 1/2/3 = A/A, A/B, B/B with A the
``snp.support$A1`` allele; ``subject.support$cc`` is 1 for cases; ``stratum`` is the ancestry.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from veil.errors import ConfigError, DataError
from veil.gwas.plinkio import SampleTable, VariantTable, write_covariates, write_fileset
from veil.gwas.rdata import RObject, read_rdata

PACKAGE = "r-bioc-snpstats"
RDATA_NAME = "for.exercise.RData"


@dataclass(frozen=True)
class Study:
    """A case/control study in memory: variants, subjects, ``(V, n)`` genotypes, covariates."""

    variants: VariantTable
    samples: SampleTable
    genotypes: npt.NDArray[np.int8]
    covariates: npt.NDArray[np.float64]
    covariate_names: tuple[str, ...]


def default_cache_dir() -> Path:
    """``$VEIL_CACHE`` or ``$XDG_CACHE_HOME/veil`` (``~/.cache/veil``)."""
    env = os.environ.get("VEIL_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "veil"


def fetch_snpstats(cache_dir: Path | None = None) -> Path:
    """Path of ``for.exercise.RData``, downloading and unpacking the Debian package if needed.

    Raises
    ------
    ConfigError
        ``apt-get``/``dpkg`` are unavailable or the download fails (the message says what to do).
    """
    root = (cache_dir or default_cache_dir()) / "snpstats"
    found = sorted(root.glob(f"extract/**/{RDATA_NAME}"))
    if found:
        return found[0]
    for tool in ("apt-get", "dpkg"):
        if shutil.which(tool) is None:
            raise ConfigError(
                f"the demo data come from the Debian package {PACKAGE}, but {tool!r} is not "
                f"available here; on a Debian/Ubuntu machine run `apt-get download {PACKAGE}` "
                f"and `dpkg -x <file>.deb {root / 'extract'}`"
            )
    root.mkdir(parents=True, exist_ok=True)
    download = root / "download"
    download.mkdir(exist_ok=True)
    proc = subprocess.run(
        ["apt-get", "download", PACKAGE], cwd=download, capture_output=True, text=True, timeout=600
    )
    debs = sorted(download.glob(f"{PACKAGE}_*.deb"))
    if proc.returncode != 0 or not debs:
        raise ConfigError(
            f"`apt-get download {PACKAGE}` failed ({proc.stderr.strip()[-300:]}); check the "
            "apt sources (`apt-get update`) and network access"
        )
    extract = root / "extract.part"
    shutil.rmtree(extract, ignore_errors=True)
    proc = subprocess.run(
        ["dpkg", "-x", str(debs[-1]), str(extract)], capture_output=True, text=True, timeout=600
    )
    if proc.returncode != 0:
        raise ConfigError(f"`dpkg -x {debs[-1]}` failed: {proc.stderr.strip()[-300:]}")
    extract.replace(root / "extract")
    found = sorted(root.glob(f"extract/**/{RDATA_NAME}"))
    if not found:
        raise DataError(f"{PACKAGE} unpacked in {root / 'extract'} holds no {RDATA_NAME}")
    return found[0]


def _column(frame: RObject, name: str, source: Path) -> RObject:
    names = frame.attr("names") or []
    if name not in names:
        raise DataError(f"{source}: data frame has no column {name!r} (has {names})")
    col: RObject = frame.value[names.index(name)]
    return col


def _factor_labels(col: RObject) -> npt.NDArray[np.str_]:
    levels = np.array(["0", *(col.attr("levels") or [])], dtype=np.str_)
    codes = np.asarray(col.value, dtype=np.int64)
    return levels[np.where(codes < 0, 0, codes)]


def load_for_exercise(cache_dir: Path | None = None) -> Study:
    """Decode ``for.exercise``: genotypes as A1 counts, phenotype 2/1, stratum covariate 0/1."""
    path = fetch_snpstats(cache_dir)
    data = read_rdata(path)
    for key in ("snps.10", "snp.support", "subject.support"):
        if key not in data:
            raise DataError(f"{path}: object {key!r} missing")
    snps = data["snps.10"]
    dim = snps.attr("dim")
    dimnames = snps.attr("dimnames")
    if dim is None or dimnames is None or len(dim) != 2:
        raise DataError(f"{path}: snps.10 is not a matrix")
    n, v = int(dim[0]), int(dim[1])
    raw = np.asarray(snps.value, dtype=np.uint8).reshape(v, n)  # R is column-major
    geno = np.where(raw == 0, -1, 3 - raw.astype(np.int16)).astype(np.int8)
    subjects = np.array(dimnames[0].value, dtype=np.str_)
    snp_ids = np.array(dimnames[1].value, dtype=np.str_)
    support = data["snp.support"]
    chrom = np.asarray(_column(support, "chromosome", path).value)
    variants = VariantTable(
        chrom=np.array([str(int(c)) for c in chrom], dtype=np.str_),
        snp=snp_ids,
        cm=np.zeros(v),
        bp=np.asarray(_column(support, "position", path).value, dtype=np.int64),
        a1=_factor_labels(_column(support, "A1", path)),
        a2=_factor_labels(_column(support, "A2", path)),
    )
    subj = data["subject.support"]
    cc = np.asarray(_column(subj, "cc", path).value, dtype=np.float64)
    stratum = _factor_labels(_column(subj, "stratum", path))
    pheno = np.where(np.isnan(cc), -9.0, cc + 1.0)
    samples = SampleTable(
        fid=subjects,
        iid=subjects,
        father=np.full(n, "0"),
        mother=np.full(n, "0"),
        sex=np.zeros(n, dtype=np.int8),
        pheno=pheno,
    )
    levels = sorted(set(stratum.tolist()))
    strat = (stratum == levels[-1]).astype(np.float64)[:, None]
    return Study(variants, samples, geno, strat, ("STRATUM",))


def write_study(study: Study, prefix: str | Path) -> tuple[Path, Path]:
    """Write a study as ``PREFIX.bed/.bim/.fam`` and ``PREFIX.cov``; return both paths."""
    prefix = Path(prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    write_fileset(prefix, study.variants, study.samples, study.genotypes)
    cov = prefix.with_name(prefix.name + ".cov")
    write_covariates(cov, study.samples, study.covariates, study.covariate_names)
    return prefix, cov

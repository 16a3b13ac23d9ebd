"""PLINK 1 filesets (``.bed/.bim/.fam``), covariate files and PLINK-style result tables.

Reading is strict: every problem raises :class:`~veil.errors.DataError` naming the site and the
file (missing file, malformed line, ``.bed`` whose size does not match ``.bim`` x ``.fam``, a
phenotype that is all missing, ...). Genotypes are read with ``bed-reader`` (optional extra
``veil[gwas]``) as the count of the ``.bim`` A1 allele, ``-1`` for a missing call, variant-major
``(V, n)`` int8 so that per-variant work streams over contiguous rows.

Phenotype coding follows PLINK 1.9: when every non-missing value is 1 or 2 the trait is
case/control (1 control, 2 case; 0 and -9 missing); otherwise it is quantitative (-9 missing).
Unlike PLINK 1.9 without ``--allow-no-sex``, a subject of unknown sex keeps its phenotype.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from veil.errors import ConfigError, DataError

#: Value PLINK uses for a missing phenotype or covariate.
MISSING_PHENO = -9.0
_BED_MAGIC = b"\x6c\x1b\x01"


@dataclass(frozen=True)
class VariantTable:
    """The ``.bim`` columns of a fileset, one entry per variant."""

    chrom: npt.NDArray[np.str_]
    snp: npt.NDArray[np.str_]
    cm: npt.NDArray[np.float64]
    bp: npt.NDArray[np.int64]
    a1: npt.NDArray[np.str_]
    a2: npt.NDArray[np.str_]

    def __len__(self) -> int:
        return int(self.snp.shape[0])

    def take(self, index: npt.NDArray[np.intp]) -> VariantTable:
        """The rows at ``index``, in that order."""
        return VariantTable(
            self.chrom[index],
            self.snp[index],
            self.cm[index],
            self.bp[index],
            self.a1[index],
            self.a2[index],
        )


@dataclass(frozen=True)
class SampleTable:
    """The ``.fam`` columns of a fileset, one entry per subject.

    ``pheno`` is the raw sixth column as float (``nan`` where it is not a number).
    """

    fid: npt.NDArray[np.str_]
    iid: npt.NDArray[np.str_]
    father: npt.NDArray[np.str_]
    mother: npt.NDArray[np.str_]
    sex: npt.NDArray[np.int8]
    pheno: npt.NDArray[np.float64]

    def __len__(self) -> int:
        return int(self.iid.shape[0])


@dataclass(frozen=True)
class Phenotype:
    """A parsed phenotype.

    Attributes
    ----------
    values:
        ``(n,)`` float64: 0/1 (control/case) for a binary trait, the value for a quantitative
        one, ``nan`` where missing.
    binary:
        True for a case/control trait.
    """

    values: npt.NDArray[np.float64]
    binary: bool

    @property
    def missing(self) -> npt.NDArray[np.bool_]:
        """``(n,)`` True where the phenotype is missing."""
        return np.isnan(self.values)


@dataclass(frozen=True)
class Fileset:
    """One site's PLINK fileset held in memory.

    Attributes
    ----------
    site:
        The site's name (used in error messages).
    prefix:
        Path prefix of the ``.bed/.bim/.fam`` files.
    variants, samples:
        The ``.bim`` and ``.fam`` tables.
    genotypes:
        ``(V, n)`` int8 count of the ``.bim`` A1 allele, ``-1`` where missing.
    """

    site: str
    prefix: Path
    variants: VariantTable
    samples: SampleTable
    genotypes: npt.NDArray[np.int8]


def _bed_reader() -> Any:
    try:
        bed_reader = importlib.import_module("bed_reader")
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ConfigError(
            "reading PLINK .bed files needs the optional dependency bed-reader: "
            "pip install 'veil[gwas]'"
        ) from exc
    return bed_reader


def _need(path: Path, site: str) -> Path:
    if not path.is_file():
        raise DataError(f"site {site!r}: file {path} does not exist (need .bed, .bim and .fam)")
    return path


def _split_lines(path: Path, site: str, ncols: int) -> list[list[str]]:
    cols = _split_columns(path, site, ncols)
    return [list(row) for row in zip(*cols, strict=True)]


def _split_columns(path: Path, site: str, ncols: int) -> list[list[str]]:
    """The ``ncols`` columns of a whitespace-separated text table (blank lines skipped), one
    split of the whole text; DataError naming the file and line if a line has another count."""
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        text = fh.read()
    tokens = text.split()
    lines = text.split("\n")
    counts = np.fromiter((len(ln.split()) for ln in lines), dtype=np.int64, count=len(lines))
    bad = np.flatnonzero((counts != 0) & (counts != ncols))
    if bad.size:
        lineno = int(bad[0])
        raise DataError(
            f"site {site!r}: {path} line {lineno + 1} has {int(counts[lineno])} fields, "
            f"expected {ncols}"
        )
    if not tokens:
        raise DataError(f"site {site!r}: {path} is empty")
    return [tokens[k::ncols] for k in range(ncols)]


def _to_float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def read_bim(path: Path, site: str) -> VariantTable:
    """Read a ``.bim`` file (6 whitespace-separated columns)."""
    cols = _split_columns(_need(path, site), site, 6)
    try:
        bp = np.array(cols[3], dtype=np.int64)
        cm = np.array(list(map(float, cols[2])), dtype=np.float64)
    except ValueError as exc:
        raise DataError(f"site {site!r}: {path} has a non-numeric position: {exc}") from exc
    return VariantTable(
        chrom=np.array(cols[0], dtype=np.str_),
        snp=np.array(cols[1], dtype=np.str_),
        cm=cm,
        bp=bp,
        a1=np.array(cols[4], dtype=np.str_),
        a2=np.array(cols[5], dtype=np.str_),
    )


def read_fam(path: Path, site: str) -> SampleTable:
    """Read a ``.fam`` file (6 whitespace-separated columns)."""
    rows = _split_lines(_need(path, site), site, 6)
    cols = list(zip(*rows, strict=True))
    sex = np.array([int(v) if v in ("1", "2") else 0 for v in cols[4]], dtype=np.int8)
    pheno = np.array([_to_float(v) for v in cols[5]], dtype=np.float64)
    return SampleTable(
        fid=np.array(cols[0], dtype=np.str_),
        iid=np.array(cols[1], dtype=np.str_),
        father=np.array(cols[2], dtype=np.str_),
        mother=np.array(cols[3], dtype=np.str_),
        sex=sex,
        pheno=pheno,
    )


def read_fileset(prefix: str | Path, site: str) -> Fileset:
    """Read ``PREFIX.bed/.bim/.fam`` of one site.

    Raises
    ------
    DataError
        A file is missing or malformed, or the ``.bed`` size does not match ``.bim``/``.fam``.
    """
    prefix = Path(prefix)
    bed = _need(prefix.with_name(prefix.name + ".bed"), site)
    variants = read_bim(prefix.with_name(prefix.name + ".bim"), site)
    samples = read_fam(prefix.with_name(prefix.name + ".fam"), site)
    n, v = len(samples), len(variants)
    expected = 3 + v * ((n + 3) // 4)
    size = bed.stat().st_size
    with bed.open("rb") as fh:
        magic = fh.read(3)
    if magic != _BED_MAGIC:
        raise DataError(
            f"site {site!r}: {bed} is not a variant-major PLINK 1 .bed file (bad magic bytes)"
        )
    if size != expected:
        raise DataError(
            f"site {site!r}: {bed} has {size} bytes but {v} variants in the .bim and {n} "
            f"subjects in the .fam need {expected}; the fileset is inconsistent"
        )
    br = _bed_reader()
    with br.open_bed(bed, iid_count=n, sid_count=v, properties={}, count_A1=True) as handle:
        dosage = handle.read(dtype="int8", order="F")  # (n, V) Fortran = (V, n) C-order
    geno = np.ascontiguousarray(dosage.T)
    np.maximum(geno, np.int8(-1), out=geno)  # bed-reader's missing (-127) -> -1, one pass
    return Fileset(site, prefix, variants, samples, geno)


def parse_phenotype(samples: SampleTable, site: str, path: Path | None = None) -> Phenotype:
    """Decode the ``.fam`` phenotype with PLINK 1.9's rules.

    Raises
    ------
    DataError
        Every phenotype is missing.
    """
    raw = samples.pheno
    where = f"{path}" if path is not None else "the .fam file"
    present = np.isfinite(raw) & (raw != MISSING_PHENO)
    binary = bool(np.all(np.isin(raw[present], (0.0, 1.0, 2.0))))
    if binary:
        values = np.where(raw == 2.0, 1.0, np.where(raw == 1.0, 0.0, np.nan))
    else:
        values = np.where(present, raw, np.nan)
    if not np.any(np.isfinite(values)):
        raise DataError(f"site {site!r}: every phenotype in {where} is missing (-9/0/NA)")
    return Phenotype(values=values.astype(np.float64), binary=binary)


def read_covariates(
    path: str | Path,
    site: str,
    samples: SampleTable,
    names: Sequence[str] | None = None,
) -> tuple[npt.NDArray[np.float64], list[str]]:
    """Read a PLINK covariate file (``FID IID cov1 cov2 ...``) and align it to the ``.fam``.

    A header line starting ``FID IID`` names the columns; without one they are ``COV1..``.
    ``-9`` and non-numeric values are missing. Subjects absent from the file get missing values.

    Returns
    -------
    (covariates, names):
        ``(n, k)`` float64 in ``.fam`` order with ``nan`` for missing, and the column names.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"site {site!r}: covariate file {path} does not exist")
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        lines = [ln.split() for ln in fh if ln.strip()]
    if not lines:
        raise DataError(f"site {site!r}: covariate file {path} is empty")
    header = lines[0][:2] == ["FID", "IID"]
    ncol = len(lines[0])
    if ncol < 3:
        raise DataError(f"site {site!r}: covariate file {path} has no covariate column")
    all_names = lines[0][2:] if header else [f"COV{i}" for i in range(1, ncol - 1)]
    body = lines[1:] if header else lines
    table: dict[tuple[str, str], list[float]] = {}
    for lineno, fields in enumerate(body, start=2 if header else 1):
        if len(fields) != ncol:
            raise DataError(
                f"site {site!r}: {path} line {lineno} has {len(fields)} fields, expected {ncol}"
            )
        vals = [_to_float(v) for v in fields[2:]]
        table[(fields[0], fields[1])] = [math.nan if v == MISSING_PHENO else v for v in vals]
    if names:
        missing = [nm for nm in names if nm not in all_names]
        if missing:
            raise DataError(
                f"site {site!r}: covariate(s) {missing} not in {path} (has {all_names})"
            )
        cols = [all_names.index(nm) for nm in names]
    else:
        cols = list(range(len(all_names)))
    empty = [math.nan] * len(all_names)
    rows = [table.get((f, i), empty) for f, i in zip(samples.fid, samples.iid, strict=True)]
    full = np.array(rows, dtype=np.float64).reshape(len(samples), len(all_names))
    return full[:, cols], [all_names[c] for c in cols]


def write_fileset(
    prefix: str | Path,
    variants: VariantTable,
    samples: SampleTable,
    genotypes: npt.NDArray[np.int8],
) -> None:
    """Write a PLINK fileset; ``genotypes`` is ``(V, n)`` A1 counts with ``-1`` for missing."""
    prefix = Path(prefix)
    br = _bed_reader()
    dosage = np.where(genotypes < 0, -127, genotypes).astype(np.int8).T
    props = {
        "fid": list(samples.fid),
        "iid": list(samples.iid),
        "father": list(samples.father),
        "mother": list(samples.mother),
        "sex": [int(s) for s in samples.sex],
        "pheno": [_fmt_pheno(p) for p in samples.pheno],
        "chromosome": list(variants.chrom),
        "sid": list(variants.snp),
        "cm_position": [float(c) for c in variants.cm],
        "bp_position": [int(b) for b in variants.bp],
        "allele_1": list(variants.a1),
        "allele_2": list(variants.a2),
    }
    br.to_bed(prefix.with_name(prefix.name + ".bed"), dosage, properties=props, count_A1=True)


def _fmt_pheno(value: float) -> str:
    if not math.isfinite(value):
        return "-9"
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def write_covariates(
    path: str | Path,
    samples: SampleTable,
    covariates: npt.NDArray[np.float64],
    names: Sequence[str],
) -> None:
    """Write a PLINK covariate file with a ``FID IID names...`` header; ``nan`` -> ``-9``."""
    with Path(path).open("w", encoding="utf-8") as fh:
        fh.write("FID IID " + " ".join(names) + "\n")
        for f, i, row in zip(samples.fid, samples.iid, covariates, strict=True):
            fh.write(f"{f} {i} " + " ".join(_fmt_pheno(float(v)) for v in row) + "\n")


def format_float(value: float, digits: int = 4) -> str:
    """Format like PLINK's ``%g`` (4 significant digits by default); ``NA`` for nan/inf."""
    if not math.isfinite(value):
        return "NA"
    return f"{value:.{digits}g}"


def write_table(
    path: str | Path,
    header: Sequence[str],
    columns: Sequence[Sequence[Any]],
    digits: int = 6,
) -> None:
    """Write a tab-separated table atomically (``NA`` for nan floats).

    Floats are printed with ``digits`` significant digits (PLINK prints 4; the default keeps 6).
    The file is written to ``PATH.part`` and renamed, so a failure never leaves half a table.
    """
    out = Path(path)
    tmp = out.with_name(out.name + ".part")
    with tmp.open("w", encoding="utf-8") as fh:
        fh.write("\t".join(header) + "\n")
        for row in zip(*columns, strict=True):
            fh.write("\t".join(_cell(v, digits) for v in row) + "\n")
    tmp.replace(out)


def _cell(value: Any, digits: int) -> str:
    if isinstance(value, float | np.floating):
        return format_float(float(value), digits)
    return str(value)

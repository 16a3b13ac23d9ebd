"""Split one study over ``k`` hospitals (for demos, tests and benchmarks).

Modes: ``RANDOM`` (a seeded random partition), ``BALANCED`` (every site gets each stratum in
the same proportion) and ``BY_STRATUM`` (subjects sorted by stratum, then cut in contiguous
blocks, so sites differ in ancestry: site confounding that the site covariate must absorb).
"""

from __future__ import annotations

import enum
from pathlib import Path

import numpy as np
import numpy.typing as npt

from veil.errors import ConfigError
from veil.gwas.demo_data import Study, write_study
from veil.gwas.plinkio import SampleTable


class SplitMode(enum.Enum):
    """How subjects are assigned to sites."""

    RANDOM = "random"
    BALANCED = "balanced"
    BY_STRATUM = "by-stratum"


def assign_sites(
    n: int,
    k: int,
    mode: SplitMode = SplitMode.RANDOM,
    stratum: npt.NDArray[np.float64] | None = None,
    seed: int = 0,
) -> list[npt.NDArray[np.intp]]:
    """Subject indices of each of ``k`` sites (each sorted, together a partition of ``n``)."""
    if k < 1 or k > n:
        raise ConfigError(f"cannot split {n} subjects over {k} sites")
    rng = np.random.default_rng(seed)
    if mode is SplitMode.RANDOM or stratum is None:
        parts = np.array_split(rng.permutation(n), k)
    elif mode is SplitMode.BALANCED:
        buckets: list[list[int]] = [[] for _ in range(k)]
        for level in np.unique(stratum):
            members = rng.permutation(np.flatnonzero(stratum == level))
            for j, chunk in enumerate(np.array_split(members, k)):
                buckets[j].extend(int(x) for x in chunk)
        parts = [np.array(b, dtype=np.intp) for b in buckets]
    else:
        order = np.lexsort((rng.random(n), stratum))
        parts = np.array_split(order, k)
    return [np.sort(p).astype(np.intp) for p in parts]


def subset(study: Study, rows: npt.NDArray[np.intp]) -> Study:
    """The study restricted to subjects ``rows``."""
    s = study.samples
    samples = SampleTable(
        s.fid[rows], s.iid[rows], s.father[rows], s.mother[rows], s.sex[rows], s.pheno[rows]
    )
    return Study(
        study.variants,
        samples,
        np.ascontiguousarray(study.genotypes[:, rows]),
        study.covariates[rows],
        study.covariate_names,
    )


def split_study(
    study: Study,
    k: int,
    mode: SplitMode = SplitMode.RANDOM,
    seed: int = 0,
    stratum_column: int = 0,
) -> list[Study]:
    """Split ``study`` over ``k`` sites (strata from covariate column ``stratum_column``)."""
    stratum = study.covariates[:, stratum_column] if study.covariates.shape[1] else None
    parts = assign_sites(len(study.samples), k, mode, stratum, seed)
    return [subset(study, p) for p in parts]


def write_split(
    study: Study,
    folder: str | Path,
    k: int,
    mode: SplitMode = SplitMode.RANDOM,
    seed: int = 0,
    names: list[str] | None = None,
) -> list[tuple[str, Path, Path]]:
    """Write each site's fileset and covariates in ``folder``; return ``(site, prefix, cov)``."""
    folder = Path(folder)
    names = names or [f"h{i + 1}" for i in range(k)]
    if len(names) != k:
        raise ConfigError(f"{len(names)} site names for {k} sites")
    out = []
    for name, part in zip(names, split_study(study, k, mode, seed), strict=True):
        prefix, cov = write_study(part, folder / name)
        out.append((name, prefix, cov))
    return out

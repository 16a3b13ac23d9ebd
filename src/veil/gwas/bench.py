"""Side-by-side timing of the federated analysis (in memory) and PLINK 1.9 on the pooled data.

Runs QC + ``--logistic`` with the study's covariates: veil's sites in one process over
:class:`~veil.gwas.session.LocalSum` (``seconds`` = wall time with the sites taking turns, i.e.
their compute summed; ``critical_path`` = per round the slowest site, which is what hospitals
on their own machines would see without network time), and PLINK 1.9 as a whole process with
one thread. Emits JSON lines through :mod:`veil.bench.common`.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from veil.bench.common import emit, median, record
from veil.errors import ConfigError
from veil.gwas.demo_data import Study, write_study
from veil.gwas.plinkio import Fileset, SampleTable
from veil.gwas.qc import QcOptions
from veil.gwas.session import GwasOptions, LocalSum, Test, prepare_local, run_local
from veil.gwas.site import SiteCovariates
from veil.gwas.split import SplitMode, split_study

QC = QcOptions(maf=0.01, geno=0.1, hwe=1e-6)
QC_FLAGS = ["--maf", "0.01", "--geno", "0.1", "--hwe", "1e-6"]


def replicate(study: Study, times: int) -> Study:
    """The study with every subject repeated ``times`` times (ids suffixed ``_r``)."""
    if times == 1:
        return study
    s = study.samples

    def rep(a: np.ndarray, suffix: bool) -> np.ndarray:
        if not suffix:
            return np.tile(a, times)
        return np.concatenate([np.char.add(a, f"_r{i}") for i in range(times)])

    samples = SampleTable(
        rep(s.fid, True),
        rep(s.iid, True),
        rep(s.father, False),
        rep(s.mother, False),
        rep(s.sex, False),
        rep(s.pheno, False),
    )
    return Study(
        study.variants,
        samples,
        np.tile(study.genotypes, (1, times)),
        np.tile(study.covariates, (times, 1)),
        study.covariate_names,
    )


def time_veil(
    study: Study, n_sites: int, use_cells: bool, repeats: int
) -> tuple[list[float], list[float], int, int, Any]:
    """Seconds and critical paths of ``repeats`` runs, bytes per site, rounds, last result."""
    parts = split_study(study, n_sites, SplitMode.RANDOM, seed=1)
    filesets = [
        Fileset(f"h{i + 1}", Path("."), p.variants, p.samples, p.genotypes)
        for i, p in enumerate(parts)
    ]
    covs = [SiteCovariates(p.covariates, p.covariate_names) for p in parts]
    secs, crit = [], []
    res: Any = None
    hub = LocalSum(n_sites)
    for _ in range(repeats):
        sites, alignment = prepare_local(filesets, covs)
        for s in sites:
            s.use_cells = use_cells
        hub = LocalSum(n_sites)
        t = time.perf_counter()
        res = run_local(sites, alignment.variants, GwasOptions(Test.LOGISTIC, QC), hub)
        secs.append(time.perf_counter() - t)
        crit.append(hub.critical_path)
    return secs, crit, hub.bytes_per_site, res.rounds, res


def time_plink(study: Study, repeats: int, folder: Path) -> tuple[list[float], Path]:
    """Wall seconds of ``plink1.9 --logistic`` (1 thread) on the pooled fileset."""
    exe = shutil.which("plink1.9")
    if exe is None:
        raise ConfigError("plink1.9 is not installed (apt-get install plink1.9)")
    prefix, cov = write_study(study, folder / "pooled")
    cmd = [
        exe,
        "--bfile",
        str(prefix),
        "--allow-no-sex",
        "--threads",
        "1",
        *QC_FLAGS,
        "--logistic",
        "hide-covar",
        "--covar",
        str(cov),
        "--out",
        str(folder / "plink"),
    ]
    secs = []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, timeout=600)
        secs.append(time.perf_counter() - t)
    return secs, folder / "plink.assoc.logistic"


def max_stat_diff(res: Any, plink_out: Path) -> float:
    """Largest |STAT_veil - STAT_plink| over variants both report."""
    rows = {ln.split()[1]: ln.split() for ln in plink_out.read_text().splitlines()[1:]}
    diffs = []
    for snp, z in zip(res.variants.snp, res.logistic.z, strict=True):
        text = rows[snp][7]
        if text != "NA" and np.isfinite(z):
            diffs.append(abs(float(text) - z))
    return float(max(diffs)) if diffs else 0.0


def run(study: Study, n_sites: int = 3, times: int = 1, repeats: int = 3) -> list[dict[str, Any]]:
    """Benchmark veil (cell and dense kernels) and PLINK on ``study`` replicated ``times``."""
    data = replicate(study, times)
    n = int(data.genotypes.shape[1])
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        p_secs, p_out = time_plink(data, repeats, Path(tmp))
        out.append(record("gwas_logistic", "plink1.9", n, median(p_secs), threads=1))
        for cells in (True, False):
            secs, crit, nbytes, rounds, res = time_veil(data, n_sites, cells, repeats)
            out.append(
                record(
                    "gwas_logistic",
                    f"veil-local-{'cells' if cells else 'dense'}",
                    n,
                    median(secs),
                    bytes_=nbytes,
                    rounds=rounds,
                    max_abs_err=max_stat_diff(res, p_out),
                    critical_path=median(crit),
                    sites=n_sites,
                    ratio_vs_plink=median(secs) / median(p_secs),
                )
            )
    for rec in out:
        emit(rec)
    return out

"""PLINK 1.9 as the reference of the federated GWAS: run it on the pooled data, compare, time.

Used by ``veil bench gwas`` (:mod:`veil.bench.gwas`) and ``veil demo gwas`` (its validation
step). PLINK runs as a whole process with one thread (``--threads 1 --allow-no-sex``: veil keeps
the phenotypes of subjects of unknown sex). :func:`time_local` times veil's sites in one process
over :class:`~veil.gwas.session.LocalSum` (no secure sum, no transport): ``seconds`` is the wall
time with the sites taking turns (their compute summed), ``critical_path`` per round the slowest
site (what hospitals on their own machines would see without network time).

Agreement with PLINK (:func:`plink_agreement`): PLINK 1.9 prints 4 significant digits, and its
``--logistic`` iterates in single precision, so its STAT differs from the double-precision MLE
(which veil and statsmodels agree on to 1e-14) by up to ~6e-4 in absolute terms on the demo
study — beyond its printed digits when |STAT| < 1. A value agrees when
``|veil − PLINK| <= ATOL + RTOL·|PLINK|`` (the tolerances of ``tests/e2e/test_gwas_plink.py``).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from veil.errors import ConfigError
from veil.gwas.demo_data import Study, write_study
from veil.gwas.plinkio import Fileset, SampleTable
from veil.gwas.qc import QcOptions
from veil.gwas.session import GwasOptions, GwasResult, LocalSum, Test, prepare_local, run_local
from veil.gwas.site import SiteCovariates
from veil.gwas.split import SplitMode, split_study

QC = QcOptions(maf=0.01, geno=0.1, hwe=1e-6)
QC_FLAGS = ("--maf", "0.01", "--geno", "0.1", "--hwe", "1e-6")
#: relative tolerance: PLINK's 4 printed significant digits
RTOL = 5e-4
#: absolute tolerances of ``--logistic`` (PLINK's single-precision Newton)
STAT_ATOL = 1e-3
P_ATOL = 5e-4


def replicate(study: Study, times: int) -> Study:
    """The study with every subject repeated ``times`` times (ids suffixed ``_r``)."""
    if times < 1:
        raise ConfigError(f"--times must be at least 1, got {times}")
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


def plink_binary() -> str:
    """Path of ``plink1.9`` (ConfigError saying how to install it if absent)."""
    exe = shutil.which("plink1.9")
    if exe is None:
        raise ConfigError("plink1.9 is not installed (apt-get install plink1.9)")
    return exe


def plink_logistic_command(
    prefix: Path, cov: Path, out: Path, covar_names: Sequence[str] | None = None
) -> list[str]:
    """``plink1.9 --logistic hide-covar`` with QC and covariates, one thread."""
    cmd = [plink_binary(), "--bfile", str(prefix), "--allow-no-sex", "--threads", "1",
           *QC_FLAGS, "--logistic", "hide-covar", "--covar", str(cov)]  # fmt: skip
    if covar_names:
        cmd += ["--covar-name", ",".join(covar_names)]
    return [*cmd, "--out", str(out)]


def run_plink(cmd: Sequence[str]) -> float:
    """Run a PLINK command; return its wall seconds (ConfigError with PLINK's log if it fails)."""
    t = time.perf_counter()
    proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=1200)
    secs = time.perf_counter() - t
    if proc.returncode != 0:
        raise ConfigError(f"plink1.9 failed ({' '.join(cmd)}): {proc.stdout[-800:]}")
    return secs


def time_plink(
    study: Study, repeats: int, folder: Path, covar_names: Sequence[str] | None = None
) -> tuple[list[float], Path]:
    """Wall seconds of ``repeats`` runs of ``plink1.9 --logistic`` (1 thread) on the pooled
    fileset written in ``folder``, and the path of its ``.assoc.logistic``."""
    prefix, cov = write_study(study, folder / "pooled")
    cmd = plink_logistic_command(prefix, cov, folder / "plink", covar_names)
    secs = [run_plink(cmd) for _ in range(repeats)]
    return secs, folder / "plink.assoc.logistic"


def _num(text: str) -> float:
    return float("nan") if text == "NA" else float(text)


def plink_agreement(result: GwasResult, plink_out: Path) -> dict[str, Any]:
    """Compare a ``--logistic`` result with PLINK's ``.assoc.logistic`` (its ``ADD`` rows).

    Returns
    -------
    dict
        ``variants`` (PLINK's rows), ``same_variants`` (the same SNPs tested, NA at the same
        variants), ``max_abs_stat_diff``, ``max_abs_p_diff``, ``beyond`` (STAT or P values
        outside the tolerances in the module docstring) and ``identical`` (same variants and
        nothing beyond).
    """
    if result.logistic is None:
        raise ConfigError("plink_agreement compares --logistic results only")
    rows: dict[str, tuple[float, float]] = {}
    for ln in plink_out.read_text().splitlines()[1:]:
        f = ln.split()
        if len(f) >= 9 and f[4] == "ADD":
            rows[f[1]] = (_num(f[7]), _num(f[8]))
    snps = [str(s) for s in result.variants.snp]
    same = set(snps) == set(rows) and len(snps) == len(rows)
    d_stat = d_p = 0.0
    beyond = 0
    for snp, z, p in zip(snps, result.logistic.z, result.logistic.p, strict=True):
        if snp not in rows:
            continue
        ref_z, ref_p = rows[snp]
        if not (np.isfinite(ref_z) and np.isfinite(z)):
            same = same and not np.isfinite(ref_z) and not np.isfinite(z)
            continue
        d_stat = max(d_stat, abs(z - ref_z))
        d_p = max(d_p, abs(p - ref_p))
        if abs(z - ref_z) > STAT_ATOL + RTOL * abs(ref_z) or abs(p - ref_p) > P_ATOL + RTOL * ref_p:
            beyond += 1
    return {
        "variants": len(rows),
        "same_variants": same,
        "max_abs_stat_diff": float(d_stat),
        "max_abs_p_diff": float(d_p),
        "beyond": beyond,
        "identical": same and beyond == 0,
    }


def split_filesets(
    study: Study, n_sites: int, mode: SplitMode = SplitMode.BY_STRATUM, seed: int = 1
) -> tuple[list[Fileset], list[SiteCovariates]]:
    """``study`` split over ``n_sites`` as in-memory filesets ``h1..hN`` and covariates."""
    parts = split_study(study, n_sites, mode, seed=seed)
    filesets = [
        Fileset(f"h{i + 1}", Path("."), p.variants, p.samples, p.genotypes)
        for i, p in enumerate(parts)
    ]
    covs = [SiteCovariates(p.covariates, p.covariate_names) for p in parts]
    return filesets, covs


def time_local(
    filesets: Sequence[Fileset],
    covs: Sequence[SiteCovariates],
    repeats: int,
    *,
    use_cells: bool = True,
) -> tuple[list[float], list[float], int, GwasResult]:
    """Seconds and critical paths of ``repeats`` in-process runs (sites prepared from memory
    each time, preparation included), bytes summed per site, and the last result.
    ``use_cells=False`` forces the dense logistic kernel (for comparison)."""
    secs, crit = [], []
    res: GwasResult | None = None
    hub = LocalSum(len(filesets))
    for _ in range(repeats):
        t = time.perf_counter()
        sites, alignment = prepare_local(filesets, covs)
        for site in sites:
            site.use_cells = use_cells
        hub = LocalSum(len(filesets))
        res = run_local(sites, alignment.variants, GwasOptions(Test.LOGISTIC, QC), hub)
        secs.append(time.perf_counter() - t)
        crit.append(hub.critical_path)
    assert res is not None
    return secs, crit, hub.bytes_per_site, res


__all__ = [
    "QC",
    "QC_FLAGS",
    "plink_agreement",
    "plink_binary",
    "plink_logistic_command",
    "replicate",
    "run_plink",
    "split_filesets",
    "time_local",
    "time_plink",
]

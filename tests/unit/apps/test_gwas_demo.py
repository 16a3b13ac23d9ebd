"""``veil demo gwas`` on a small synthetic stratified study (no download), in memory."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from veil.apps import gwas_demo
from veil.errors import ConfigError
from veil.gwas.demo_data import Study
from veil.gwas.plinkio import SampleTable, VariantTable, read_covariates, read_fileset
from veil.gwas.report import FILES

CAUSAL = "rs_causal"


def stratified_study(n: int = 360, v: int = 300, seed: int = 4) -> Study:
    """Two ancestry strata differing in allele frequencies and in case fraction (confounding),
    plus one causal variant: unadjusted tests are inflated, adjusting for STRATUM fixes it."""
    rng = np.random.default_rng(seed)
    stratum = (np.arange(n) % 2).astype(np.float64)
    f0 = rng.uniform(0.1, 0.5, v)
    f1 = np.clip(f0 + rng.choice([-0.12, 0.12], v), 0.05, 0.95)
    freq = np.where(stratum[None, :] == 1, f1[:, None], f0[:, None])
    geno = rng.binomial(2, freq).astype(np.int8)
    lin = -0.9 + 1.8 * stratum + 0.9 * geno[0]
    case = rng.random(n) < 1 / (1 + np.exp(-lin))
    geno[rng.random(geno.shape) < 0.01] = -1
    ids = np.array([f"p{i}" for i in range(n)])
    zero = np.full(n, "0")
    samples = SampleTable(ids, ids, zero, zero, np.zeros(n, np.int8), np.where(case, 2.0, 1.0))
    snps = np.array([CAUSAL] + [f"rs{i}" for i in range(1, v)])
    variants = VariantTable(
        np.full(v, "10"), snps, np.zeros(v), np.arange(1, v + 1, dtype=np.int64) * 1000,
        np.full(v, "A"), np.full(v, "G"),
    )  # fmt: skip
    return Study(variants, samples, geno, stratum[:, None], ("STRATUM",))


def test_demo_pipeline_memory(tmp_path: Path) -> None:
    out = tmp_path / "gwas"
    console = Console(file=open(tmp_path / "console.txt", "w"), width=120)  # noqa: SIM115
    summary = gwas_demo.run(
        out, transport="memory", console=console, study=stratified_study(), dp_epsilon=10.0
    )
    console.file.close()

    # each hospital's own fileset + covariates, with different ancestry mixes
    shares = []
    for h in gwas_demo.HOSPITALS:
        prefix = out / "data" / h / h
        fs = read_fileset(prefix, h)
        values, names = read_covariates(out / "data" / h / f"{h}.cov", h, fs.samples)
        assert names == ["STRATUM"] and len(fs.samples) == 120
        shares.append(float(values[:, 0].mean()))
    assert shares[0] == 0.0 and shares[-1] == 1.0
    assert not any(p.name.startswith(".") for p in out.iterdir())  # no staging left behind

    for name in (*FILES, "results.tsv", "without_stratum.tsv", "demo.json"):
        assert (out / name).is_file(), name
    report = json.loads((out / "report.json").read_text())
    lam_b = report["lambda_gc"]["value"]
    lam_a = report["baseline"]["lambda_gc"]["value"]
    assert report["baseline"]["label"] == gwas_demo.BASELINE_LABEL
    page = (out / "report.html").read_text()  # the demo names both runs (plots, tables)
    assert f"Top hits ({gwas_demo.LABEL})" in page and "this run" not in page
    assert report["test"] == "logistic" and report["sites"] == list(gwas_demo.HOSPITALS)
    assert lam_a > 2.0 and 0.8 < lam_b < 1.2  # inflation, then corrected
    assert report["top_hits"][0]["SNP"] == CAUSAL
    assert report["top_hits"][0]["P"] < 1e-4
    # the DP release (--assoc, 5 hits) and its epsilon in the merged ledger
    assert report["dp_release"]["k"] == 5 and report["dp_release"]["epsilon"] == 10.0
    dp_events = [e for e in report["ledger"] if e["event"] == "dp_release"]
    assert len(dp_events) == 3 and all(e["dp"]["epsilon"] == 10.0 for e in dp_events)
    header = (out / "results.tsv").read_text().splitlines()[0].split()
    assert header == ["CHR", "SNP", "BP", "A1", "TEST", "NMISS", "OR", "SE", "STAT", "P"]

    demo = json.loads((out / "demo.json").read_text())
    assert demo == json.loads(json.dumps(summary))
    assert demo["lambda_gc"] == {
        gwas_demo.BASELINE_LABEL: lam_a,
        gwas_demo.LABEL: lam_b,
    }
    assert [h["stratum_1_share"] for h in demo["hospitals"].values()] == shares
    if shutil.which("plink1.9"):
        assert demo["plink_check"]["identical"] is True
        assert demo["plink_check"]["variants"] == report["qc"]["variants"]["tested"]
    text = (tmp_path / "console.txt").read_text()
    assert "lambda = " in text and "report: " in text and CAUSAL in text


def test_demo_needs_a_stratum(tmp_path: Path) -> None:
    s = stratified_study(n=30, v=10)
    bad = Study(s.variants, s.samples, s.genotypes, s.covariates, ("ANCESTRY",))
    with pytest.raises(ConfigError, match="needs a 'STRATUM' covariate"):
        gwas_demo.run(tmp_path, transport="memory", console=Console(quiet=True), study=bad)
    assert not (tmp_path / "report.json").exists()


@pytest.mark.e2e
def test_demo_pipeline_grpc(tmp_path: Path) -> None:
    """The default transport: one process per hospital, mutual TLS (no DP run, to stay quick)."""
    summary = gwas_demo.run(
        tmp_path, console=Console(quiet=True), study=stratified_study(), dp_epsilon=None
    )
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["transport"] == "grpc" and report["dp_release"] is None
    assert summary["lambda_gc"][gwas_demo.LABEL] == report["lambda_gc"]["value"] < 1.2
    assert report["top_hits"][0]["SNP"] == CAUSAL
    assert all(p["bytes_sent"] > 0 for p in report["parties"].values())

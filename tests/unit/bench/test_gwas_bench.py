"""``veil bench gwas`` on a tiny study: every line is produced and agrees (not timed)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from veil.bench import gwas as bench_gwas
from veil.errors import ConfigError
from veil.gwas.demo_data import Study
from veil.gwas.plinkio import SampleTable, VariantTable


def tiny_study(n: int = 150, v: int = 40, seed: int = 2) -> Study:
    rng = np.random.default_rng(seed)
    stratum = (np.arange(n) % 3 == 0).astype(np.float64)
    geno = rng.binomial(2, rng.uniform(0.1, 0.5, v)[:, None], (v, n)).astype(np.int8)
    geno[rng.random(geno.shape) < 0.02] = -1
    case = rng.random(n) < 1 / (1 + np.exp(-(0.8 * stratum + 0.6 * np.maximum(geno[0], 0) - 0.6)))
    ids = np.array([f"p{i}" for i in range(n)])
    zero = np.full(n, "0")
    samples = SampleTable(ids, ids, zero, zero, np.zeros(n, np.int8), np.where(case, 2.0, 1.0))
    variants = VariantTable(
        np.full(v, "10"), np.array([f"rs{i}" for i in range(v)]), np.zeros(v),
        np.arange(1, v + 1, dtype=np.int64) * 100, np.full(v, "C"), np.full(v, "T"),
    )  # fmt: skip
    return Study(variants, samples, geno, stratum[:, None], ("STRATUM",))


def test_bench_lines(capsys: pytest.CaptureFixture[str]) -> None:
    plink = shutil.which("plink1.9") is not None
    recs = bench_gwas.run(
        tiny_study(), n_sites=3, times=2, repeats=1, transports=("memory",), dense=True,
        plink=plink,
    )  # fmt: skip
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert printed == json.loads(json.dumps(recs))
    impls = [r["impl"] for r in recs]
    assert impls == (["plink1.9"] if plink else []) + [
        "veil-local", "veil-local-dense", "veil-memory",
    ]  # fmt: skip
    local, dense, mem = recs[-3:]
    if plink:  # both kernels give the same MLE
        assert dense["max_abs_err"] == pytest.approx(local["max_abs_err"], abs=1e-9)
    assert all(r["n"] == 300 and r["times"] == 2 and r["sites"] == 3 for r in recs)
    # the same pooled analysis in process and through the real job (secure sums)
    assert local["rounds"] == mem["rounds"] > 3
    assert mem["bytes"] > local["bytes"] > 0  # limbs of masked fixed point vs raw float64
    assert set(mem["bytes_per_site"]) == {"h1", "h2", "h3"}
    assert 0 < mem["seconds"] <= mem["job_seconds"]
    assert {"read", "align", "qc+test"} <= set(mem["stages"])
    if plink:
        for r in (local, dense, mem):
            assert r["plink"]["identical"] is True, r["plink"]
            assert r["max_abs_err"] < 1e-3
            assert r["ratio_vs_plink"] > 0
    else:
        assert mem["max_abs_err"] is None and mem["ratio_vs_plink"] is None


def test_bench_rejects_bad_options() -> None:
    with pytest.raises(ConfigError, match="unknown transport"):
        bench_gwas.run(tiny_study(), transports=("carrier-pigeon",), plink=False)
    with pytest.raises(ConfigError, match="--times must be at least 1"):
        bench_gwas.run(tiny_study(), times=0, transports=(), local=False, plink=False)


def test_help_reaches_the_benchmark_parser() -> None:
    """``veil bench NAME --help`` prints the benchmark's own options (not typer's help)."""
    from typer.testing import CliRunner

    from veil.cli.main import app

    runner = CliRunner()
    res = runner.invoke(app, ["bench", "gwas", "--help"])
    assert res.exit_code == 0, res.output
    assert "usage: veil bench gwas" in res.output
    for option in ("--times", "--sites", "--transport", "--repeats"):
        assert option in res.output
    listing = runner.invoke(app, ["bench", "--help"])
    assert listing.exit_code == 0 and "veil bench NAME" in listing.output
    assert "gwas" in listing.output and "psi.intersect" in listing.output
    missing = runner.invoke(app, ["bench"])
    assert missing.exit_code == 2 and "veil bench NAME" in missing.output

"""The GWAS report: report.json fields and values, plots, HTML, all-or-nothing writing."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import pytest
from gwas_synth import make_synthetic

from veil.gwas import report as report_mod
from veil.gwas.dp_release import dp_release
from veil.gwas.outputs import write_outputs
from veil.gwas.plots import QqSeries, chrom_rank, manhattan_png, qq_png
from veil.gwas.qc import QcOptions
from veil.gwas.report import FILES, RunInfo, write_report
from veil.gwas.session import GwasOptions, GwasResult, Test, prepare_local, run_local

PNG = b"\x89PNG\r\n\x1a\n"
OPTIONS = GwasOptions(test=Test.ASSOC, qc=QcOptions(maf=0.01, geno=0.1, hwe=1e-6))


def _run(options: GwasOptions, quantitative: bool = False) -> tuple[GwasResult, RunInfo]:
    syn = make_synthetic(seed=3, quantitative=quantitative)
    sites, al = prepare_local(syn.sites)
    res = run_local(sites, al.variants, options)
    info = RunInfo(
        sites=tuple(f.site for f in syn.sites),
        n_aligned=len(al.variants),
        absent={s: len(ids) for s, ids in al.absent.items()},
        party_stats={
            "h1": {"bytes_sent": 1200.0, "messages": 7.0, "seconds": 0.5},
            "h2": {"bytes_sent": 1100.0, "messages": 7.0, "seconds": 0.4},
        },
        stage_seconds={"read": 0.1, "align": 0.01, "qc+test": 0.2},
        ledger=[
            {"party": "h1", "event": "reveal", "tag": "gwas/counts", "to": ["h1", "h2", "h3"]},
            {"party": "h1", "event": "dp_release", "query": "x", "epsilon": 0.5},
        ],
        transport="memory",
        mind_removed=2,
    )
    return res, info


@pytest.fixture(scope="module")
def assoc_run() -> tuple[GwasResult, RunInfo]:
    return _run(OPTIONS)


def test_report_json_fields_and_values(
    tmp_path: Path, assoc_run: tuple[GwasResult, RunInfo]
) -> None:
    res, info = assoc_run
    out = tmp_path / "rep"
    rep = write_report(out, res, OPTIONS, info, top=5)
    on_disk = json.loads((out / "report.json").read_text())
    assert on_disk == rep
    assert rep["test"] == "assoc" and rep["plink_flag"] == "--assoc"
    assert rep["options"]["maf"] == 0.01 and rep["options"]["hwe"] == 1e-6
    assert rep["sites"] == ["h1", "h2", "h3"] and rep["transport"] == "memory"
    v = rep["qc"]["variants"]
    assert v["aligned"] == info.n_aligned == 59  # the variant only at h3 is dropped (absent)
    assert v["absent_per_site"] == {"h1": 1, "h2": 1, "h3": 0}
    assert v["removed"] == res.qc.removed and set(v["removed"]) == {"geno", "hwe", "maf"}
    assert v["tested"] == len(res.variants) == info.n_aligned - sum(res.qc.removed.values())
    assert v["monomorphic"] == 1  # rs_mono (then removed by --maf)
    chisq = res.assoc.chisq  # type: ignore[union-attr]
    p = res.assoc.p  # type: ignore[union-attr]
    assert v["na"] == int(np.sum(~np.isfinite(p)))
    assert v["genome_wide"] == int(np.sum(p < 5e-8)) >= 1  # the separated variant
    assert rep["qc"]["subjects"] == {"analysed": res.n_subjects, "removed_mind": 2}
    lam = rep["lambda_gc"]
    finite = chisq[np.isfinite(chisq)]
    assert lam["value"] == pytest.approx(np.median(finite) / 0.456, rel=1e-12)
    assert lam["plink"] == pytest.approx(max(1.0, lam["value"]))
    assert lam["n"] == finite.size and lam["statistic"].startswith("CHISQ")
    hits = rep["top_hits"]
    order = np.argsort(p, kind="stable")[:5]
    assert [h["SNP"] for h in hits] == list(res.variants.snp[order])
    assert hits[0]["SNP"] == "rs_sep"
    for h, i in zip(hits, order, strict=True):
        assert h["STAT"] == pytest.approx(chisq[i]) and h["P"] == pytest.approx(p[i])
        assert h["A1"] == res.variants.a1[i] and h["BP"] == int(res.variants.bp[i])
        assert set(h) == {"CHR", "SNP", "BP", "A1", "A2", "STAT", "P", "OR", "F_A", "F_U"}
    assert hits[0]["OR"] is None  # PLINK's NA (no control carries A1) is null, not NaN
    assert rep["parties"]["h1"]["bytes_sent"] == 1200.0 and rep["stages"]["qc+test"] == 0.2
    assert rep["ledger"] == [dict(e) for e in info.ledger]
    assert rep["dp_release"] is None and rep["baseline"] is None
    assert "NaN" not in (out / "report.json").read_text()


def test_baseline_and_dp_release_are_reported(
    tmp_path: Path, assoc_run: tuple[GwasResult, RunInfo]
) -> None:
    res, info = assoc_run
    base, _ = _run(GwasOptions(test=Test.LOGISTIC))
    dp = dp_release(res, 2.0, k=3, rng=np.random.default_rng(0))
    rep = write_report(tmp_path, res, OPTIONS, info, baseline=("no covariate", base), dp=dp)
    b = rep["baseline"]
    z = base.logistic.z  # type: ignore[union-attr]
    z2 = z[np.isfinite(z)] ** 2
    assert b["label"] == "no covariate" and b["test"] == "logistic"
    assert b["lambda_gc"]["value"] == pytest.approx(np.median(z2) / 0.456, rel=1e-12)
    assert "Wald" in b["lambda_gc"]["statistic"]
    assert "NMISS" in b["top_hits"][0] and "OR" in b["top_hits"][0]
    assert all(h["SNP"] != "rs_sep" for h in b["top_hits"])  # separated: NA in logistic
    d = rep["dp_release"]
    assert d["epsilon"] == pytest.approx(2.0) and d["k"] == 3 and len(d["hits"]) == 3
    assert [h["SNP"] for h in d["hits"]] == list(dp.snp)
    page = (tmp_path / "report.html").read_text()
    assert "Differentially private release" in page and "no covariate" in page


def test_linear_lambda_uses_t_squared(tmp_path: Path) -> None:
    opts = GwasOptions(test=Test.LINEAR)
    res, info = _run(opts, quantitative=True)
    rep = write_report(tmp_path, res, opts, info)
    t = res.linear.t  # type: ignore[union-attr]
    t2 = t[np.isfinite(t)] ** 2
    assert rep["lambda_gc"]["value"] == pytest.approx(np.median(t2) / 0.456, rel=1e-12)
    assert "BETA" in rep["top_hits"][0] and "t squared" in rep["lambda_gc"]["statistic"]


def test_plots_are_valid_png_and_html_is_self_contained(
    tmp_path: Path, assoc_run: tuple[GwasResult, RunInfo]
) -> None:
    mpimg = pytest.importorskip("matplotlib.image")
    res, info = assoc_run
    write_report(tmp_path, res, OPTIONS, info)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(FILES)
    for name in ("manhattan.png", "qq.png"):
        data = (tmp_path / name).read_bytes()
        assert data.startswith(PNG)
        img = mpimg.imread(tmp_path / name)
        assert img.ndim == 3 and img.shape[0] > 200 and img.shape[1] > 200
        assert float(img[..., :3].std()) > 0.01  # not a blank canvas
    page = (tmp_path / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 2
    assert page.count("<table>") >= 5
    for heading in ("Quality control", "Genomic control", "Top hits", "Parties", "Audit ledger"):
        assert f"<h2>{heading}" in page
    assert "rs_sep" in page and "http" not in page.replace("http-equiv", "")  # no external refs


def test_nothing_is_written_when_rendering_fails(
    tmp_path: Path, assoc_run: tuple[GwasResult, RunInfo], monkeypatch: pytest.MonkeyPatch
) -> None:
    res, info = assoc_run
    out = tmp_path / "out"

    def broken(*args: object, **kwargs: object) -> bytes:
        raise RuntimeError("disk of the plotting library is on fire")

    monkeypatch.setattr(report_mod, "qq_png", broken)
    with pytest.raises(RuntimeError, match="on fire"):
        write_report(out, res, OPTIONS, info)
    assert not out.exists()
    out.mkdir()
    (out / "report.json").write_text("old")
    with pytest.raises(RuntimeError):
        write_report(out, res, OPTIONS, info)
    assert [p.name for p in out.iterdir()] == ["report.json"]
    assert (out / "report.json").read_text() == "old"


def test_chromosomes_sort_as_geneticists_expect() -> None:
    chrom = np.array(["X", "10", "2", "1", "MT", "2", "Y", "22"])
    rank = chrom_rank(chrom)
    assert [c for _, c in sorted(zip(rank, chrom, strict=True))] == [
        "1", "2", "2", "10", "22", "X", "Y", "MT"
    ]  # fmt: skip


def test_plots_of_300k_variants_are_fast_and_skip_na() -> None:
    rng = np.random.default_rng(1)
    n = 300_000
    chrom = np.repeat(np.array([str(c) for c in range(1, 23)]), n // 22 + 1)[:n]
    bp = rng.integers(1, 10**8, n)
    p = rng.uniform(size=n)
    p[::1000] = np.nan
    p[:3] = [1e-30, 0.0, 1e-9]  # P = 0 (underflow) must not break the axes
    t0 = time.perf_counter()
    m = manhattan_png(chrom, bp, p, labels=[(0, "rsA")])
    q = qq_png([QqSeries("run", p, 1.0), QqSeries("baseline", p**1.1, 1.2)])
    elapsed = time.perf_counter() - t0
    assert m.startswith(PNG) and q.startswith(PNG)
    assert elapsed < 10.0, elapsed  # about 1.3 s here; generous for a loaded CI machine


def test_logistic_beta_option_reports_coefficients(
    tmp_path: Path, assoc_run: tuple[GwasResult, RunInfo]
) -> None:
    res, info = assoc_run
    base, _ = _run(GwasOptions(test=Test.LOGISTIC))
    opts = GwasOptions(test=Test.LOGISTIC, beta=True)
    rep = write_report(tmp_path, base, opts, info)
    h = rep["top_hits"][0]
    assert "BETA" in h and "OR" not in h and rep["options"]["beta"] is True
    i = list(base.variants.snp).index(h["SNP"])
    assert h["BETA"] == pytest.approx(base.logistic.beta[i])  # type: ignore[union-attr]


def test_ledger_shows_the_epsilon_of_dp_entries(
    tmp_path: Path, assoc_run: tuple[GwasResult, RunInfo]
) -> None:
    """DP reveals keep ε under ``entry["dp"]["epsilon"]`` (Context.reveal): the column shows it."""
    res, info = assoc_run
    dp_entry = {"party": "h2", "event": "reveal", "tag": "gwas.dp_release", "to": ["h1", "h2"],
                "dp": {"mechanism": "gwas top-k", "epsilon": 1.25, "delta": 0.0}}  # fmt: skip
    plain = {"party": "h1", "event": "reveal", "tag": "gwas.counts", "to": ["h1", "h2"]}
    assert report_mod.ledger_epsilon(dp_entry) == 1.25
    assert report_mod.ledger_epsilon(plain) is None
    assert report_mod.ledger_epsilon({"epsilon": 0.5}) == 0.5
    info = dataclasses.replace(info, ledger=[plain, dp_entry])
    write_report(tmp_path, res, OPTIONS, info)
    page = (tmp_path / "report.html").read_text()
    ledger = page[page.index("<h2>Audit ledger") :]
    assert "<td>gwas.dp_release</td><td>h1,h2</td><td>1.25</td>" in ledger
    assert "<td>gwas.counts</td><td>h1,h2</td><td>-</td>" in ledger
    # a DP release after the first 50 entries is still listed with its ε
    info = dataclasses.replace(info, ledger=[plain] * 60 + [dp_entry])
    write_report(tmp_path, res, OPTIONS, info)
    page = (tmp_path / "report.html").read_text()
    ledger = page[page.index("<h2>Audit ledger") :]
    assert "<td>gwas.dp_release</td><td>h1,h2</td><td>1.25</td>" in ledger
    assert "First 50 of 61 entries and every DP release" in ledger


def test_the_caller_names_the_run(tmp_path: Path, assoc_run: tuple[GwasResult, RunInfo]) -> None:
    res, info = assoc_run
    facts = RunInfo(
        sites=info.sites, n_aligned=info.n_aligned, absent=info.absent,
        party_stats=info.party_stats, stage_seconds=info.stage_seconds, ledger=info.ledger,
        transport=info.transport,
    )  # fmt: skip
    write_outputs(tmp_path / "named", res, OPTIONS, facts, baseline=("before", res), label="after")
    page = (tmp_path / "named" / "report.html").read_text()
    assert "Top hits (after)" in page and "Top hits (before)" in page
    assert "this run" not in page
    write_outputs(tmp_path / "default", res, OPTIONS, facts)
    assert "Top hits (this run)" in (tmp_path / "default" / "report.html").read_text()

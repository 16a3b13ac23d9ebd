"""The federated GWAS report: ``report.json``, ``report.html``, ``manhattan.png``, ``qq.png``.

:func:`write_report` renders everything in memory first (a failure writes nothing), then writes
each file atomically (temporary file + rename). ``report.html`` is self-contained (the plots are
embedded as base64 PNG).

Genomic control. ``lambda_gc`` is ``median(chi-square) / 0.456`` over the tested variants with
a statistic (NA excluded), the chi-square being the test's 1-df statistic as PLINK 1.9's
``--adjust`` takes it: CHISQ for ``--assoc`` and the trend test, ``STAT^2`` for ``--logistic``
(Wald z) and ``--linear`` (t; PLINK 1.9 squares the t statistic too). PLINK prints
``max(lambda, 1)`` (it never deflates); the report gives both (``value`` and ``plink``).

Reveals: nothing beyond its inputs -- the pooled results every site already holds, the run's
counters and the audit ledger.
"""

from __future__ import annotations

import base64
import html
import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from veil.apps.report import html_page, table_html
from veil.gwas.dp_release import DpRelease
from veil.gwas.outputs import RunInfo
from veil.gwas.plots import GENOME_WIDE, SUGGESTIVE, QqSeries, manhattan_png, qq_png
from veil.gwas.session import GwasOptions, GwasResult, Test
from veil.runtime.node import write_atomic

F64 = npt.NDArray[np.float64]
_PLINK_FLAG = {
    Test.ASSOC: "--assoc",
    Test.TREND: "--model trend-only",
    Test.LOGISTIC: "--logistic",
    Test.LINEAR: "--linear",
}
_LAMBDA_STAT = {
    Test.ASSOC: "CHISQ (allelic test, 1 df)",
    Test.TREND: "CHISQ (Cochran-Armitage trend, 1 df)",
    Test.LOGISTIC: "STAT^2 (Wald z squared, 1 df)",
    Test.LINEAR: "STAT^2 (t squared, as PLINK 1.9 --adjust)",
}
FILES = ("report.json", "report.html", "manhattan.png", "qq.png")


def _num(x: Any) -> Any:
    """A JSON-safe scalar: NaN/inf become None, numpy scalars Python ones."""
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _plain(v: Any) -> Any:
    if isinstance(v, Mapping):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, np.ndarray):
        return [_plain(x) for x in v.tolist()]
    return _num(v)


def _columns(result: GwasResult, beta: bool = False) -> tuple[F64, F64, dict[str, F64], F64 | None]:
    """(STAT, P, effect columns, NMISS) of the tested variants (``beta``: BETA, not OR)."""
    if result.assoc is not None:
        a = result.assoc
        return a.chisq, a.p, {"OR": a.odds_ratio, "F_A": a.f_a, "F_U": a.f_u}, None
    if result.trend is not None:
        return result.trend.chisq, result.trend.p, {}, None
    if result.logistic is not None:
        lr = result.logistic
        effect = {"BETA": lr.beta} if beta else {"OR": lr.odds_ratio}
        return lr.z, lr.p, {**effect, "SE": lr.se}, lr.nobs
    lin = result.linear
    assert lin is not None
    return lin.t, lin.p, {"BETA": lin.beta, "SE": lin.se}, lin.nobs


def top_hits(result: GwasResult, top: int = 10, beta: bool = False) -> list[dict[str, Any]]:
    """The ``top`` variants with the smallest P (NA excluded): CHR SNP BP A1 A2 STAT P, effect.

    Ties in P (e.g. underflow to 0) are ordered by decreasing ``|STAT|``; ``beta`` reports
    ``--logistic`` coefficients instead of odds ratios.
    """
    stat, p, effects, nmiss = _columns(result, beta)
    finite = np.flatnonzero(np.isfinite(p))
    order = finite[np.lexsort((-np.abs(np.nan_to_num(stat[finite])), p[finite]))][: max(top, 0)]
    vt = result.variants
    rows = []
    for i in order:
        row: dict[str, Any] = {
            "CHR": str(vt.chrom[i]),
            "SNP": str(vt.snp[i]),
            "BP": int(vt.bp[i]),
            "A1": str(vt.a1[i]),
            "A2": str(vt.a2[i]),
        }
        if nmiss is not None:
            row["NMISS"] = int(nmiss[i])
        row["STAT"] = _num(float(stat[i]))
        row["P"] = _num(float(p[i]))
        for name, col in effects.items():
            row[name] = _num(float(col[i]))
        rows.append(row)
    return rows


def genomic_control_summary(result: GwasResult) -> dict[str, Any]:
    """lambda (unclamped and as PLINK 1.9 prints it), the statistic used, median, count."""
    chisq = result.statistic()
    finite = chisq[np.isfinite(chisq)]
    lam = result.lambda_gc()
    return {
        "value": _num(lam),
        "plink": _num(max(lam, 1.0)) if math.isfinite(lam) else None,
        "statistic": _LAMBDA_STAT[result.test],
        "median_chisq": _num(float(np.median(finite))) if finite.size else None,
        "n": int(finite.size),
    }


def qc_counts(result: GwasResult, info: RunInfo) -> dict[str, Any]:
    """Variants and subjects at each QC step."""
    qc = result.qc
    _, p, _, _ = _columns(result)
    removed = {f: int(qc.removed[f]) for f in ("geno", "hwe", "maf") if f in qc.removed}
    return {
        "variants": {
            "aligned": int(info.n_aligned),
            "absent_per_site": {s: int(n) for s, n in info.absent.items()},
            "after_alignment": int(qc.keep.shape[0]),
            "removed": removed,
            "monomorphic": int(np.count_nonzero(qc.maf == 0.0)),
            "tested": len(result.variants),
            "na": int(np.count_nonzero(~np.isfinite(p))),
            "genome_wide": int(np.count_nonzero(p < GENOME_WIDE)),
            "suggestive": int(np.count_nonzero(p < SUGGESTIVE)),
        },
        "subjects": {
            "analysed": int(result.n_subjects),
            "removed_mind": info.mind_removed,
        },
    }


def build_report(
    result: GwasResult,
    options: GwasOptions,
    info: RunInfo,
    *,
    baseline: tuple[str, GwasResult] | None = None,
    dp: DpRelease | None = None,
    top: int = 10,
) -> dict[str, Any]:
    """The content of ``report.json`` (plain JSON types; NaN written as null)."""
    q = options.qc
    report: dict[str, Any] = {
        "test": result.test.value,
        "plink_flag": _PLINK_FLAG[result.test],
        "options": {
            "maf": q.maf,
            "geno": q.geno,
            "hwe": q.hwe,
            "mind": q.mind,
            "logistic_tol": options.logistic_tol,
            "beta": options.beta,
        },
        "sites": list(info.sites),
        "transport": info.transport,
        "qc": qc_counts(result, info),
        "lambda_gc": genomic_control_summary(result),
        "top_hits": top_hits(result, top, options.beta),
        "aggregation_rounds": int(result.rounds),
        "parties": {p: dict(v) for p, v in info.party_stats.items()},
        "stages": dict(info.stage_seconds),
        "ledger": [dict(e) for e in info.ledger],
        "dp_release": dp.to_json() if dp is not None else None,
        "baseline": None,
    }
    if baseline is not None:
        label, base = baseline
        report["baseline"] = {
            "label": label,
            "test": base.test.value,
            "lambda_gc": genomic_control_summary(base),
            "top_hits": top_hits(base, top, options.beta),
            "tested": len(base.variants),
        }
    out: dict[str, Any] = _plain(report)
    return out


def write_report(
    out_dir: Path,
    result: GwasResult,
    options: GwasOptions,
    info: RunInfo,
    *,
    baseline: tuple[str, GwasResult] | None = None,
    dp: DpRelease | None = None,
    top: int = 10,
    title: str = "veil — federated GWAS",
    label: str = "this run",
) -> dict[str, Any]:
    """Write ``report.json``, ``report.html``, ``manhattan.png`` and ``qq.png`` into ``out_dir``.

    Everything is rendered before the first byte is written; each file is then written
    atomically. Returns the ``report.json`` content.
    """
    report = build_report(result, options, info, baseline=baseline, dp=dp, top=top)
    _, p, _, _ = _columns(result)
    vt = result.variants
    index = {str(s): i for i, s in enumerate(vt.snp)}
    labels = [(index[h["SNP"]], h["SNP"]) for h in report["top_hits"][:5]
              if h["P"] is not None and h["P"] < SUGGESTIVE]  # fmt: skip
    manhattan = manhattan_png(vt.chrom, vt.bp, p, labels=labels,
                              title=f"{_PLINK_FLAG[result.test]} ({label})")  # fmt: skip
    series = [QqSeries(label, p, result.lambda_gc())]
    if baseline is not None:
        series.append(QqSeries(baseline[0], _columns(baseline[1])[1], baseline[1].lambda_gc()))
    qq = qq_png(series, title=f"QQ plot, {_PLINK_FLAG[result.test]}")
    page = _html(report, title, label, manhattan, qq).encode()
    payload = json.dumps(report, indent=2, allow_nan=False).encode()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, data in zip(FILES, (payload, page, manhattan, qq), strict=True):
        write_atomic(out_dir / name, data)
    return report


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _hits_table(hits: Sequence[Mapping[str, Any]], test: str) -> str:
    if not hits:
        return "<p>No variant has a P value.</p>"
    keys = list(hits[0])
    stat = "CHISQ" if test in (Test.ASSOC.value, Test.TREND.value) else "STAT"
    header = [stat if k == "STAT" else k for k in keys]
    # positions as PLINK writes them (no thousands separators)
    rows = [[str(h[k]) if k == "BP" else h[k] for k in keys] for h in hits]
    return table_html(header, rows)


def _lambda_row(name: str, lam: Mapping[str, Any]) -> list[Any]:
    return [name, lam["value"], lam["plink"], lam["median_chisq"], lam["n"], lam["statistic"]]


def _html(report: Mapping[str, Any], title: str, label: str, manhattan: bytes, qq: bytes) -> str:
    v = report["qc"]["variants"]
    subj = report["qc"]["subjects"]
    opts = report["options"]
    flag = report["plink_flag"]
    lam = report["lambda_gc"]
    summary = (
        f"<p><b>{html.escape(flag)}</b> on {subj['analysed']:,} subjects from "
        f"{len(report['sites'])} sites ({html.escape(', '.join(report['sites']))}), "
        f"{v['tested']:,} variants tested; genomic-control λ = "
        f"{'NA' if lam['value'] is None else format(lam['value'], '.4f')}; "
        f"{v['genome_wide']} variants at P &lt; 5e-8, {v['suggestive']} at P &lt; 1e-5. "
        f"Transport: {html.escape(report['transport'])}.</p><p class=note>Genotypes and "
        "phenotypes never left their site: every statistic here is computed from sums over all "
        "sites revealed by secure aggregation, and equals PLINK 1.9 on the pooled data.</p>"
    )
    qc_rows: list[list[Any]] = [["variants aligned across sites", v["aligned"]]]
    for site, n in v["absent_per_site"].items():
        qc_rows.append([f"absent at {site}", n])
    qc_rows.append(["entering QC", v["after_alignment"]])
    thresholds = {"geno": opts["geno"], "hwe": opts["hwe"], "maf": opts["maf"]}
    for f, n in v["removed"].items():
        qc_rows.append([f"removed by --{f} {thresholds[f]}", n])
    qc_rows += [
        ["monomorphic (pooled)", v["monomorphic"]],
        ["tested", v["tested"]],
        ["tested with NA statistic", v["na"]],
        ["subjects analysed", subj["analysed"]],
    ]
    if subj["removed_mind"] is not None:
        qc_rows.append([f"subjects removed by --mind {opts['mind']}", subj["removed_mind"]])
    lam_rows = [_lambda_row(label, lam)]
    base = report["baseline"]
    if base is not None:
        lam_rows.append(_lambda_row(base["label"], base["lambda_gc"]))
    sections: list[tuple[str, str]] = [
        ("Summary", summary),
        ("Quality control (PLINK 1.9 semantics)", table_html(["step", "count"], qc_rows)),
        ("Genomic control", table_html(
            ["analysis", "λ", "λ as PLINK prints (≥ 1)", "median χ²", "tests", "statistic"],
            lam_rows) + "<p class=note>λ = median χ² / 0.456 over tested variants "
            "(PLINK --adjust). λ well above 1 signals population stratification or cryptic "
            "relatedness; adjusting for ancestry should bring it back towards 1.</p>"),
        ("Manhattan plot", _img(manhattan, "Manhattan plot")
         + "<p class=note>Dashed: genome-wide significance 5e-8; dotted: suggestive 1e-5.</p>"),
        ("QQ plot", _img(qq, "QQ plot")),
        (f"Top hits ({label})", _hits_table(report["top_hits"], report["test"])
         + "<p class=note>A1 is the minor allele of the pooled counts; OR/BETA are per A1 "
         "copy. NA statistics are excluded.</p>"),
    ]  # fmt: skip
    if base is not None:
        sections.append(
            (f"Top hits ({base['label']})", _hits_table(base["top_hits"], base["test"]))
        )
    if report["dp_release"] is not None:
        sections.append(("Differentially private release", _dp_html(report["dp_release"])))
    parties = report["parties"]
    sections += [
        ("Parties", table_html(
            ["party", "bytes sent", "messages", "seconds"],
            [[p, s.get("bytes_sent"), s.get("messages"), s.get("seconds")]
             for p, s in parties.items()])),
        ("Stages (seconds)", table_html(["stage", "seconds"], list(report["stages"].items()))),
        ("Audit ledger", _ledger_html(report["ledger"])),
    ]  # fmt: skip
    return html_page(title, sections)


def _dp_html(dp: Mapping[str, Any]) -> str:
    head = (
        f"<p>ε = {dp['epsilon']:.4g} (pure DP; {dp['epsilon_selection']:.4g} to choose the "
        f"{dp['k']} variants, {dp['epsilon_release']:.4g} for their χ²), sensitivity Δ = "
        f"{dp['sensitivity']:.4g} per subject, {dp['n_candidates']:,} candidates, noise from "
        f"{html.escape(dp['noise'])}.</p><p class=note>{html.escape(dp['mechanism'])}. "
        f"Neighbouring studies: {html.escape(dp['neighbouring'])}. Publish this table rather "
        "than the exact statistics to limit membership inference (Homer et al. 2008).</p>"
    )
    rows = [[h["CHR"], h["SNP"], str(h["BP"]), h["CHISQ"], h["P"]] for h in dp["hits"]]
    return head + table_html(["CHR", "SNP", "BP", "noisy CHISQ", "P (from noisy CHISQ)"], rows)


def ledger_epsilon(entry: Mapping[str, Any]) -> float | None:
    """The ε a ledger entry spent: DP reveals keep it under ``entry["dp"]["epsilon"]``
    (:meth:`veil.runtime.context.Context.reveal`); a top-level ``epsilon`` is accepted too."""
    dp = entry.get("dp")
    if isinstance(dp, Mapping) and dp.get("epsilon") is not None:
        return float(dp["epsilon"])
    eps = entry.get("epsilon")
    return float(eps) if isinstance(eps, int | float) else None


def _ledger_html(ledger: Sequence[Mapping[str, Any]]) -> str:
    if not ledger:
        return "<p>No entries.</p>"
    counts = Counter(str(e.get("event", "?")) for e in ledger)
    rows = [[event, n] for event, n in sorted(counts.items())]
    # the first 50 entries, and every later one that spent privacy budget (DP releases)
    shown = [*ledger[:50], *(e for e in ledger[50:] if ledger_epsilon(e) is not None)]
    detail = [
        [e.get("party"), e.get("event"), e.get("tag", e.get("query", "-")),
         ",".join(map(str, e.get("to", []))) or "-", _num(ledger_epsilon(e))]
        for e in shown
    ]  # fmt: skip
    more = (
        f"<p class=note>First 50 of {len(ledger)} entries and every DP release; all in "
        "report.json.</p>"
    )
    return (
        table_html(["event", "entries"], rows)
        + table_html(["recorded by", "event", "tag / query", "to", "ε"], detail)
        + (more if len(ledger) > 50 else "")
    )


__all__ = [
    "FILES",
    "RunInfo",
    "build_report",
    "genomic_control_summary",
    "ledger_epsilon",
    "qc_counts",
    "top_hits",
    "write_report",
]

"""Report of the joint credit-risk job: ``report.json`` and ``report.html`` (ROC, KS, tables)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from veil.apps.report import figure_png, pyplot, table_html, write_html, write_json

#: How the report names each model family's joint model.
_TITLES = {"joint_secure": "logistic regression", "joint_secureboost": "SecureBoost"}


def write(
    out: Path,
    report: dict[str, Any],
    curves: dict[str, tuple[np.ndarray, np.ndarray]],
    y_test: np.ndarray,
    scores: dict[str, np.ndarray],
) -> None:
    """Write ``out/report.json`` and ``out/report.html``; ``scores`` are the test scores of
    each joint model (one KS plot each)."""
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "report.json", report)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    for name, (fpr, tpr) in curves.items():
        ax.plot(fpr, tpr, label=f"{name} (AUC {report['models'][name]['auc']:.3f})")
    ax.plot([0, 1], [0, 1], color="#999", lw=0.8, ls="--")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (test rows)")
    ax.legend(loc="lower right", fontsize=8)
    images = [figure_png(fig)]
    for name, s in scores.items():
        images.append(_ks_plot(plt, y_test, s, _TITLES.get(name, name)))
    models = [[m, v["auc"], v["ks"]] for m, v in report["models"].items()]
    stages = [[s, v] for s, v in report["seconds"].items()]
    traffic = [[p, report["bytes_sent"][p], report["messages"][p]] for p in report["bytes_sent"]]
    reveals = [_ledger_row(e) for e in report["ledger"]]
    how = []
    if "joint_secure" in report["models"]:
        how.append(f"the joint logistic regression is trained under MPC ({report['protocol']})"
                   if report["engine"] == "mpc" else
                   "the joint logistic regression is trained in a simulated TEE")  # fmt: skip
    if "joint_secureboost" in report["models"]:
        p = report["secureboost"]["params"]
        how.append(f"SecureBoost ({p['n_estimators']} trees, depth {p['max_depth']}, learning "
                   f"rate {p['learning_rate']}, {p['max_bin']} bins, HE {p['heu_scheme'].upper()}-"
                   f"{p['key_bits']}) "
                   "on gradients encrypted under the bank's key; its xgboost baselines use the "
                   "same hyper-parameters")  # fmt: skip
    imgs = " ".join(f'<img src="{i}">' for i in images)
    write_html(out / "report.html", "veil — joint credit-risk model", [
        ("Models", table_html(["model", "AUC", "KS"], models)
         + f"<p>{imgs}</p><p class=note>"
         f"{report['n_intersection']} customers known to every party (PSI); "
         f"{report['n_test']} held out. The bank-only models use the bank's own features; "
         + "; ".join(how) + ". The pooled plaintext models are checks computed on this "
         "machine only.</p>"),
        ("Stages (seconds)", table_html(["stage", "seconds"], stages)),
        ("Traffic", table_html(["party", "bytes sent", "messages sent"], traffic)),
        ("Audit ledger: every reveal and protocol disclosure", table_html(
            ["recorded by", "event", "tag", "from", "to", "shape / assurance"], reveals)),
    ])  # fmt: skip


def _ks_plot(plt: Any, y_test: np.ndarray, scores: np.ndarray, title: str) -> str:
    """Cumulative score distributions of defaulters and good payers, with the KS gap."""
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    grid = np.linspace(0, 1, 201)
    bad, good = np.sort(scores[y_test > 0.5]), np.sort(scores[y_test <= 0.5])
    cb = np.searchsorted(bad, grid, side="right") / max(len(bad), 1)
    cg = np.searchsorted(good, grid, side="right") / max(len(good), 1)
    ax.plot(grid, cb, label="defaulters")
    ax.plot(grid, cg, label="good payers")
    k = int(np.argmax(np.abs(cg - cb)))
    ax.vlines(grid[k], cb[k], cg[k], colors="k", label=f"KS {abs(cg[k] - cb[k]):.3f}")
    ax.set(xlabel=f"joint {title} score", ylabel="cumulative share", title="KS (test rows)")
    ax.legend(fontsize=8)
    png: str = figure_png(fig)
    return png


def _ledger_row(e: dict[str, Any]) -> list[Any]:
    """One ledger entry as a table row (reveals, moves, DP releases, TEE job entries and
    SecureBoost's protocol disclosures)."""
    detail = e.get("value", {}).get("shape") if isinstance(e.get("value"), dict) else None
    if e["event"].startswith("tee_"):
        detail = e.get("assurance") or ("simulated" if e.get("simulated") else e.get("platform"))
    if e["event"].startswith("disclosure"):
        detail = e.get("what")
    return [e.get("party"), e["event"], e.get("tag", "-"), e.get("from") or "device",
            ",".join(e.get("to", [])) or "-", str(detail)]  # fmt: skip


def print_summary(console: Any, report: dict[str, Any]) -> None:
    """Models' AUC/KS on the console."""
    from rich.table import Table

    table = Table(title=f"test rows: {report['n_test']} of {report['n_intersection']} shared")
    for col in ("model", "AUC", "KS"):
        table.add_column(col)
    for name, m in report["models"].items():
        table.add_row(name, f"{m['auc']:.4f}", f"{m['ks']:.4f}")
    console.print(table)

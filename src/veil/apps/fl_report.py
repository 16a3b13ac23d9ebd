"""Report of the federated credit job: ``report.json`` and ``report.html`` with curves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from veil.apps.report import figure_png, pyplot, table_html, write_html, write_json


def _model_rows(report: dict[str, Any]) -> list[list[Any]]:
    rows = []
    for name, m in report["models"].items():
        if name == "local":
            continue
        rows.append([name, m.get("auc"), m.get("accuracy"), m.get("loss"), m.get("n")])
    for bank, m in report["models"]["local"].items():
        rows.append([f"{bank} alone", m.get("auc"), m.get("accuracy"), m.get("loss"), m.get("n")])
    return rows


def _mlp_section(report: dict[str, Any]) -> list[tuple[str, str]]:
    if "mlp" not in report:
        return []
    rows = _model_rows({"models": report["mlp"]["models"]})
    return [("The same with a small MLP (16 hidden units)",
             table_html(["model", "AUC", "accuracy", "log loss", "rows"], rows)
             + f'<p><a href="{report["mlp"]["report"]}">its report</a></p>')]  # fmt: skip


def write(out: Path, report: dict[str, Any]) -> None:
    """Write ``out/report.json`` and ``out/report.html``."""
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "report.json", report)
    plt = pyplot()
    hist = report["history"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    rounds = [h["round"] for h in hist]
    axes[0].plot(rounds, [h["val_before_round"].get("auc") for h in hist], marker="o")
    axes[0].set(title="held-out AUC of the global model", xlabel="round (model before it)")
    axes[1].plot(rounds, [h["val_before_round"].get("loss") for h in hist], marker="o")
    axes[1].set(title="held-out loss", xlabel="round (model before it)")
    curves = figure_png(fig)
    fig, ax = plt.subplots(figsize=(8, 3.6))
    rows = _model_rows(report)
    aucs = [r[1] or 0.0 for r in rows]
    bars_ = ax.barh([r[0] for r in rows], aucs, color="#4a7ab5")
    ax.bar_label(bars_, fmt="%.4f", padding=3, fontsize=8)
    ax.set(xlim=(max(0.0, min(aucs) - 0.05), min(1.0, max(aucs) + 0.03)),
           title="AUC on every bank's held-out rows")  # fmt: skip
    bars = figure_png(fig)
    traffic = [[p, report["bytes_sent"][p], report["messages"][p]] for p in report["bytes_sent"]]
    write_html(out / "report.html", "veil — federated credit-risk model", [
        ("Models", table_html(["model", "AUC", "accuracy", "log loss", "rows"], rows)
         + f'<img src="{bars}"><p class=note>Every model is evaluated on the union of the banks\''
         " held-out rows. Each bank alone and pooled are checks computed from all files on this"
         " machine; the federated model never saw another bank's rows.</p>"),
        *_mlp_section(report),
        ("Training", f'<img src="{curves}">' + (
            f"<p>Client-level differential privacy: ε = {report['epsilon']:.3g}, "
            f"δ = {report['delta']:g} spent by the run (per-round ε in report.json).</p>"
            if report.get("epsilon") is not None else "<p>No differential privacy.</p>")),
        ("Traffic", table_html(["party", "bytes sent", "messages sent"], traffic)),
        ("Audit ledger", f"<p>{len(report['ledger'])} reveals recorded; see report.json.</p>"),
    ])  # fmt: skip


def print_summary(console: Any, report: dict[str, Any]) -> None:
    """A table of the models' AUC on the console."""
    from rich.table import Table

    table = Table(title="AUC on every bank's held-out rows")
    for col in ("model", "AUC", "accuracy"):
        table.add_column(col)
    for name, auc, acc, _, _ in _model_rows(report):
        table.add_row(name, f"{auc:.4f}" if auc is not None else "-", f"{acc:.4f}")
    console.print(table)

"""Writing a run's outputs: ``results.tsv`` and the report, all or nothing."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from veil.errors import ConfigError
from veil.gwas.results import write_results
from veil.gwas.session import GwasOptions, GwasResult


@dataclass(frozen=True)
class RunInfo:
    """What the run itself measured (not part of the statistics).

    Attributes
    ----------
    sites:
        Site names, in input order.
    n_aligned:
        Variants aligned across sites (before QC).
    absent:
        Per site, the number of aligned variants it lacks.
    party_stats:
        Per party: ``bytes_sent``, ``messages``, ``seconds``.
    stage_seconds:
        Wall seconds per stage (e.g. read, align, qc+test, report).
    ledger:
        The audit ledger entries (plain JSON dicts).
    transport:
        ``memory`` or ``grpc``.
    mind_removed:
        Subjects removed by ``--mind`` over all sites (None: not known / not asked).
    """

    sites: tuple[str, ...]
    n_aligned: int
    absent: Mapping[str, int]
    party_stats: Mapping[str, Mapping[str, float]]
    stage_seconds: Mapping[str, float]
    ledger: Sequence[Mapping[str, Any]]
    transport: str
    mind_removed: int | None = None


def write_outputs(
    out: Path,
    result: GwasResult,
    options: GwasOptions,
    facts: RunInfo,
    *,
    baseline: tuple[str, GwasResult] | None = None,
    dp: Any = None,
    top: int = 10,
    label: str = "this run",
) -> dict[str, Any]:
    """Write ``results.tsv`` and the report (``report.json``, ``report.html``, plots) into
    ``out`` (``label`` names this run in the plots and tables, e.g. "with the ancestry
    covariate", next to ``baseline``'s label): all files are produced in a staging folder next
    to ``out`` and moved in only when every one succeeded, so a failure leaves nothing
    half-written. Returns the report dict."""
    from veil.gwas.report import write_report  # matplotlib: only where outputs are written

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} exists and is not a folder")
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        write_results(stage / "results.tsv", result, beta=options.beta)
        report: dict[str, Any] = write_report(
            stage, result, options, facts, baseline=baseline, dp=dp, top=top, label=label
        )
        out.mkdir(exist_ok=True)
        for f in sorted(stage.iterdir()):
            os.replace(f, out / f.name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return report


__all__ = ["RunInfo", "write_outputs"]

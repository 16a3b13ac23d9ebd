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
class RunFacts:
    """What the report says about a run besides the result (mirrors ``report.RunInfo``)."""

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
    facts: RunFacts,
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
    from veil.gwas.report import RunInfo, write_report

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} exists and is not a folder")
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        write_results(stage / "results.tsv", result, beta=options.beta)
        info = RunInfo(
            sites=tuple(facts.sites),
            n_aligned=facts.n_aligned,
            absent=dict(facts.absent),
            party_stats={k: dict(v) for k, v in facts.party_stats.items()},
            stage_seconds=dict(facts.stage_seconds),
            ledger=list(facts.ledger),
            transport=facts.transport,
            mind_removed=facts.mind_removed,
        )
        report: dict[str, Any] = write_report(
            stage, result, options, info, baseline=baseline, dp=dp, top=top, label=label
        )
        out.mkdir(exist_ok=True)
        for f in sorted(stage.iterdir()):
            os.replace(f, out / f.name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return report


__all__ = ["RunFacts", "write_outputs"]

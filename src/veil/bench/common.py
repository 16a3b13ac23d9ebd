"""Shared pieces of every benchmark: the JSON-line record and access to the anchors' inputs.

A record is ``{"bench", "impl", "n", "seconds", "bytes", "rounds", "max_abs_err", ...extra}``,
the same contract as ``../shared/anchors`` so that ``compare.py`` reads both side by side. veil's
``impl`` names start with ``veil``.

Inputs come from the anchors' ``inputs.py`` (numpy-only) so both sides compute on bit-identical
data; its folder is ``$VEIL_ANCHORS_DIR`` or ``<repo>/../shared/anchors``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

from veil.errors import ConfigError


def record(
    bench: str,
    impl: str,
    n: int,
    seconds: float,
    *,
    bytes_: int | None = None,
    rounds: int | None = None,
    max_abs_err: float | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Build one result record with the contract keys first, then ``extra``."""
    rec: dict[str, Any] = {
        "bench": bench,
        "impl": impl,
        "n": int(n),
        "seconds": seconds,
        "bytes": bytes_,
        "rounds": rounds,
        "max_abs_err": max_abs_err,
    }
    rec.update(extra)
    rec.setdefault("threads", os.cpu_count())
    rec.setdefault("python", platform.python_version())
    try:
        rec.setdefault("loadavg", Path("/proc/loadavg").read_text().split()[0])
    except OSError:
        rec.setdefault("loadavg", None)
    rec.setdefault("utc", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    return rec


def emit(rec: dict[str, Any], out: TextIO | None = None) -> None:
    """Print ``rec`` as one JSON line and flush."""
    stream = out or sys.stdout
    stream.write(json.dumps(rec) + "\n")
    stream.flush()


def median(xs: list[float]) -> float:
    """Median of ``xs`` (benchmarks report medians, never a single time)."""
    return float(statistics.median(xs))


def anchors_dir() -> Path:
    """Folder of the competitor anchors (``$VEIL_ANCHORS_DIR`` or ``<repo>/../shared/anchors``)."""
    env = os.environ.get("VEIL_ANCHORS_DIR")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    for parent in here.parents:
        cand = parent.parent / "shared" / "anchors"
        if (parent / "pyproject.toml").exists() and cand.is_dir():
            return cand
    return Path.cwd().parent / "shared" / "anchors"


def anchor_inputs() -> ModuleType:
    """Import the anchors' ``inputs.py`` (bit-identical benchmark inputs)."""
    path = anchors_dir() / "inputs.py"
    if not path.exists():
        raise ConfigError(
            f"benchmark inputs not found at {path}; set VEIL_ANCHORS_DIR to the folder holding "
            "the anchors' inputs.py"
        )
    spec = importlib.util.spec_from_file_location("veil_anchor_inputs", path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"cannot import {path}")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod

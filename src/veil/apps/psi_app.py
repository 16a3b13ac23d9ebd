"""``veil psi``: align several parties' files on a key column by private set intersection.

Every party runs :func:`psi_job` with its own input file; each writes ``<out>/<party>.csv`` (its
own rows of the common ids, all its columns, in the common order) atomically, and the runner
writes ``<out>/summary.json`` (sizes, seconds and bytes per party). What each party learns is in
``docs/psi.md``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from veil.errors import ConfigError
from veil.psi import PsiOptions, align_file
from veil.psi.options import Backend
from veil.runtime.context import Context
from veil.runtime.node import write_atomic
from veil.runtime.simulate import simulate_detailed


def psi_job(
    ctx: Context,
    parties: list[str],
    input: str,
    key: str,
    out: str,
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """SPMD job: align this party's ``input`` on ``key``; ``parties[0]`` is the leader."""
    fields = dict(options or {})
    if "backend" in fields:  # travels as its value (enums cannot go on the wire)
        fields["backend"] = Backend(fields["backend"])
    opts = PsiOptions(**fields)
    folder = Path(out)  # created by the atomic write of the aligned file: not before PSI succeeds
    res = align_file(ctx.link, ctx.next_key("psi"), ctx.party, parties, Path(input), key,
                     folder / f"{ctx.party}.csv", opts)  # fmt: skip
    body = dataclasses.asdict(res)
    return {k: str(v) if isinstance(v, Path) else v for k, v in body.items()}


def run(
    inputs: Mapping[str, Path],
    key: str,
    out: Path,
    *,
    options: PsiOptions | None = None,
    transport: Literal["memory", "grpc"] = "grpc",
) -> dict[str, Any]:
    """Run every party locally; return and write the summary."""
    parties = list(inputs)
    if len(parties) < 2:
        raise ConfigError("PSI needs at least two parties: --input NAME=FILE (repeat)")
    opts = options or PsiOptions()
    opt_dict = {f.name: getattr(opts, f.name) for f in dataclasses.fields(opts)}
    opt_dict["backend"] = opts.backend.value  # plain values only: the parties may be processes
    params = {p: {"parties": parties, "input": str(inputs[p]), "key": key, "out": str(out),
                  "options": opt_dict} for p in parties}  # fmt: skip
    t = time.perf_counter()
    res = simulate_detailed(psi_job, parties, transport=transport, params=params,
                            per_party_params=True)  # fmt: skip
    summary = {
        "parties": parties, "key": key, "transport": transport,
        "n_intersection": res.results[parties[0]]["n_intersection"],
        "seconds": time.perf_counter() - t,
        "per_party": res.results,
        "bytes_sent": {p: s["bytes_sent"] for p, s in res.stats.items()},
    }  # fmt: skip
    write_atomic(out / "summary.json", json.dumps(summary, indent=2).encode())
    return summary

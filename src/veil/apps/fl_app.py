"""Horizontal federated credit-risk modelling: ``veil fl`` and ``veil demo fl``.

Several banks hold the same kind of loan record for *different* customers. A hub coordinates;
each bank trains on its own rows; the hub sees only securely aggregated sums (SecAgg+). The job
(:func:`fl_job`) agrees the schema, computes pooled preprocessing statistics under secure
aggregation (:mod:`veil.fl.tabular`), trains a logistic regression or an MLP with FedAvg
(:mod:`veil.fl.loop`) and evaluates it on the held-out rows of every bank (federated
evaluation: only pooled counts are revealed).

The runner (:func:`run`) also trains, as **checks computed in this process from all files**
(possible only because every file is on this machine), each bank alone and one model on the
pooled rows, with the same preprocessing, splits and training budget, and evaluates every model
on the union of the banks' held-out rows.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from veil.errors import ConfigError
from veil.fl.aggregation import Aggregation
from veil.fl.evaluation import eval_metrics, eval_stats, stats_size, task_of
from veil.fl.loop import ClientData, FLConfig, federated_fit
from veil.fl.models import LocalTraining, LogisticModel, MLPModel, Model
from veil.fl.private import DPConfig
from veil.fl.tabular import TableSpec, federated_prepare, pooled_prepare, read_table
from veil.runtime.context import Context
from veil.runtime.ledger import merge_ledgers
from veil.runtime.simulate import simulate_detailed

HUB = "hub"
BINS = 1000


@dataclass(frozen=True)
class FLJobOptions:
    """What every party of the job agrees on (passed identically to all)."""

    label: str
    positive: str | None = None
    model: Literal["logistic", "mlp"] = "logistic"
    rounds: int = 20
    epochs: int = 1
    batch_size: int = 64
    lr: float = 0.05
    hidden: int = 16
    aggregation: str = "secure"
    drop: tuple[str, ...] = ()
    dp_epsilon: float | None = None
    dp_delta: float = 1e-5
    clip_norm: float = 1.0

    def spec(self) -> TableSpec:
        return TableSpec(label=self.label, positive=self.positive, drop=self.drop)

    def dp(self) -> DPConfig | None:
        if self.dp_epsilon is None:
            return None
        return DPConfig(epsilon=self.dp_epsilon, delta=self.dp_delta, clip_norm=self.clip_norm)

    def local(self) -> LocalTraining:
        return LocalTraining(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr)

    def make_model(self, n_features: int) -> Model:
        if self.model == "logistic":
            return LogisticModel(n_features)
        if self.model == "mlp":
            return MLPModel(n_features, (self.hidden,), 1)
        raise ConfigError(f"unknown model {self.model!r}: use logistic or mlp")


def fl_job(ctx: Context, banks: list[str], options: dict[str, Any], csv: str | None = None) -> Any:
    """SPMD job: the hub passes ``csv=None``; each bank its own file."""
    fields: dict[str, Any] = dict(options)
    fields["drop"] = tuple(fields.get("drop", ()))
    opts = FLJobOptions(**fields)
    table = read_table(csv, ctx.party, opts.spec()) if ctx.party != HUB and csv else None
    if ctx.party != HUB and table is None:
        raise ConfigError(f"bank {ctx.party!r} was given no input file")
    prep = federated_prepare(ctx, server=HUB, clients=banks, table=table, spec=opts.spec(),
                             aggregation=Aggregation(opts.aggregation))  # fmt: skip
    model = opts.make_model(len(prep.features))
    cfg = FLConfig(rounds=opts.rounds, local=opts.local(), dp=opts.dp(),
                   aggregation=Aggregation(opts.aggregation), eval_bins=BINS)  # fmt: skip
    res = federated_fit(ctx, model, server=HUB, clients=banks, data=prep.data, config=cfg)
    return {
        "params": res.params, "features": prep.features, "history": res.history,
        "final_metrics": res.final_metrics, "rounds_log": res.rounds_log,
        "dropped": res.dropped, "positive": prep.positive,
        "epsilon": res.epsilon, "delta": res.delta,
    }  # fmt: skip


def _evaluate(model: Model, params: np.ndarray, data: Mapping[str, ClientData]) -> dict[str, Any]:
    stats = np.zeros(stats_size(task_of(model), BINS))
    for d in data.values():
        stats += eval_stats(model, params, d.X_val, d.y_val, bins=BINS)
    return eval_metrics(stats, task_of(model), bins=BINS)


def _train_plain(model: Model, data: ClientData, opts: FLJobOptions, seed: int) -> np.ndarray:
    params = model.init_params(np.random.default_rng([seed, 0xF1]))
    for r in range(opts.rounds):
        rng = np.random.default_rng([seed, 0xC4EC, r])
        params, _ = model.fit_local(params, data.X_train, data.y_train, opts.local(), rng)
    return params


def run(
    files: Mapping[str, Path],
    options: FLJobOptions,
    out: Path,
    *,
    transport: Literal["memory", "grpc"] = "grpc",
    seed: int = 0,
    console: Any = None,
) -> dict[str, Any]:
    """Run the federated job over ``files`` (bank → CSV), the checks, and write the report."""
    from rich.console import Console

    from veil.apps import fl_report

    console = console or Console(stderr=True)
    banks = list(files)
    if len(banks) < 2:
        raise ConfigError("federated learning needs at least two banks (--party NAME=FILE)")
    if HUB in banks:
        raise ConfigError(f"{HUB!r} is the coordinator's name; rename that bank")
    for b, f in files.items():
        read_table(f, b, options.spec())  # fail fast, naming the bank and file
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    how = "processes, gRPC + mutual TLS" if transport == "grpc" else "threads, in memory"
    console.print(
        f"[bold]1/2[/] federated training: {len(banks)} banks + hub ({how}), {options.model}, "
        f"{options.rounds} rounds, {options.aggregation} aggregation"
    )
    opt_dict = {k: list(v) if isinstance(v, tuple) else v for k, v in vars(options).items()}
    params = {HUB: {"banks": banks, "options": opt_dict}}
    params |= {b: {"banks": banks, "options": opt_dict, "csv": str(files[b])} for b in banks}
    res = simulate_detailed(fl_job, [HUB, *banks], transport=transport, params=params,
                            per_party_params=True, seed=seed)  # fmt: skip
    seconds["federated"] = time.perf_counter() - t
    fed = res.results[HUB]

    t = time.perf_counter()
    console.print(
        "[bold]2/2[/] checks on pooled files (this machine only): each bank alone, pooled"
    )
    tables = {b: read_table(files[b], b, options.spec()) for b in banks}
    data, features = pooled_prepare(tables, options.spec(), seed)
    if features != fed["features"]:
        raise ConfigError("federated and pooled preprocessing disagree on the features")
    model = options.make_model(len(features))
    name = "federated_secure" if options.aggregation == "secure" else "federated_insecure"
    models: dict[str, Any] = {name: _evaluate(model, fed["params"], data)}
    pooled = ClientData(*(np.concatenate([getattr(d, k) for d in data.values()])
                          for k in ("X_train", "y_train", "X_val", "y_val")))  # fmt: skip
    models["pooled_plaintext"] = _evaluate(model, _train_plain(model, pooled, options, seed), data)
    models["local"] = {b: _evaluate(model, _train_plain(model, data[b], options, seed), data)
                       for b in banks}  # fmt: skip
    seconds["checks"] = time.perf_counter() - t
    report = {
        "job": "fl", "transport": transport, "options": opt_dict, "banks": banks,
        "rows": {b: {"train": len(data[b].y_train), "held_out": len(data[b].y_val)} for b in banks},
        "positive_label": fed["positive"], "n_features": len(features),
        "models": models, "federated_evaluation": fed["final_metrics"],
        "rounds": len(fed["history"]), "history": fed["history"],
        "epsilon": fed["epsilon"], "delta": fed["delta"],
        "bytes_sent": {p: res.stats[p]["bytes_sent"] for p in res.stats},
        "messages": {p: res.stats[p]["messages_sent"] for p in res.stats},
        "per_round": {p: r["rounds_log"] for p, r in res.results.items()},
        "dropped": fed["dropped"], "seconds": seconds,
        "ledger": merge_ledgers(res.ledgers.values()),
    }  # fmt: skip
    fl_report.write(out, report)
    fl_report.print_summary(console, report)
    return report

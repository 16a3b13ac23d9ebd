"""The federated training loop in the SPMD style: ``federated_fit(ctx, model, ...)``.

Every party runs the same call: the server coordinates, the clients train on their own rows.
Each round the server publishes a *plan* (the global parameters, the sampled clients, what to
do) to the live clients through ``ctx.reveal`` (tag ``fl.global_model``); the sampled clients
evaluate the global model on their held-out rows, train locally, and contribute
``[weighted model change, row count, evaluation sums]`` to one aggregation, opened at the server
only (tag ``fl.round_sum``; secure aggregation by default). After the last round an
evaluation-only round measures the final model, and a final plan carries it and the history to
every party.

What each party learns: clients learn the global models and the pooled evaluation metrics; the
server learns the sums of the survivors' uploads (with secure aggregation) and which clients
dropped out. No one sees a client's own update, row count or metrics, except in the ``plain``
and robust modes, where the server does.

Client sampling uses public randomness derived from the job seed and the round number, so it is
reproducible. A client that drops out of a round (dies, times out, sends garbage) is excluded
from later rounds; the round's sum is exact over the survivors. With ``checkpoint_dir`` the
server checkpoints every round (and SCAFFOLD clients their control variates), and
``resume=True`` continues from the last checkpoint after a crash.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from veil.errors import ConfigError, DataError
from veil.fl.aggregation import Aggregation, RoundSum, Uploads
from veil.fl.evaluation import DEFAULT_BINS, eval_metrics, eval_stats, stats_size, task_of
from veil.fl.models import Array, LocalTraining, Model
from veil.fl.private import DPConfig, DPRound
from veil.fl.secagg.config import SecAggConfig
from veil.fl.strategy import ServerState, Strategy, client_upload, server_update
from veil.runtime.context import Context

PLAN_TAG = "fl.global_model"
SUM_TAG = "fl.round_sum"


@dataclass(frozen=True)
class FLConfig:
    """Options of a federated training run (every party must pass the same)."""

    rounds: int = 10
    local: LocalTraining = field(default_factory=LocalTraining)
    strategy: Strategy = field(default_factory=Strategy)
    aggregation: Aggregation = Aggregation.SECURE
    fraction_fit: float = 1.0
    min_fit_clients: int = 2
    eval_bins: int = DEFAULT_BINS
    patience: int | None = None
    min_delta: float = 0.0
    checkpoint_dir: Path | None = None
    resume: bool = False
    round_timeout: float = 120.0
    trim: float = 0.1
    dp: DPConfig | None = None

    def __post_init__(self) -> None:
        if self.rounds < 1:
            raise ConfigError("rounds must be at least 1")
        if not 0 < self.fraction_fit <= 1:
            raise ConfigError("fraction_fit must be in (0, 1]")
        if self.min_fit_clients < 1:
            raise ConfigError("min_fit_clients must be at least 1")
        if self.dp is not None:
            if self.aggregation not in (Aggregation.SECURE, Aggregation.PLAIN):
                raise ConfigError("DP needs secure (distributed noise) or plain (central noise) "
                                  "aggregation; robust aggregators are not accounted")  # fmt: skip
            if self.strategy.scaffold:
                raise ConfigError("SCAFFOLD's control variates are not covered by DP accounting")


@dataclass
class ClientData:
    """A client's own rows: training set and held-out evaluation set."""

    X_train: Array
    y_train: Array
    X_val: Array
    y_val: Array


@dataclass
class FLResult:
    """What every party ends with: the final global model and the per-round history."""

    params: Array
    history: list[dict[str, Any]]
    final_metrics: dict[str, Any]
    stopped_early: bool
    dropped: dict[str, str]
    #: ``(epsilon, delta)`` spent by the run (``None`` without DP).
    epsilon: float | None = None
    delta: float | None = None
    #: This party's own log: per round, seconds and bytes/messages it sent and received.
    rounds_log: list[dict[str, Any]] = field(default_factory=list)


def _secagg_config(n_clients: int, cfg: FLConfig) -> SecAggConfig:
    # Largest L2 bound whose n-fold sum stays inside the 64-bit ring at 24 fractional bits.
    bound = float(2**38) / max(n_clients, 1)
    return SecAggConfig(
        clip=bound, phase_timeout=cfg.round_timeout, client_timeout=cfg.round_timeout * 4
    )


def _round_size(n_live: int, cfg: FLConfig) -> int:
    return min(n_live, max(cfg.min_fit_clients, math.ceil(cfg.fraction_fit * n_live)))


def _dp_secagg_config(n_clients: int, cfg: FLConfig) -> SecAggConfig:
    # DP uploads are integers already (encoded + noised by the client): 0 fractional bits.
    return SecAggConfig(
        clip=float(2**61) / max(n_clients, 1),
        frac_bits=0,
        phase_timeout=cfg.round_timeout,
        client_timeout=cfg.round_timeout * 4,
    )


def _sample(live: Sequence[str], round_no: int, seed: int, cfg: FLConfig) -> list[str]:
    if len(live) < cfg.min_fit_clients:
        raise ConfigError(
            f"only {len(live)} clients left ({list(live)}), fewer than min_fit_clients="
            f"{cfg.min_fit_clients}; the run stops"
        )
    k = _round_size(len(live), cfg)
    rng = np.random.default_rng([seed, round_no, 0x5A])
    chosen = set(rng.choice(len(live), size=k, replace=False).tolist())
    return [c for i, c in enumerate(live) if i in chosen]


class _Checkpoints:
    """Atomic per-round checkpoints in ``folder`` (npz without pickle + JSON history)."""

    def __init__(self, folder: Path | None, party: str) -> None:
        self.folder = folder / party if folder is not None else None

    def save(self, round_no: int, arrays: dict[str, Array], meta: dict[str, Any]) -> None:
        if self.folder is None:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f".round-{round_no}.npz.tmp"
        with tmp.open("wb") as fh:
            np.savez(fh, allow_pickle=False, **arrays)
        tmp.replace(self.folder / f"round-{round_no:05d}.npz")
        mtmp = self.folder / ".latest.json.tmp"
        mtmp.write_text(json.dumps({"round": round_no, **meta}, default=float))
        mtmp.replace(self.folder / "latest.json")

    def load(self) -> tuple[dict[str, Array], dict[str, Any]] | None:
        if self.folder is None or not (self.folder / "latest.json").exists():
            return None
        meta = json.loads((self.folder / "latest.json").read_text())
        with np.load(self.folder / f"round-{meta['round']:05d}.npz", allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        return arrays, meta


class _Server:
    """The server's side of the loop: state, plans, updates, history, checkpoints."""

    def __init__(self, model: Model, clients: list[str], cfg: FLConfig, seed: int,
                 ckpt: _Checkpoints, n_up: int, n_stats: int, ctx: Context,
                 dp: DPRound | None) -> None:  # fmt: skip
        self.cfg, self.seed, self.ckpt, self.ctx, self.dp = cfg, seed, ckpt, ctx, dp
        self.budget = dp.budget() if dp is not None else None
        self.clients, self.n_up, self.n_stats = clients, n_up, n_stats
        self.task = task_of(model)
        self.state = ServerState(model.init_params(np.random.default_rng([seed, 0xF1])))
        self.history: list[dict[str, Any]] = []
        self.live = list(clients)
        self.dropped: dict[str, str] = {}
        self.best, self.since_best = math.inf, 0
        self.stopped_early = False
        self.final_metrics: dict[str, Any] = {}

    def resume(self, arrays: dict[str, Array], meta: dict[str, Any]) -> None:
        self.state = ServerState(arrays["params"], arrays.get("control"), arrays.get("m"),
                                 arrays.get("v"), int(meta["round"]))  # fmt: skip
        self.history, self.live = list(meta["history"]), list(meta["live"])
        self.dropped = dict(meta.get("dropped", {}))
        self.best, self.since_best = float(meta.get("best", math.inf)), meta.get("since_best", 0)

    def plan(self) -> dict[str, Any]:
        """What every live client does next."""
        rnd = self.state.round
        if rnd < self.cfg.rounds and not self.stopped_early:
            mode, selected = "train", _sample(self.live, rnd + 1, self.seed, self.cfg)
            if self.dp is not None and self.budget is not None:
                self.budget.check(self.dp.worst_event())  # refuse before anything is sent
        elif not self.final_metrics:
            mode, selected = "evaluate", list(self.live)
        else:
            mode, selected = "stop", []
        plan: dict[str, Any] = {
            "mode": mode, "round": rnd + 1, "params": self.state.params,
            "selected": selected, "live": list(self.live),
        }  # fmt: skip
        if self.state.control is not None:
            plan["control"] = self.state.control
        if mode == "stop":
            plan.update(history=self.history, final_metrics=self.final_metrics,
                        stopped_early=self.stopped_early, dropped=self.dropped,
                        epsilon=self._spent())  # fmt: skip
        return plan

    def _spent(self) -> float | None:
        return None if self.budget is None else float(self.budget.spent()[0])

    def absorb(self, plan: dict[str, Any], rs: RoundSum) -> None:
        """Apply one round's aggregated uploads."""
        t0 = time.perf_counter()
        for c, why in rs.dropped.items():
            self.dropped[c] = f"round {plan['round']}: {why}"
        self.live = [c for c in self.live if c not in rs.dropped]
        if plan["mode"] == "evaluate":
            self.final_metrics = eval_metrics(rs.total, self.task, bins=self.cfg.eval_bins)
            return
        metrics: dict[str, Any] = {}
        if self.dp is not None:
            mean, entry = self.dp.server_mean(rs.total, len(rs.survivors), self.budget)
            self.ctx.ledger.append("dp_release", job=self.ctx.job_id, tag=SUM_TAG, dp=entry)
            upload = np.concatenate([mean, [1.0]])
        else:
            metrics = eval_metrics(rs.total[-self.n_stats :], self.task, bins=self.cfg.eval_bins)
            upload = rs.total[: self.n_up]
        fraction = len(rs.survivors) / len(self.clients)
        self.state = server_update(self.cfg.strategy, self.state, upload, sampled_fraction=fraction)
        self.history.append({
            "round": self.state.round, "clients": len(rs.survivors),
            "dropped": sorted(rs.dropped), "val_before_round": metrics,
            "epsilon": self._spent(), "server_seconds": time.perf_counter() - t0,
        })  # fmt: skip
        loss = metrics.get("loss")
        if loss is not None and loss < self.best - self.cfg.min_delta:
            self.best, self.since_best = loss, 0
        else:
            self.since_best += 1
        if self.cfg.patience is not None and self.since_best >= self.cfg.patience:
            self.stopped_early = True
        arrays = {"params": self.state.params}
        for k in ("control", "m", "v"):
            if getattr(self.state, k) is not None:
                arrays[k] = getattr(self.state, k)
        self.ckpt.save(self.state.round, arrays, {
            "history": self.history, "live": self.live, "dropped": self.dropped,
            "best": self.best, "since_best": self.since_best,
        })  # fmt: skip


def federated_fit(
    ctx: Context,
    model: Model,
    *,
    server: str,
    clients: Sequence[str],
    data: ClientData | None,
    config: FLConfig | None = None,
) -> FLResult:
    """Train ``model`` across ``clients`` coordinated by ``server`` (every party calls this).

    ``data`` is the client's own :class:`ClientData` at a client and ``None`` at the server.
    Returns the same :class:`FLResult` at every party that finishes.
    """
    cfg = config or FLConfig()
    me = ctx.party
    clients = list(clients)
    if server in clients or me not in (server, *clients):
        raise ConfigError(f"{me!r} must be the server {server!r} or one of the clients {clients}")
    if (me == server) != (data is None):
        raise ConfigError("the server passes data=None; every client passes its ClientData")
    srv = ctx.parties(server)[0]
    n_stats = stats_size(task_of(model), cfg.eval_bins)
    n_up = cfg.strategy.upload_size(model.n_params)
    secagg = _secagg_config(len(clients), cfg)
    dp = None
    if cfg.dp is not None:
        dp = DPRound(
            cfg.dp,
            rounds=cfg.rounds,
            n_per_round=_round_size(len(clients), cfg),
            dim=model.n_params,
            distributed=cfg.aggregation is Aggregation.SECURE,
        )
        n_up = model.n_params
    ckpt = _Checkpoints(cfg.checkpoint_dir, me)
    role = None
    if me == server:
        role = _Server(model, clients, cfg, ctx.seed, ckpt, n_up, n_stats, ctx, dp)
    control_i = np.zeros(model.n_params) if cfg.strategy.scaffold else None
    loaded = ckpt.load() if cfg.resume else None
    if loaded is not None and role is not None:
        role.resume(*loaded)
    elif loaded is not None and control_i is not None and "control_i" in loaded[0]:
        control_i = loaded[0]["control_i"]

    known_live = list(clients)
    log: list[dict[str, Any]] = []
    mark = (time.perf_counter(), ctx.stats())
    while True:
        make_plan = role.plan if role is not None else dict
        # The server sends to the clients it knows are alive; a client only needs to know it
        # is a recipient itself (the list it holds may still name a client that just dropped).
        recipients = role.live if role is not None else known_live
        plan = ctx.reveal(srv(make_plan)(), to=[srv, *ctx.parties(*recipients)], tag=PLAN_TAG)
        known_live = list(plan["live"])
        params = np.asarray(plan["params"], dtype=np.float64)
        if plan["mode"] == "stop":
            return FLResult(params, list(plan["history"]), dict(plan["final_metrics"]),
                            bool(plan["stopped_early"]), dict(plan["dropped"]),
                            plan.get("epsilon"), None if cfg.dp is None else cfg.dp.delta,
                            log)  # fmt: skip

        evaluate_only = plan["mode"] == "evaluate"
        selected = list(plan["selected"])
        vector = None
        if data is not None and me in selected:
            stats = eval_stats(model, params, data.X_val, data.y_val, bins=cfg.eval_bins)
            if evaluate_only:
                vector = stats
            elif dp is not None:
                new, _ = model.fit_local(params, data.X_train, data.y_train, cfg.local,
                                         _client_rng(ctx, plan))  # fmt: skip
                vector = dp.client_upload(new - params, len(selected), me)
            else:
                up, control_i = _train(ctx, model, params, plan, data, cfg, control_i)
                vector = np.concatenate([up, stats])
                if control_i is not None:
                    ckpt.save(int(plan["round"]), {"control_i": control_i}, {})
        dp_round = dp is not None and not evaluate_only
        agg_cfg = _dp_secagg_config(len(clients), cfg) if dp_round else secagg
        if vector is not None:
            _check_upload(me, vector, agg_cfg.clip)
        dim = n_stats if evaluate_only else (n_up if dp_round else n_up + n_stats)
        uploads = Uploads(
            ctx.link, ctx.next_key("fl.round"), server, selected, vector, dim,
            cfg.aggregation, agg_cfg, trim=cfg.trim, timeout=cfg.round_timeout,
            robust_dims=None if evaluate_only else n_up,
        )  # fmt: skip
        rs = ctx.reveal(uploads, to=srv, tag=SUM_TAG)
        if role is not None:
            role.absorb(plan, rs)
        mark = _log_round(log, plan, mark, ctx.stats())


def _log_round(
    log: list[dict[str, Any]],
    plan: dict[str, Any],
    mark: tuple[float, dict[str, Any]],
    stats: dict[str, Any],
) -> tuple[float, dict[str, Any]]:
    now = time.perf_counter()
    t0, before = mark
    entry: dict[str, Any] = {"round": plan["round"], "mode": plan["mode"], "seconds": now - t0}
    for k in ("bytes_sent", "bytes_recv", "messages_sent", "messages_recv"):
        entry[k] = stats[k] - before[k]
    log.append(entry)
    return now, stats


def _check_upload(party: str, vector: Array, bound: float) -> None:
    norm = float(np.linalg.norm(vector))
    if not math.isfinite(norm) or norm > bound:
        raise DataError(
            f"client {party!r}: its round upload has norm {norm:.3g}, over the secure-aggregation "
            f"bound {bound:.3g} (or not finite); scale the features or lower the learning rate"
        )


def _client_rng(ctx: Context, plan: dict[str, Any]) -> np.random.Generator:
    return np.random.default_rng([ctx.seed, int(plan["round"]), *ctx.party.encode()])


def _train(
    ctx: Context,
    model: Model,
    params: Array,
    plan: dict[str, Any],
    data: ClientData,
    config: FLConfig,
    control_i: Array | None,
) -> tuple[Array, Array | None]:
    """One client's local training; returns its upload and its new control variate."""
    rng = _client_rng(ctx, plan)
    correction = None
    if config.strategy.scaffold:
        assert control_i is not None
        c = np.asarray(plan.get("control", np.zeros_like(params)), dtype=np.float64)
        correction = c - control_i
    new, steps = model.fit_local(params, data.X_train, data.y_train, config.local, rng,
                                 correction=correction)  # fmt: skip
    delta = new - params
    n_rows = data.X_train.shape[0]
    if config.strategy.scaffold:
        assert control_i is not None and correction is not None
        c = control_i - correction  # the server's c
        new_ci = control_i - c + (params - new) / (max(steps, 1) * config.local.lr)
        return client_upload(delta, n_rows, new_ci - control_i), new_ci
    return client_upload(delta, n_rows), control_i

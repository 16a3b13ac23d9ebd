"""EV charging forecasting across charge-point operators (horizontal FL + a secure grid view).

Three charge-point operators (CPOs) each run some of SimBench's 15 EV charging stations
(:mod:`veil.apps.ev_data`). They train one day-ahead forecaster together — a linear model with
96 outputs (:class:`MultiLinearModel`) mapping a station's past week and the calendar to its
next day's quarter-hour load — by federated averaging under secure aggregation
(:func:`veil.fl.loop.federated_fit`, SecAgg+), coordinated by the utility. The utility then
gets its **grid view**: the sum over all operators of their stations' next-day forecasts for its
area, through one more secure aggregation opened at the utility only (:func:`grid_view`).

Threat model and what each party learns (honest-but-curious parties, no collusion between the
utility and an operator): the utility learns the global model after every round, the pooled
sums of the round uploads (model changes weighted by row counts, evaluation sums) and the area
forecast (the sum over the operators, per test quarter-hour). An operator learns the global
models. No one sees an operator's own stations, rows, model update or forecast. The area forecast
reveals, to the utility, the sum of the operators' forecasts — by design, nothing finer; as with
any sum, operators colluding with the utility learn the sum of the others' forecasts, and a
utility lying about dropouts may pick which majority of operators it sums (``docs/secagg.md``).

The runner (:func:`run_ev`) also trains, as **checks computed in this process from all the data**
(possible only because the public profiles are on this machine), each operator alone and one
model on the pooled rows with the same training budget, and measures every model on the union of
all stations' test days.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from veil.apps.ev_data import (
    N_FEATURES,
    SLOTS,
    Split,
    forecast_metrics,
    load_profiles,
    operator_data,
    split_operators,
)
from veil.apps.report import figure_png, pyplot, table_html, write_html, write_json
from veil.errors import ConfigError, DataError
from veil.fl.aggregation import Aggregation, Uploads
from veil.fl.loop import ClientData, FLConfig, federated_fit
from veil.fl.models import Array, LocalTraining, Model
from veil.fl.secagg.config import SecAggConfig
from veil.runtime.context import Context
from veil.runtime.ledger import merge_ledgers
from veil.runtime.simulate import simulate_detailed

GRID_TAG = "ev.area_forecast"


@dataclass
class MultiLinearModel(Model):
    """Linear regression with ``n_outputs`` targets: ``Y = X W + b``, optional L2 on ``W``.

    Loss: half the squared error summed over the outputs, averaged over rows (plus
    ``l2 / 2 · |W|²``). Parameters: ``W`` (``n_features × n_outputs``, row-major) then ``b``.
    """

    n_features: int
    n_outputs: int
    l2: float = 0.0
    task: ClassVar[str] = "regression"

    def __post_init__(self) -> None:
        if self.n_features < 1 or self.n_outputs < 1 or self.l2 < 0:
            raise ConfigError("need n_features >= 1, n_outputs >= 1 and l2 >= 0")
        self.n_params = (self.n_features + 1) * self.n_outputs

    def _split(self, params: Array) -> tuple[Array, Array]:
        k = self.n_outputs
        return params[:-k].reshape(self.n_features, k), params[-k:]

    def init_params(self, rng: np.random.Generator) -> Array:
        return np.zeros(self.n_params)

    def check_data(self, X: Array, y: Array) -> None:
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise DataError(f"X must be (n, {self.n_features}), got {X.shape}")
        if y.shape != (X.shape[0], self.n_outputs):
            raise DataError(f"y must be ({X.shape[0]}, {self.n_outputs}), got {y.shape}")

    def loss_grad(self, params: Array, X: Array, y: Array) -> tuple[float, Array]:
        W, b = self._split(params)
        r = X @ W + b - y
        n = X.shape[0]
        loss = 0.5 * float(np.sum(r * r)) / n + 0.5 * self.l2 * float(np.sum(W * W))
        r /= n
        return loss, np.concatenate([(X.T @ r + self.l2 * W).ravel(), r.sum(axis=0)])

    def predict(self, params: Array, X: Array) -> Array:
        W, b = self._split(params)
        out: Array = X @ W + b
        return out


@dataclass(frozen=True)
class EVOptions:
    """What every party of the job agrees on (passed identically to all)."""

    utility: str = "utility"
    operators: tuple[str, ...] = ("cpo1", "cpo2", "cpo3")
    test_from: str = "2016-11-01"
    test_to: str = "2016-12-31"
    rounds: int = 20
    epochs: int = 1
    batch_size: int = 32
    lr: float = 0.05
    l2: float = 0.0
    aggregation: str = "secure"
    #: Seed of the random assignment of stations to operators.
    split_seed: int = 0
    #: A SimBench ``LoadProfile.csv``; ``None``: the installed ``simbench`` package's.
    profile_csv: str | None = None

    def __post_init__(self) -> None:
        if len(self.operators) < 2 or self.utility in self.operators:
            raise ConfigError("need at least two operators, none named like the utility")
        if self.aggregation not in (Aggregation.SECURE, Aggregation.PLAIN):
            raise ConfigError(f"aggregation must be 'secure' or 'plain' (insecure, for tests), "
                              f"got {self.aggregation!r}")  # fmt: skip
        if self.split().test_to < self.split().test_from:
            raise ConfigError(f"test_to {self.test_to} is before test_from {self.test_from}")

    def split(self) -> Split:
        try:
            lo, hi = dt.date.fromisoformat(self.test_from), dt.date.fromisoformat(self.test_to)
        except ValueError:
            raise ConfigError(f"test dates must be YYYY-MM-DD, got {self.test_from!r}, "
                              f"{self.test_to!r}") from None  # fmt: skip
        return Split(lo, hi)

    def model(self) -> MultiLinearModel:
        return MultiLinearModel(N_FEATURES, SLOTS, self.l2)

    def local(self) -> LocalTraining:
        return LocalTraining(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr)

    def fl_config(self) -> FLConfig:
        return FLConfig(rounds=self.rounds, local=self.local(),
                        aggregation=Aggregation(self.aggregation),
                        min_fit_clients=len(self.operators))  # fmt: skip

    def to_params(self) -> dict[str, Any]:
        """Plain data for the job's parameters (travels with the safe codec)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in vars(self).items()}

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> EVOptions:
        """Options from :meth:`to_params` output (unknown names raise :class:`ConfigError`)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ConfigError(f"unknown EV option(s) {unknown}; known: {sorted(known)}")
        fields = dict(params)
        fields["operators"] = tuple(fields.get("operators", cls.operators))
        return cls(**fields)


def grid_view(
    ctx: Context,
    utility: str,
    operators: Sequence[str],
    forecast: Array | None,
    n_days: int,
    *,
    aggregation: Aggregation = Aggregation.SECURE,
    timeout: float = 120.0,
) -> Array | None:
    """The utility's area forecast: the sum of the operators' ``(n_days, 96)`` forecasts (SPMD).

    Each operator passes the sum of its own stations' forecasts (``None`` at the utility); the
    vectors are summed by secure aggregation (SecAgg+, fixed point with 24 fractional bits)
    opened at the utility only (tag ``ev.area_forecast``). Reveals to the utility the sum over
    all operators, nothing per operator, and nothing to the operators. ``aggregation="plain"``
    (**insecure**: the utility sees each operator's forecast) exists only as a test oracle.
    Returns the ``(n_days, 96)`` sum at the utility, ``None`` elsewhere.
    """
    if aggregation not in (Aggregation.SECURE, Aggregation.PLAIN):
        raise ConfigError("the area forecast is a sum: use secure (or plain, for tests)")
    dim = n_days * SLOTS
    vector = None
    if ctx.party in operators:
        if forecast is None or forecast.shape != (n_days, SLOTS):
            got = None if forecast is None else forecast.shape
            raise DataError(f"operator {ctx.party!r}: forecast must be ({n_days}, 96), got {got}")
        vector = np.asarray(forecast, dtype=np.float64).ravel()
    bound = 2.0**38 / max(len(operators), 1)
    if vector is not None and not float(np.linalg.norm(vector)) <= bound:
        raise DataError(f"operator {ctx.party!r}: forecast too large or not finite for "
                        "secure aggregation")  # fmt: skip
    secagg = SecAggConfig(clip=bound, phase_timeout=timeout, client_timeout=4 * timeout)
    up = Uploads(ctx.link, ctx.next_key(GRID_TAG), utility, list(operators), vector, dim,
                 aggregation, secagg, timeout=timeout)  # fmt: skip
    rs = ctx.reveal(up, to=ctx.parties(utility)[0], tag=GRID_TAG)
    if rs is None:
        return None
    if rs.dropped:
        raise DataError(f"operators {sorted(rs.dropped)} dropped out of the area forecast; "
                        "a partial sum would understate the load")  # fmt: skip
    return np.asarray(rs.total, dtype=np.float64).reshape(n_days, SLOTS)


def station_sum(model: Model, params: Array, X: Array, n_days: int) -> Array:
    """Sum over stations of the forecasts for rows stacked station by station (n_days each)."""
    pred = model.predict(params, X)
    if pred.shape[0] % n_days:
        raise DataError(f"{pred.shape[0]} forecast rows are not whole stations of {n_days} days")
    out: Array = pred.reshape(-1, n_days, SLOTS).sum(axis=0)
    return out


def ev_job(ctx: Context, options: dict[str, Any], stations: list[str] | None = None) -> Any:
    """SPMD job: the utility passes no stations; each operator its own station names.

    Returns, at the utility, the final model, the history, the area forecast and its stage
    timings; at an operator, its round logs and timings.
    """
    opts = EVOptions.from_params(options)
    split = opts.split()
    n_days = len(split.test_days)
    data: ClientData | None = None
    if ctx.party in opts.operators:
        if not stations:
            raise ConfigError(f"operator {ctx.party!r} was given no stations")
        data = operator_data(load_profiles(opts.profile_csv, stations), stations, split)
    model = opts.model()
    t0 = time.perf_counter()
    res = federated_fit(ctx, model, server=opts.utility, clients=list(opts.operators),
                        data=data, config=opts.fl_config())  # fmt: skip
    t1 = time.perf_counter()
    mine = station_sum(model, res.params, data.X_val, n_days) if data is not None else None
    area = grid_view(ctx, opts.utility, opts.operators, mine, n_days,
                     aggregation=Aggregation(opts.aggregation))  # fmt: skip
    seconds = {"fl_train": t1 - t0, "grid_view": time.perf_counter() - t1}
    out: dict[str, Any] = {"seconds": seconds, "rounds_log": res.rounds_log}
    if ctx.party == opts.utility:
        out |= {"params": res.params, "history": res.history,
                "final_metrics": res.final_metrics, "area_forecast": area}  # fmt: skip
    return out


def train_plain(model: Model, data: ClientData, opts: EVOptions, seed: int) -> Array:
    """The same training budget in one place (``rounds`` × local epochs of SGD): a check."""
    params = model.init_params(np.random.default_rng([seed, 0xF1]))
    for r in range(opts.rounds):
        rng = np.random.default_rng([seed, 0xC4EC, r])
        params, _ = model.fit_local(params, data.X_train, data.y_train, opts.local(), rng)
    return params


def _pool(data: Mapping[str, ClientData]) -> ClientData:
    return ClientData(*(np.concatenate([getattr(d, k) for d in data.values()])
                        for k in ("X_train", "y_train", "X_val", "y_val")))  # fmt: skip


def _evaluate(model: Model, params: Array, test: ClientData) -> dict[str, float]:
    return forecast_metrics(model.predict(params, test.X_val), test.y_val)


def run_ev(
    out: Path,
    transport: Literal["memory", "grpc"] = "grpc",
    *,
    options: EVOptions | None = None,
    seed: int = 0,
    console: Any = None,
) -> dict[str, Any]:
    """Run the EV job (utility + operators), the checks, and write ``out/report.{json,html}``.

    Returns the report; its ``ev`` part holds ``models.local.<operator>``,
    ``models.federated_secure``, ``models.pooled_plaintext`` (each ``mae``, ``rmse``,
    ``peak_error`` over all stations' test days, per-unit of station rating), ``aggregate`` (the
    utility's area forecast against the actual area load), per-party ``bytes_sent``, per-stage
    ``seconds`` and the merged audit ledger.
    """
    from rich.console import Console

    opts = options or EVOptions()
    console = console or Console(stderr=True)
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    split = opts.split()
    n_days = len(split.test_days)
    assignment = split_operators(opts.operators, opts.split_seed)
    profiles = load_profiles(opts.profile_csv)  # fails fast with an install hint
    data = {op: operator_data(profiles, st, split) for op, st in assignment.items()}
    seconds["data"] = time.perf_counter() - t

    how = "processes, gRPC + mutual TLS" if transport == "grpc" else "threads, in memory"
    console.print(f"[bold]EV 1/2[/] federated forecaster: {len(opts.operators)} operators + "
                  f"{opts.utility} ({how}), {opts.rounds} rounds, {opts.aggregation} "
                  "aggregation; then the utility's area forecast")  # fmt: skip
    t = time.perf_counter()
    common = {"options": opts.to_params()}
    params: dict[str, Any] = {opts.utility: common}
    params |= {op: common | {"stations": assignment[op]} for op in opts.operators}
    res = simulate_detailed(ev_job, [opts.utility, *opts.operators], transport=transport,
                            params=params, per_party_params=True, seed=seed)  # fmt: skip
    seconds["federated"] = time.perf_counter() - t
    fed = res.results[opts.utility]
    seconds |= {k: float(v) for k, v in fed["seconds"].items()}

    console.print("[bold]EV 2/2[/] checks on the pooled public profiles (this machine only): "
                  "each operator alone, pooled")  # fmt: skip
    t = time.perf_counter()
    model = opts.model()
    pooled = _pool(data)
    fed_params = np.asarray(fed["params"])
    name = "federated_secure" if opts.aggregation == "secure" else "federated_insecure"
    models: dict[str, Any] = {name: _evaluate(model, fed_params, pooled)}
    t_pool = time.perf_counter()
    pooled_params = train_plain(model, pooled, opts, seed)
    seconds["pooled_plaintext_train"] = time.perf_counter() - t_pool
    models["pooled_plaintext"] = _evaluate(model, pooled_params, pooled)
    local = {op: train_plain(model, data[op], opts, seed) for op in opts.operators}
    models["local"] = {op: _evaluate(model, w, pooled) for op, w in local.items()}
    actual = pooled.y_val.reshape(-1, n_days, SLOTS).sum(axis=0)
    area = np.asarray(fed["area_forecast"])
    plain_area = station_sum(model, fed_params, pooled.X_val, n_days)
    aggregate = forecast_metrics(area, actual) | {
        "max_abs_diff_vs_plaintext_sum": float(np.max(np.abs(area - plain_area))),
        "stations": sum(len(s) for s in assignment.values()),
        # Checks: the same area sum if each operator forecast its stations with its own model,
        # or with the pooled model.
        "operators_alone": forecast_metrics(
            np.sum(
                [station_sum(model, local[op], d.X_val, n_days) for op, d in data.items()], axis=0
            ),
            actual,
        ),
        "pooled_plaintext": forecast_metrics(
            station_sum(model, pooled_params, pooled.X_val, n_days), actual
        ),
    }
    seconds["checks"] = time.perf_counter() - t
    ev = {
        "models": models, "aggregate": aggregate,
        "operators": assignment,
        "rows": {op: {"train": len(d.y_train), "test": len(d.y_val)} for op, d in data.items()},
        "test_days": [str(d) for d in split.test_days],
        "federated_evaluation": fed["final_metrics"], "history": fed["history"],
        "bytes_sent": {p: res.stats[p]["bytes_sent"] for p in res.stats},
        "messages": {p: res.stats[p]["messages_sent"] for p in res.stats},
        "per_round": {p: r["rounds_log"] for p, r in res.results.items()},
        "seconds": seconds, "ledger": merge_ledgers(res.ledgers.values()),
        "series": {"first_day": str(split.test_from), "actual": actual[:7],
                   "area_forecast": area[:7]},
    }  # fmt: skip
    report = {"job": "ev", "transport": transport, "options": opts.to_params(), "ev": ev}
    write_report(out, report)
    print_summary(console, report)
    return report


def figure_week(report: Mapping[str, Any]) -> str:
    """The area forecast against the actual area load over the first test week (PNG data URI)."""
    plt = pyplot()
    series = report["ev"]["series"]
    actual = np.asarray(series["actual"]).ravel()
    forecast = np.asarray(series["area_forecast"]).ravel()
    hours = np.arange(actual.size) / 4
    fig, ax = plt.subplots(figsize=(10, 3.2))
    ax.plot(hours, actual, lw=0.9, label="actual (sum of all stations)")
    ax.plot(hours, forecast, lw=1.4, label="utility's area forecast (secure sum)")
    ax.set_xlabel(f"hours from {series['first_day']}")
    ax.set_ylabel("load, sum of per-unit station loads")
    ax.legend(loc="upper right")
    return figure_png(fig)


def html_sections(report: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The EV part of an HTML report: (heading, body) pairs (reusable by a combined report)."""
    ev = report["ev"]
    m = ev["models"]
    fed = next(k for k in m if k.startswith("federated"))
    rows = [[f"{op} alone", *(v[k] for k in ("mae", "rmse", "peak_error"))]
            for op, v in m["local"].items()]  # fmt: skip
    rows += [[name, *(m[name][k] for k in ("mae", "rmse", "peak_error"))]
             for name in (fed, "pooled_plaintext")]  # fmt: skip
    agg = ev["aggregate"]
    stations = "".join(f"<li>{html.escape(op)}: {html.escape(', '.join(st))}</li>"
                       for op, st in ev["operators"].items())  # fmt: skip
    cost = [[p, ev["bytes_sent"][p], ev["messages"][p]] for p in ev["bytes_sent"]]
    return [
        ("EV charging: station day-ahead forecasts",
         table_html(["model", "MAE", "RMSE", "peak error"], rows)
         + "<p class=note>Per-unit of each station's rating, over every station's test days; "
           "each operator alone and pooled are checks computed on this machine.</p>"
           f"<ul>{stations}</ul>"),
        ("EV charging: the utility's area forecast (sum over operators)",
         f'<img src="{figure_week(report)}" alt="area forecast vs actual">'
         + table_html(["area forecast from", "MAE", "RMSE", "peak error"],
                      [[label, *(v[k] for k in ("mae", "rmse", "peak_error"))]
                       for label, v in (("each operator's own model (check)",
                                         agg["operators_alone"]),
                                        ("federated model, secure sum", agg),
                                        ("pooled model (check)", agg["pooled_plaintext"]))])
         + f"<p class=note>Secure sum vs plaintext sum of the same forecasts: max difference "
           f"{agg['max_abs_diff_vs_plaintext_sum']:.2g}.</p>"),
        ("EV charging: cost",
         table_html(["party", "bytes sent", "messages"], cost)
         + table_html(["stage", "seconds"], [[k, v] for k, v in ev["seconds"].items()])),
    ]  # fmt: skip


def write_report(out: Path, report: dict[str, Any]) -> None:
    """Write ``out/report.json`` and ``out/report.html``."""
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "report.json", report)
    write_html(out / "report.html", "veil: EV charging forecast across operators",
               html_sections(report))  # fmt: skip


def print_summary(console: Any, report: Mapping[str, Any]) -> None:
    """A short table of the models on the console."""
    from rich.table import Table

    ev = report["ev"]
    table = Table(title="EV day-ahead forecast (per-unit, all stations' test days)")
    for col in ("model", "MAE", "RMSE", "peak error"):
        table.add_column(col)
    m = ev["models"]
    named = [(f"{op} alone", v) for op, v in m["local"].items()]
    named += [(k, v) for k, v in m.items() if k != "local"]
    for name, v in named:
        table.add_row(name, *(f"{v[k]:.4f}" for k in ("mae", "rmse", "peak_error")))
    console.print(table)

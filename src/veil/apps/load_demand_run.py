"""Runner of ``veil forecast``: checks the inputs, runs the demand job, the plaintext check, and
writes ``report.json``, ``forecast.csv`` and ``report.html``.

The pooled-plaintext model is a **check** computed in this process from both files (possible
only because both files are on this machine): the same aligned times (an inner join), the same
feature functions (:mod:`veil.ml.features`, called through the job's own per-party builders),
the same interactions and the same ridge penalty, fitted in float64 by
:func:`veil.ml.ridge.ridge_plain`. With ``--model secureboost`` it is xgboost (``hist``, squared
error) on both parties' raw tree columns with the same trees, depth, learning rate, bins and
``reg_lambda`` (xgboost is needed for this check only); ``joint_vs_pooled.veil_plaintext_twin``
adds veil's own trainer on the same pooled columns. With ``model="both"`` (``veil demo load``)
both checks run: ridge's under the usual keys, the trees' as ``models.pooled_plaintext_trees``
and ``joint_vs_pooled_trees``. It never runs in a deployment.

Nothing is written unless the whole run succeeds; each output file is written atomically.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from veil.apps.load_data import Series, iso_times, parse_date, parse_duration, read_series
from veil.apps.load_demand import (
    MIN_TRAIN_ROWS,
    MODELS,
    TreeSettings,
    Window,
    demand_job,
    grid_step,
    metrics,
    policy_rules,
    utility_design,
    utility_raw,
    utility_tree_raw,
    weather_design,
    weather_raw,
)
from veil.apps.report import figure_png, pyplot, table_html, write_html, write_json
from veil.errors import ConfigError, DataError
from veil.ml import features as ft
from veil.ml.ridge import ridge_plain
from veil.ml.secureboost import BoostParams
from veil.ml.secureboost.protocol import train_plaintext
from veil.runtime.ledger import merge_ledgers
from veil.runtime.node import write_atomic
from veil.runtime.policy import RevealPolicy
from veil.runtime.simulate import simulate_detailed

THIRD = {"semi2k": "dealer", "aby3": "helper"}

#: The pooled checks of each model: ridge's, the trees' (xgboost).
_CHECKS = {"ridge": ("ridge",), "secureboost": ("secureboost",), "both": ("ridge", "secureboost")}


@dataclass(frozen=True)
class DemandOptions:
    """Options every party of the job agrees on (public). ``model``: ``ridge`` (MPC),
    ``secureboost`` (vertical trees, HE) or ``both`` (one alignment, both models, e.g. the
    demo); ``protocol`` and ``alpha`` are ridge's, ``trees`` SecureBoost's."""

    time_col: str
    target_party: str
    target: str
    test_from: str
    test_to: str | None = None
    horizon: str = "1d"
    model: str = "ridge"
    protocol: Literal["semi2k", "aby3"] = "semi2k"
    alpha: float = 1.0
    n_knots: int = 5
    degree: int = 3
    fourier_k: int = 3
    trees: TreeSettings = field(default_factory=TreeSettings)

    def window(self) -> Window:
        """The test window in nanoseconds; a ``--test-to`` without a time covers that day."""
        start = parse_date(self.test_from, "--test-from")
        end = None
        if self.test_to is not None:
            end = parse_date(self.test_to, "--test-to")
            if end % ft.NS_PER_DAY == 0 and ":" not in self.test_to:
                end += ft.NS_PER_DAY
            if end <= start:
                raise ConfigError("--test-to must come after --test-from")
        return Window(start, end)


def _roles(files: Mapping[str, Path], opts: DemandOptions) -> tuple[str, str]:
    if len(files) != 2:
        raise ConfigError(f"give exactly two parties (the target's owner and a weather "
                          f"provider) with --party NAME=FILE; got {list(files)}")  # fmt: skip
    if opts.target_party not in files:
        raise ConfigError(f"--target names party {opts.target_party!r}, which has no --party file")
    other = next(p for p in files if p != opts.target_party)
    if opts.model not in MODELS:
        raise ConfigError(f"--model must be ridge, secureboost or both, got {opts.model!r}")
    if opts.protocol not in THIRD:
        raise ConfigError(f"--protocol must be semi2k or aby3, got {opts.protocol!r}")
    if opts.model != "secureboost" and THIRD[opts.protocol] in files:
        raise ConfigError(f"{THIRD[opts.protocol]!r} names the MPC's third party; rename yours")
    return opts.target_party, other


def check_inputs(files: Mapping[str, Path], opts: DemandOptions) -> dict[str, Series]:
    """Read every file as its party would and fail early, naming party and file."""
    utility, _ = _roles(files, opts)
    window = opts.window()
    parse_duration(opts.horizon)
    if opts.model != "ridge":
        _xgboost()  # the pooled check needs it: fail before the job, not after
    series = {p: read_series(path, p, opts.time_col) for p, path in files.items()}
    for s in series.values():
        for c in s.table.columns:
            s.numeric(c)  # every column is a feature or the target: all must be numeric
    util = series[utility]
    if util.times_ns[-1] < window.test_from or (
        window.test_to is not None and window.test_to <= util.times_ns[0]
    ):
        raise DataError(
            f"party {utility!r}: the test window lies outside {util.path} "
            f"({util.quality.first} to {util.quality.last})"
        )
    if util.times_ns[0] >= window.test_from:
        raise DataError(f"party {utility!r}: {util.path} has no rows before --test-from "
                        f"{opts.test_from}; nothing to train on")  # fmt: skip
    return series


def _xgboost() -> Any:
    try:
        import xgboost
    except ImportError:
        raise ConfigError(
            "--model secureboost compares with xgboost on the pooled plaintext (a check on "
            "this machine): install it with `pip install xgboost-cpu`"
        ) from None
    return xgboost


def pooled_check(
    series: Mapping[str, Series], opts: DemandOptions, model: str | None = None
) -> dict[str, Any]:
    """The same model on the pooled plaintext (a check, see module docstring): ``model``
    (``ridge`` or ``secureboost``; default ``opts.model``)."""
    utility, weather = _roles(series, opts)  # type: ignore[arg-type]
    model = model or opts.model
    if model not in ("ridge", "secureboost"):
        raise ConfigError(f"pooled_check: model must be ridge or secureboost, got {model!r}")
    if model == "secureboost":
        return _pooled_trees(series[utility], series[weather], opts)
    spec = ft.FeatureSpec(n_knots=opts.n_knots, degree=opts.degree, fourier_k=opts.fourier_k)
    su, sw = series[utility], series[weather]
    times = np.intersect1d(su.times_ns, sw.times_ns)
    Xu, _, y, ok_u = utility_raw(su, times, opts.target, grid_step(times),
                                 ft.lags_for_horizon(parse_duration(opts.horizon)))  # fmt: skip
    cols, ok_w = weather_raw(sw, times)
    train_pos, test_pos = opts.window().split(times, ok_u & ok_w)
    rows = np.concatenate([train_pos, test_pos])
    tr = np.arange(len(train_pos))
    Zu, Fz, _ = utility_design(Xu, times, rows, tr, spec)
    Zw, _ = weather_design(cols, rows, tr, spec)
    X = np.concatenate([Zu, Zw, ft.pairwise_products(Zw, Fz)], axis=1)
    w, b = ridge_plain(X[tr], y[rows][tr], opts.alpha)
    pred = X[len(tr) :] @ w + b
    return {"metrics": metrics(y[test_pos], pred), "forecast": pred,
            "time": iso_times(times[test_pos])}  # fmt: skip


def _pooled_trees(su: Series, sw: Series, opts: DemandOptions) -> dict[str, Any]:
    """xgboost on both parties' raw tree columns (the secure model's inputs), same settings."""
    xgb = _xgboost()
    times = np.intersect1d(su.times_ns, sw.times_ns)
    lags = ft.lags_for_horizon(parse_duration(opts.horizon))
    Xu, _, y, ok_u = utility_tree_raw(su, times, opts.target, grid_step(times), lags)
    cols, ok_w = weather_raw(sw, times)
    X = np.concatenate([Xu, np.column_stack(list(cols.values()))], axis=1)
    train_pos, test_pos = opts.window().split(times, ok_u & ok_w)
    t = opts.trees
    model = xgb.XGBRegressor(tree_method="hist", objective="reg:squarederror",
                             n_estimators=t.n_estimators, max_depth=t.max_depth,
                             learning_rate=t.learning_rate, max_bin=t.max_bin,
                             reg_lambda=t.reg_lambda, n_jobs=1)  # fmt: skip
    model.fit(X[train_pos], y[train_pos])
    pred = np.asarray(model.predict(X[test_pos]), dtype=np.float64)
    # veil's own trainer on the pooled columns: separates the cost of security (none beyond
    # tie-breaking) from the differences between veil's and xgboost's binning
    twin = train_plaintext("pooled", X[train_pos], y[train_pos], BoostParams(**t.params()))
    return {"metrics": metrics(y[test_pos], pred), "forecast": pred,
            "time": iso_times(times[test_pos]),
            "twin": metrics(y[test_pos], twin.predict_own(X[test_pos]))}  # fmt: skip


def run(
    files: Mapping[str, Path],
    opts: DemandOptions,
    out: Path,
    *,
    transport: Literal["memory", "grpc"] = "grpc",
    seed: int = 0,
    console: Any = None,
) -> dict[str, Any]:
    """Run the job over ``files`` ({party: CSV}), the check, and write ``out/``."""
    from rich.console import Console

    console = console or Console(stderr=True)
    utility, weather = _roles(files, opts)
    series = check_inputs(files, opts)
    window = opts.window()
    only_trees = opts.model == "secureboost"
    third = THIRD[opts.protocol]
    parties = [utility, weather] if only_trees else [utility, weather, third]
    common = {
        "utility": utility, "weather": weather, "third": third, "time_col": opts.time_col,
        "target": opts.target, "test_from": window.test_from, "test_to": window.test_to,
        "horizon_ns": parse_duration(opts.horizon), "protocol": opts.protocol,
        "alpha": opts.alpha, "n_knots": opts.n_knots, "degree": opts.degree,
        "fourier_k": opts.fourier_k, "model": opts.model, "trees": asdict(opts.trees),
    }  # fmt: skip
    params = {p: common | {"csv": str(files.get(p, ""))} for p in parties}
    policy = RevealPolicy.from_mapping({"default": "deny", "rule": policy_rules(utility)},
                                       source="demand job policy")  # fmt: skip
    how = "processes, gRPC + mutual TLS" if transport == "grpc" else "threads, in memory"
    sb_scheme = f"SecureBoost, OU-{opts.trees.key_bits}"
    scheme = {"ridge": f"ridge, {opts.protocol}", "secureboost": sb_scheme,
              "both": f"ridge, {opts.protocol}; then {sb_scheme}"}[opts.model]  # fmt: skip
    console.print(f"[bold]joint demand model[/]: {', '.join(parties)} ({how}, {scheme})"
                  " — align, features, secure training, secure inference")  # fmt: skip
    t = time.perf_counter()
    res = simulate_detailed(demand_job, parties, transport=transport, params=params,
                            per_party_params=True, policy=policy, seed=seed)  # fmt: skip
    total = time.perf_counter() - t
    mine = res.results[utility]
    stage_bytes = {s: {p: int(res.results[p]["bytes_by_stage"][s]) for p in parties}
                   for s in mine["bytes_by_stage"]}  # fmt: skip
    for stage, secs in mine["seconds"].items():
        mb = sum(stage_bytes[stage].values()) / 1e6
        console.print(f"  {stage:<30} {secs:7.2f} s {mb:9.1f} MB")
    test = mine["test"]
    models = dict(mine["models"])
    seconds = dict(mine["seconds"])
    compare: dict[str, Any] = {}
    for kind in _CHECKS[opts.model]:
        trees = kind == "secureboost"
        what = "xgboost" if trees else "ridge"
        console.print(f"[bold]check[/]: pooled plaintext {what} on this machine (check only)")
        t = time.perf_counter()
        pooled = pooled_check(series, opts, kind)
        if pooled["time"] != test["time"]:
            raise DataError("the pooled check aligned different test rows than the job (a bug)")
        # under model="both" the trees' keys carry a suffix; alone, each model has the plain keys
        sfx = "_trees" if trees and not only_trees else ""
        joint = "joint_secureboost" if sfx else "joint_secure"
        forecast = test["forecast_secureboost"] if sfx else test["forecast"]
        models[f"pooled_plaintext{sfx}"] = pooled["metrics"]
        diff = np.abs(np.asarray(forecast) - pooled["forecast"])
        cmp: dict[str, Any] = {"max_abs_forecast_diff": float(diff.max()),
                               "mape_diff_pp": abs(models[joint]["mape"]
                                                   - pooled["metrics"]["mape"])}  # fmt: skip
        if trees:
            twin = pooled["twin"]
            twin["mape_diff_pp"] = abs(models[joint]["mape"] - twin["mape"])
            cmp["veil_plaintext_twin"] = twin
        compare[f"joint_vs_pooled{sfx}"] = cmp
        seconds[f"pooled_check{sfx}"] = time.perf_counter() - t
    seconds["total_job"] = total
    order = [*_LABELS, *models]  # ridge's three, then the trees' three
    models = {m: models[m] for m in dict.fromkeys(order) if m in models}
    sb_protocol = f"secureboost-ou{opts.trees.key_bits}"
    protocol = {"ridge": opts.protocol, "secureboost": sb_protocol,
                "both": f"{opts.protocol}+{sb_protocol}"}[opts.model]  # fmt: skip
    report: dict[str, Any] = {
        "job": "demand", "transport": transport, "model": opts.model, "protocol": protocol,
        "parties": parties, "target": f"{utility}:{opts.target}",
        "n_common": mine["n_common"], "n_train": mine["n_train"], "n_test": mine["n_test"],
        "test_period": [test["time"][0], test["time"][-1]],
        "models": models, **compare,
        "data_quality": mine["quality"], "unusable_rows": mine["unusable_rows"],
        "bytes_sent": {p: s["bytes_sent"] for p, s in res.stats.items()},
        "bytes_by_stage": stage_bytes,
        "messages": {p: s["messages_sent"] for p, s in res.stats.items()},
        "seconds": seconds,
        "features": mine["features"],
        "options": asdict(opts), "policy": policy.to_mapping(),
        "ledger": merge_ledgers(res.ledgers.values()),
    }  # fmt: skip
    if "secureboost" in mine:
        report["secureboost"] = mine["secureboost"]
    if "ns_steps" in mine:
        report["newton_schulz_steps"] = mine["ns_steps"]
    write_outputs(out, report, test)
    print_summary(console, report)
    return report


def write_outputs(out: Path, report: dict[str, Any], test: dict[str, Any]) -> None:
    """``forecast.csv``, ``report.html`` then ``report.json`` (each atomic). ``forecast.csv``
    has ``time``, ``actual``, ``forecast`` (the joint model; ridge's with ``model="both"``)
    and, with ``model="both"``, ``forecast_secureboost``."""
    cols = ["time", "actual", "forecast"]
    if test.get("forecast_secureboost") is not None:
        cols.append("forecast_secureboost")
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(cols)
    for row in zip(*(test[c] for c in cols), strict=True):
        w.writerow([row[0], *(f"{v:.6g}" for v in row[1:])])
    sections = html_sections(report, test)  # figures first: errors surface before writing
    write_atomic(out / "forecast.csv", buf.getvalue().encode())
    write_html(out / "report.html", "veil — day-ahead demand forecast", sections)
    write_json(out / "report.json", report)


#: Names of the models in the report's tables.
_LABELS = {
    "utility_only": "utility only",
    "joint_secure": "joint, secure",
    "pooled_plaintext": "pooled plaintext (check)",
    "utility_only_trees": "utility only, trees",
    "joint_secureboost": "joint, SecureBoost",
    "pooled_plaintext_trees": "pooled plaintext, xgboost (check)",
}


def _model_label(report: dict[str, Any], key: str) -> str:
    if report.get("model") == "both" and key in ("utility_only", "joint_secure",
                                                  "pooled_plaintext"):  # fmt: skip
        return f"{_LABELS[key]}, ridge"
    return _LABELS.get(key, key)


def html_sections(report: dict[str, Any], test: dict[str, Any]) -> list[tuple[str, str]]:
    """The report's (heading, HTML) sections: the first test week (actual, joint secure,
    SecureBoost with ``model="both"``, utility only) and the tables. ``test`` has ``time``,
    ``actual``, ``forecast`` and optionally ``forecast_secureboost`` and ``utility_only``
    (e.g. :func:`read_forecast` of a finished run)."""
    plt = pyplot()
    both = report.get("model") == "both"
    steps = max(1, len(test["time"]))
    day = round(ft.NS_PER_DAY / max(1, _step_ns(test["time"])))
    k = min(steps, 7 * day)
    x = np.arange(k)
    fig, ax = plt.subplots(figsize=(10, 3.6))
    ax.plot(x, np.asarray(test["actual"])[:k], color="k", lw=1.2, label="actual")
    label = "joint secure ridge (MPC)" if both else "joint secure"
    ax.plot(x, np.asarray(test["forecast"])[:k], lw=1, label=label)
    if test.get("forecast_secureboost") is not None:
        ax.plot(x, np.asarray(test["forecast_secureboost"])[:k], lw=1,
                label="joint SecureBoost (HE)")  # fmt: skip
    if test.get("utility_only") is not None:
        only = "utility only (ridge)" if both else "utility only"
        ax.plot(x, np.asarray(test["utility_only"])[:k], lw=1, ls="--", label=only)
    ticks = list(range(0, k, day))
    ax.set_xticks(ticks, [test["time"][i][:10] for i in ticks], fontsize=8)
    ax.set(ylabel=report["target"], title="first week of the test period")
    ax.legend(fontsize=8)
    week = figure_png(fig)
    models = [[_model_label(report, m), m, v["mape"], v["rmse"]]
              for m, v in report["models"].items()]  # fmt: skip
    by_stage = report.get("bytes_by_stage", {})
    senders = list(report["bytes_sent"])
    stages = [[s, v, *(by_stage.get(s, {}).get(p, "") for p in senders)]
              for s, v in report["seconds"].items()]  # fmt: skip
    traffic = [[p, report["bytes_sent"][p], report["messages"][p]] for p in report["bytes_sent"]]
    quality = [[p, *(q[c] for c in ("rows", "unparsable", "duplicated_rows", "gaps",
                                     "step_minutes"))]
               for p, q in report["data_quality"].items()]  # fmt: skip
    reveals = [[e["party"], e["event"], e["tag"], e.get("from") or "device", ",".join(e["to"]),
                str(e["value"].get("shape"))] for e in report["ledger"]]  # fmt: skip
    sections = [
        ("Models (test period)", table_html(["model", "key", "MAPE %", "RMSE"], models)
         + f'<p><img src="{week}"></p><p class=note>{report["n_common"]} common timestamps '
         f"(private set intersection), {report['n_train']} training and {report['n_test']} "
         "test rows. " + _how_trained(report) + "; only the forecasts reach the utility. "
         "The pooled plaintext models are checks computed on this machine only.</p>"),
        ("Data quality (reported, not repaired)", table_html(
            ["party", "rows", "unparsable times", "duplicated rows", "gaps", "step (min)"],
            quality)),
        ("Stages (seconds)", table_html(
            ["stage", "seconds", *(f"bytes sent by {p}" for p in senders)], stages)),
        ("Traffic", table_html(["party", "bytes sent", "messages sent"], traffic)),
        ("Audit ledger: every reveal", table_html(
            ["recorded by", "event", "tag", "from", "to", "shape"], reveals)),
    ]  # fmt: skip
    return sections


def _how_trained(report: dict[str, Any]) -> str:
    settings = report.get("secureboost", {}).get("settings", {})
    trees = (f"{settings['n_estimators']} trees of depth {settings['max_depth']}, learning rate "
             f"{settings['learning_rate']}; " if settings else "")  # fmt: skip
    sb = (f"vertical SecureBoost ({trees}gradients under homomorphic encryption, each party's "
          "split thresholds kept at home), which scores the test rows by the joint prediction "
          "protocol")  # fmt: skip
    if report.get("model") == "secureboost":
        return (f"The joint model is {sb}; the pooled plaintext model is xgboost with the same "
                "settings")  # fmt: skip
    ridge = f"trained and evaluated under MPC ({report['protocol'].split('+')[0]})"
    if report.get("model") == "both":
        return (
            f"Two joint models on one alignment: ridge, {ridge}, and {sb}; the pooled "
            "checks are float64 ridge and xgboost with the trees' settings"
        )
    return f"The joint model is {ridge}"


def read_forecast(out: Path) -> dict[str, Any]:
    """``out/forecast.csv`` of a finished run as ``{time, actual, forecast}`` (and
    ``forecast_secureboost`` when the run trained both models)."""
    import pandas as pd

    df = pd.read_csv(out / "forecast.csv")
    got = {"time": df["time"].astype(str).tolist(), "actual": df["actual"].to_numpy(),
           "forecast": df["forecast"].to_numpy()}  # fmt: skip
    if "forecast_secureboost" in df.columns:
        got["forecast_secureboost"] = df["forecast_secureboost"].to_numpy()
    return got


def _step_ns(times: list[str]) -> int:
    if len(times) < 2:
        return ft.NS_PER_DAY
    t = np.array(times[:2], dtype="datetime64[ns]").astype(np.int64)
    return max(1, int(t[1] - t[0]))


def print_summary(console: Any, report: dict[str, Any]) -> None:
    """Models' MAPE/RMSE on the console."""
    from rich.table import Table

    table = Table(title=f"test period {report['test_period'][0]} … {report['test_period'][1]}")
    for col in ("model", "MAPE %", "RMSE"):
        table.add_column(col)
    for name, m in report["models"].items():
        table.add_row(name, f"{m['mape']:.3f}", f"{m['rmse']:.4f}")
    console.print(table)


__all__ = [
    "MIN_TRAIN_ROWS",
    "DemandOptions",
    "check_inputs",
    "html_sections",
    "pooled_check",
    "read_forecast",
    "run",
    "write_outputs",
]

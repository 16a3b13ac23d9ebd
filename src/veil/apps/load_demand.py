"""Day-ahead demand forecasting by a utility and a weather provider (`veil forecast`).

The utility holds the demand series (the target) and its own calendar columns (e.g.
``WorkDay``); the weather provider holds temperatures on (mostly) the same time grid. The SPMD
job (:func:`demand_job`):

1. **Read** each party's CSV (:func:`veil.apps.load_data.read_series`): unparsable and duplicated
   times are dropped and counted, gaps counted; the counts are published (``data.quality``).
2. **Align** on the shared time grid: a private set intersection (:func:`veil.psi.intersect_ids`,
   ECDH) on normalised ISO timestamps; rows are then ordered by time. Each party learns which of
   its own timestamps the other also has (for a regular grid, the other's gaps) and the size.
3. **Features**, each built by its owner (:mod:`veil.ml.features`): the utility the demand's lags
   at or beyond the horizon (looked up by time in its whole series), time-of-day and
   day-of-week indicators, its own columns and their time-of-day profiles, and the harmonics of
   the daily cycle; the weather provider cubic splines of its columns. Each owner standardises
   its columns with its own training mean and sd. Rows where an owner lacks a value (a missing
   lag, a gap) are dropped; each party publishes which aligned rows it can use (``data.rows``).
4. **Under MPC**: the cross-party interactions spline × daily harmonic (secret × secret), then
   closed-form ridge regression (:class:`veil.ml.ridge.SSRidge`) on the training rows.
5. **Secure inference** on the test rows: the forecasts are opened to the utility only
   (``forecast``); the model stays secret. The utility also fits the utility-only model on its
   own features (plaintext, at the utility) and publishes both models' MAPE and RMSE
   (``metrics.*``).

What leaks: the common timestamps (to both), the usable-row masks, the column names, the data
quality counts and the metrics (to all); the forecasts (to the utility). The weather provider's
values never leave it except as secret shares. Temperatures are the observed ones, standing in
for the provider's forecast of the next day (as in the published benchmark).

The daily harmonics are functions of the (public) timestamps, so that particular interaction
could be built by the weather provider alone; it is computed under MPC because in general the
utility's side is private (e.g. its own calendar columns), and the protocol is the same.

**SecureBoost** (``model="secureboost"``, :func:`demand_job` steps 3–5 replaced): trees need no
splines, standardisation or explicit interactions — a path that splits on temperature and then
on the time of day *is* the interaction. Each party feeds its raw columns
(:func:`utility_tree_raw`: the demand's lags, time-of-day slot, day of week and its own columns;
the weather provider its columns as they are) to vertical SecureBoost
(:class:`veil.ml.secureboost.SecureBoost`, ``reg:squarederror``): the utility is the label
holder (HE key, gradients, leaf weights), the weather provider the feature holder (its
thresholds stay with it). The test rows are scored by the joint prediction protocol (each party
evaluates its own splits) and the forecast, formed at the utility, is recorded through
``ctx.reveal`` (tag ``forecast``, to the utility only). The utility-only baseline is the same
trainer on the utility's columns alone, in plaintext at the utility
(:func:`veil.ml.secureboost.protocol.train_plaintext`). What SecureBoost leaks beyond the list
above is in ``docs/secureboost.md``: the weather provider learns the row set of every tree node
(which training times fall together), the utility the per-bin gradient sums and counts of the
weather columns and, per test row, which side of each weather split it takes — never a
temperature or threshold.

**Both** (``model="both"``, ``veil demo load``): one alignment (one PSI), then ridge's stages,
then SecureBoost's on the same rows; the union of both models' reveals and leakage. The MPC's
third party takes part in ridge only (it receives both models' row and column bookkeeping, and
ridge's metrics; the trees' metrics go to the utility and the weather provider).

Every party returns its seconds and the bytes it sent per stage (:class:`StageMeter`).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from veil.apps.load_data import Series, iso_times, modal_step, read_series
from veil.errors import ConfigError, DataError
from veil.ml import features as ft
from veil.ml.ridge import SSRidge, gram, lead_block_inverse, ridge_plain
from veil.ml.secureboost import BoostParams, SecureBoost
from veil.ml.secureboost.protocol import train_plaintext
from veil.psi import PsiOptions, intersect_ids
from veil.runtime.context import Context

Array = np.ndarray[Any, Any]

#: Fewest training rows accepted.
MIN_TRAIN_ROWS = 100

#: The job's models: closed-form ridge under MPC, vertical SecureBoost, or both on one alignment.
MODELS = ("ridge", "secureboost", "both")


class StageMeter:
    """Seconds and bytes this party sent, per stage: :meth:`lap` closes the stage that began
    at the previous lap (or at construction). Local bookkeeping, no messages."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self.seconds: dict[str, float] = {}
        self.bytes_sent: dict[str, int] = {}
        self._t = time.perf_counter()
        self._b = self._sent()

    def _sent(self) -> int:
        return int(self._ctx.stats()["bytes_sent"])

    def lap(self, stage: str) -> None:
        """Record ``stage`` as the time and traffic since the previous lap."""
        t, b = time.perf_counter(), self._sent()
        self.seconds[stage] = t - self._t
        self.bytes_sent[stage] = b - self._b
        self._t, self._b = t, b


def policy_rules(utility: str) -> list[dict[str, Any]]:
    """The job's reveal policy (default deny): bookkeeping and metrics to all, the forecasts to
    the utility only."""
    return [
        {"effect": "allow", "tag": "data.*"},
        {"effect": "allow", "tag": "psi.size"},
        {"effect": "allow", "tag": "metrics.*"},
        {"effect": "allow", "tag": "forecast", "to": [utility]},
    ]


@dataclass(frozen=True)
class Window:
    """Public split of the aligned rows: train before ``test_from``, test in
    ``[test_from, test_to)`` (``test_to`` ``None``: to the end)."""

    test_from: int
    test_to: int | None

    def split(self, times: Array, usable: Array) -> tuple[Array, Array]:
        """Positions (into ``times``) of the usable training and test rows."""
        t = np.asarray(times, dtype=np.int64)
        test = usable & (t >= self.test_from)
        if self.test_to is not None:
            test &= t < self.test_to
        train = usable & (t < self.test_from)
        return np.flatnonzero(train), np.flatnonzero(test)


def grid_step(times: Array) -> int:
    """The aligned grid's step (most frequent spacing; public: both parties hold the times)."""
    if len(times) < 2:
        raise DataError("fewer than two common timestamps")
    return modal_step(np.diff(np.asarray(times, dtype=np.int64)))


def utility_raw(
    series: Series, times: Array, target: str, step_ns: int, lags_ns: list[int]
) -> tuple[Array, list[str], Array, Array]:
    """The utility's raw features on the aligned ``times``: ``(X, names, y, usable)``."""
    y_all = series.numeric(target)
    extra_names = [c for c in series.table.columns if c != target]
    y = ft.lookup_by_time(series.times_ns, y_all, times)
    extra = {c: ft.lookup_by_time(series.times_ns, series.numeric(c), times) for c in extra_names}
    X, names = ft.target_block(times, y, extra, step_ns=step_ns, lags_ns=lags_ns,
                               lag_source=(series.times_ns, y_all))  # fmt: skip
    usable = np.isfinite(X).all(axis=1) & np.isfinite(y)
    return X, names, y, usable


def utility_tree_raw(
    series: Series, times: Array, target: str, step_ns: int, lags_ns: list[int]
) -> tuple[Array, list[str], Array, Array]:
    """The utility's raw columns for trees on the aligned ``times``: the target's lags, the
    time-of-day slot, the day of week (0 = Monday) and its other columns, as they are.
    Returns ``(X, names, y, usable)``."""
    y_all = series.numeric(target)
    y = ft.lookup_by_time(series.times_ns, y_all, times)
    t = np.asarray(times, dtype=np.int64)
    cols = [ft.lookup_by_time(series.times_ns, y_all, t - np.int64(lag)) for lag in lags_ns]
    names = [f"lag_{lag // ft.NS_PER_MINUTE}min" for lag in lags_ns]
    ft.slots_per_day(step_ns)  # the grid must divide a day
    cols += [ft.time_of_day_slot(t, step_ns).astype(np.float64),
             ft.day_of_week(t).astype(np.float64)]  # fmt: skip
    names += ["time_of_day", "day_of_week"]
    for c in series.table.columns:
        if c != target:
            cols.append(ft.lookup_by_time(series.times_ns, series.numeric(c), t))
            names.append(c)
    X = np.column_stack(cols)
    usable = np.isfinite(X).all(axis=1) & np.isfinite(y)
    return X, names, y, usable


def weather_raw(series: Series, times: Array) -> tuple[dict[str, Array], Array]:
    """The weather provider's columns on the aligned ``times`` and its usable rows."""
    cols = {c: ft.lookup_by_time(series.times_ns, series.numeric(c), times)
            for c in series.table.columns}  # fmt: skip
    if not cols:
        raise DataError(f"party {series.party!r}: {series.path} has no data columns")
    usable = np.all([np.isfinite(v) for v in cols.values()], axis=0)
    return cols, usable


def utility_design(
    X: Array, times: Array, rows: Array, train_pos: Array, spec: ft.FeatureSpec
) -> tuple[Array, Array, list[str]]:
    """Standardised utility block and daily harmonics on ``rows`` (train stats only)."""
    Zu, _, _ = ft.standardize(X[rows], train_pos)
    F, fnames = ft.daily_fourier(np.asarray(times)[rows], spec)
    Fz, _, _ = ft.standardize(F, train_pos)
    return Zu, Fz, fnames


def weather_design(
    cols: dict[str, Array], rows: Array, train_pos: Array, spec: ft.FeatureSpec
) -> tuple[Array, list[str]]:
    """Standardised splines of the weather columns on ``rows`` (knots from training rows)."""
    B, names = ft.weather_block({c: v[rows] for c, v in cols.items()}, train_pos, spec)
    Zw, _, _ = ft.standardize(B, train_pos)
    return Zw, names


def metrics(actual: Array, forecast: Array) -> dict[str, float]:
    """MAPE (percent) and RMSE."""
    a, f = np.asarray(actual, dtype=float), np.asarray(forecast, dtype=float)
    if np.any(a == 0):
        raise DataError("MAPE is undefined: the target is zero in the test period")
    return {"mape": float(100 * np.mean(np.abs(f - a) / np.abs(a))),
            "rmse": float(np.sqrt(np.mean((f - a) ** 2)))}  # fmt: skip


@dataclass(frozen=True)
class TreeSettings:
    """SecureBoost settings of the demand job (public; xgboost names). The defaults were chosen
    on the 2014 ``elecdemand`` series (train before November): more trees than this buy little
    and each costs one round of HE encryption of the training rows' gradients."""

    n_estimators: int = 50
    max_depth: int = 5
    learning_rate: float = 0.2
    max_bin: int = 32
    reg_lambda: float = 1.0
    key_bits: int = 2048
    insecure: bool = False  # smaller keys, for tests only
    workers: int = 1

    def __post_init__(self) -> None:
        BoostParams(**self.params())  # validates, naming the bad setting

    def params(self) -> dict[str, Any]:
        """:class:`~veil.ml.secureboost.BoostParams` keyword arguments (squared error)."""
        return {"objective": "reg:squarederror", **dataclasses.asdict(self)}


def _device(ctx: Context, protocol: str, utility: str, weather: str, third: str) -> Any:
    u, w, t = ctx.parties(utility, weather, third)
    if protocol == "semi2k":
        return ctx.mpc("semi2k", parties=(u, w), dealer=t)
    if protocol == "aby3":
        return ctx.mpc("aby3", parties=(u, w, t))
    raise ConfigError(f"unknown MPC protocol {protocol!r}: use semi2k or aby3")


def _fit(
    mpc: Any, u_p: Any, blocks: dict[str, Any], zu: Any, rest: Any, y: Any, alpha: float
) -> SSRidge:
    """Ridge on the training rows from sufficient statistics: the utility's own block
    ``UᵀU``, ``Uᵀy``, ``ΣU``, ``Σy`` and the inverse of its penalised block in plaintext at the
    utility (shared in), the blocks that involve the weather columns and the interactions
    (``R``) under MPC; the secure inverse is only the Schur complement on ``R``'s columns.
    Same model as ``SSRidge.fit`` on ``[U R]``, with far fewer secure products."""
    from veil.mpc import concatenate

    n, du = zu.shape

    def local() -> tuple[Array, Array, Array, Array, Array]:
        U, yy = blocks["u"][:n], blocks["y"][:n]
        inv = lead_block_inverse(U, alpha)
        return U.T @ U, U.T @ yy, U.sum(axis=0), np.asarray(yy.sum()), inv

    uu, uy, usum, ysum, inv = (h.to(mpc) for h in u_p(local, num_returns=5)())
    cross = gram(zu, rest)
    rr = gram(rest, rest)
    ry = gram(rest, y.reshape(n, 1))
    xtx = concatenate([concatenate([uu, cross], axis=1), concatenate([cross.T, rr], axis=1)])
    xty = concatenate([uy.reshape(du, 1), ry])
    x_sum = concatenate([usum, rest.sum(axis=0)])
    return SSRidge(mpc, alpha=alpha).fit_stats(xtx, xty, x_sum, ysum, n, lead_inverse=inv)


def _split(ctx: Context, utility: str, has_data: bool, times: Array, ok_u: Any, ok_w: Any,
           window: Window) -> tuple[Array, int, int]:  # fmt: skip
    """Usable training then test rows (positions into ``times``) and their published counts;
    too few of either fails at every party."""
    train_pos = test_pos = np.zeros(0, dtype=np.int64)
    if has_data:
        train_pos, test_pos = window.split(times, np.asarray(ok_u) & np.asarray(ok_w))
    counts = ctx.reveal(ctx.parties(utility)[0](lambda: (len(train_pos), len(test_pos)))(),
                        tag="data.split")  # fmt: skip
    n_train, n_test = int(counts[0]), int(counts[1])
    if n_test < 1:
        raise DataError(
            "the test window holds no usable common rows: it lies outside the data (or every "
            "row in it lacks a lag); check --test-from/--test-to"
        )
    if n_train < MIN_TRAIN_ROWS:
        raise DataError(f"only {n_train} usable common rows before --test-from; "
                        f"need at least {MIN_TRAIN_ROWS} to train")  # fmt: skip
    return np.concatenate([train_pos, test_pos]), n_train, n_test


@dataclass(frozen=True)
class _Aligned:
    """What every stage starts from: the party's series (``None`` at a party without data), the
    common times (sorted), their published count and data-quality counts, the public split."""

    utility: str
    weather: str
    series: Series | None
    target: str
    times: Array
    n: int
    quality: dict[str, Any]
    window: Window
    horizon_ns: int


def _secureboost_stages(
    ctx: Context, a: _Aligned, meter: StageMeter, settings: TreeSettings, prefix: str = ""
) -> dict[str, Any]:
    """Features, SecureBoost training, joint inference and evaluation (module docstring).
    Stages are recorded as ``prefix + name`` in ``meter``."""
    utility, weather, series, times, n = a.utility, a.weather, a.series, a.times, a.n
    me = ctx.party
    u_p, w_p = ctx.parties(utility, weather)
    lags = ft.lags_for_horizon(a.horizon_ns)
    X = y = None
    names: list[str] = []
    ok = np.zeros(n, dtype=bool)
    if series is not None and me == utility:
        X, names, y, ok = utility_tree_raw(series, times, a.target, grid_step(times), lags)
    elif series is not None:
        cols, ok = weather_raw(series, times)
        X, names = np.column_stack(list(cols.values())), list(cols)
    ok_u = ctx.reveal(u_p(lambda: ok)(), tag="data.rows")
    ok_w = ctx.reveal(w_p(lambda: ok)(), tag="data.rows")
    rows, n_train, n_test = _split(ctx, utility, series is not None, times, ok_u, ok_w, a.window)
    names_u = ctx.reveal(u_p(lambda: names)(), tag="data.columns")
    names_w = ctx.reveal(w_p(lambda: names)(), tag="data.columns")
    Xr = None if X is None else X[rows]
    meter.lap(prefix + "features")

    params = settings.params()
    sb = SecureBoost(ctx, utility, [weather], **params)
    y_tr = None if y is None else y[rows][:n_train]
    sb.fit(None if Xr is None else Xr[:n_train], y_tr)
    meter.lap(prefix + "secure_training")

    pred = sb.predict(None if Xr is None else Xr[n_train:])
    forecast = ctx.reveal(u_p(lambda: pred)(), to=u_p, tag="forecast")
    meter.lap(prefix + "secure_inference")

    alone = None

    def evaluate() -> dict[str, Any]:
        nonlocal alone
        assert Xr is not None and y is not None
        y_rows = y[rows]
        twin = train_plaintext(utility, Xr[:n_train], y_rows[:n_train], BoostParams(**params))
        alone = twin.predict_own(Xr[n_train:])
        return {"utility_only": metrics(y_rows[n_train:], alone),
                "joint_secure": metrics(y_rows[n_train:], forecast)}  # fmt: skip

    # to the model's two parties: a third party of the job (model="both") does not wait
    # through the training for them
    models = ctx.reveal(u_p(evaluate)(), to=[u_p, w_p], tag="metrics.models")
    meter.lap(prefix + "evaluation")
    out: dict[str, Any] = {
        "n_common": n, "n_train": n_train, "n_test": n_test, "quality": a.quality,
        "unusable_rows": {utility: int(n - np.count_nonzero(ok_u)),
                          weather: int(n - np.count_nonzero(ok_w))},
        "models": models, "seconds": meter.seconds, "bytes_by_stage": meter.bytes_sent,
        "secureboost": {"n_trees": sb.n_trees_, "settings": dataclasses.asdict(settings),
                        "label_holder_seconds": dict(sb.seconds_)},
        "features": {utility: list(names_u), weather: list(names_w), "secure": []},
    }  # fmt: skip
    if me == utility:
        assert y is not None
        out["test"] = {
            "time": iso_times(times[rows[n_train:]]),
            "actual": y[rows][n_train:],
            "forecast": np.asarray(forecast, dtype=float),
            "utility_only": alone,
        }
    return out


def _ridge_stages(
    ctx: Context,
    a: _Aligned,
    meter: StageMeter,
    third: str,
    protocol: str,
    alpha: float,
    spec: ft.FeatureSpec,
) -> dict[str, Any]:
    """Owner-side features, interactions and ridge under MPC, secure inference, evaluation
    (module docstring, steps 3–5)."""
    utility, weather, series, times, n = a.utility, a.weather, a.series, a.times, a.n
    me = ctx.party
    u_p, w_p = ctx.parties(utility, weather)
    lags = ft.lags_for_horizon(a.horizon_ns, weekly=spec.weekly_lag)
    u_raw = w_cols = None
    ok = np.zeros(n, dtype=bool)
    if series is not None and me == utility:
        step = grid_step(times)
        Xu_raw, u_names, y, ok = utility_raw(series, times, a.target, step, lags)
        u_raw = (Xu_raw, u_names, y)
    elif series is not None:
        w_cols, ok = weather_raw(series, times)
    ok_u = ctx.reveal(u_p(lambda: ok)(), tag="data.rows")
    ok_w = ctx.reveal(w_p(lambda: ok)(), tag="data.rows")
    rows, n_train, n_test = _split(ctx, utility, series is not None, times, ok_u, ok_w, a.window)
    tr = np.arange(n_train)  # positions of the training rows within ``rows``
    blocks: dict[str, Any] = {}
    if u_raw is not None:
        Zu, Fz, f_names = utility_design(u_raw[0], times, rows, tr, spec)
        blocks = {"u": Zu, "f": Fz, "y": u_raw[2][rows], "names": u_raw[1] + f_names}
    if w_cols is not None and series is not None:
        try:
            Zw, w_names = weather_design(w_cols, rows, tr, spec)
        except DataError as exc:
            raise DataError(f"party {me!r}: {series.path}: {exc}") from None
        blocks = {"w": Zw, "names": w_names}
    names_u = ctx.reveal(u_p(lambda: blocks.get("names"))(), tag="data.columns")
    names_w = ctx.reveal(w_p(lambda: blocks.get("names"))(), tag="data.columns")
    n_f = 2 * spec.fourier_k
    names_u, f_names = list(names_u[:-n_f]), list(names_u[-n_f:])
    meter.lap("features")

    mpc = _device(ctx, protocol, utility, weather, third)
    zu = u_p(lambda: blocks.get("u"))().to(mpc)
    fz = u_p(lambda: blocks.get("f"))().to(mpc)
    zw = w_p(lambda: blocks.get("w"))().to(mpc)
    y_tr = u_p(lambda: blocks["y"][:n_train] if "y" in blocks else None)().to(mpc)
    m, kw = n_train + n_test, len(names_w)
    inter = (zw.reshape(m, kw, 1) * fz.reshape(m, 1, n_f)).reshape(m, kw * n_f)
    from veil.mpc import concatenate

    X = concatenate([zu, zw, inter], axis=1)
    meter.lap("secure_features")

    ridge = _fit(mpc, u_p, blocks, zu[:n_train], X[:n_train, zu.shape[1] :], y_tr, alpha)
    meter.lap("secure_training")

    forecast = ctx.reveal(ridge.predict(X[n_train:]), to=u_p, tag="forecast")
    meter.lap("secure_inference")

    alone = None

    def evaluate() -> dict[str, Any]:
        nonlocal alone
        y_rows = blocks["y"]
        w, b = ridge_plain(blocks["u"][:n_train], y_rows[:n_train], alpha)
        alone = blocks["u"][n_train:] @ w + b
        return {"utility_only": metrics(y_rows[n_train:], alone),
                "joint_secure": metrics(y_rows[n_train:], forecast)}  # fmt: skip

    models = ctx.reveal(u_p(evaluate)(), tag="metrics.models")
    meter.lap("evaluation")
    out: dict[str, Any] = {
        "n_common": n, "n_train": n_train, "n_test": n_test, "quality": a.quality,
        "unusable_rows": {utility: int(n - np.count_nonzero(ok_u)),
                          weather: int(n - np.count_nonzero(ok_w))},
        "models": models, "seconds": meter.seconds, "bytes_by_stage": meter.bytes_sent,
        "ns_steps": ridge.ns_steps_used_,
        "features": {utility: names_u, weather: names_w,
                     "secure": ft.pairwise_names(names_w, f_names)},
    }  # fmt: skip
    if me == utility:
        out["test"] = {
            "time": iso_times(times[rows[n_train:]]),
            "actual": blocks["y"][n_train:],
            "forecast": np.asarray(forecast, dtype=float),
            "utility_only": alone,
        }
    return out


def _join(ridge: dict[str, Any], trees: dict[str, Any]) -> dict[str, Any]:
    """One result for ``model="both"``: ridge's keys as they are, the trees' models as
    ``utility_only_trees`` / ``joint_secureboost``, their stages already prefixed."""
    if (ridge["n_train"], ridge["n_test"]) != (trees["n_train"], trees["n_test"]):
        raise DataError("ridge and SecureBoost used different rows (a bug): "
                        f"{ridge['n_train']}/{ridge['n_test']} vs "
                        f"{trees['n_train']}/{trees['n_test']} training/test rows")  # fmt: skip
    out = dict(ridge)
    tm = trees["models"]  # None at the third party (not a recipient)
    if tm is not None:
        out["models"] = {**ridge["models"], "utility_only_trees": tm["utility_only"],
                         "joint_secureboost": tm["joint_secure"]}  # fmt: skip
    out["secureboost"] = trees["secureboost"]
    out["features"] = {**ridge["features"], "secureboost": trees["features"]}
    if "test" in ridge:
        rt, tt = ridge["test"], trees["test"]
        if rt["time"] != tt["time"]:
            raise DataError("ridge and SecureBoost forecast different test times (a bug)")
        out["test"] = {**rt, "forecast_secureboost": tt["forecast"],
                       "utility_only_trees": tt["utility_only"]}  # fmt: skip
    return out


def demand_job(
    ctx: Context,
    *,
    utility: str,
    weather: str,
    third: str,
    csv: str,
    time_col: str,
    target: str,
    test_from: int,
    test_to: int | None = None,
    horizon_ns: int = ft.NS_PER_DAY,
    protocol: str = "semi2k",
    alpha: float = 1.0,
    n_knots: int = 5,
    degree: int = 3,
    fourier_k: int = 3,
    model: str = "ridge",
    trees: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """SPMD job (see module docstring). Data parties pass their own ``csv``; ``third`` is the
    semi2k dealer or aby3's third computing party (it holds no data; not a party of the job
    with ``model="secureboost"``, whose settings ``trees`` are :class:`TreeSettings` fields).

    ``model="both"`` trains ridge (MPC) and then SecureBoost on the same alignment (one PSI):
    ridge's results under the usual keys, SecureBoost's models as ``utility_only_trees`` and
    ``joint_secureboost``, its stages as ``secureboost.<stage>``, its test forecasts as
    ``test.forecast_secureboost``. The third party takes part in ridge only.

    Every party returns its per-stage ``seconds`` and ``bytes_by_stage`` (bytes it sent)."""
    if model not in MODELS:
        raise ConfigError(f"unknown model {model!r}: use ridge, secureboost or both")
    settings = TreeSettings(**(trees or {}))
    me = ctx.party
    spec = ft.FeatureSpec(n_knots=n_knots, degree=degree, fourier_k=fourier_k)
    u_p, w_p = ctx.parties(utility, weather)
    meter = StageMeter(ctx)
    series = read_series(csv, me, time_col) if me in (utility, weather) else None
    if series is not None and me == utility:
        series.numeric(target)  # a non-numeric target fails here, naming party and file
    quality = {p.name: ctx.reveal(p(lambda: series.quality.as_dict() if series else None)(),
                                  tag="data.quality") for p in (u_p, w_p)}  # fmt: skip
    psi_key = ctx.next_key("psi")
    times = np.zeros(0, dtype=np.int64)
    if series is not None:
        ids = iso_times(series.times_ns)
        rows = intersect_ids(ctx.link, psi_key, me, [utility, weather], ids, PsiOptions())
        times = np.sort(series.times_ns[rows])
    n = int(ctx.reveal(u_p(lambda: len(times))(), tag="psi.size"))
    if n < 2:
        raise DataError(f"parties {utility!r} and {weather!r} share {n} timestamps; check that "
                        "both files cover the same period (and the --time column)")  # fmt: skip
    meter.lap("align")
    aligned = _Aligned(utility, weather, series, target, times, n, quality,
                       Window(test_from, test_to), horizon_ns)  # fmt: skip
    if model == "secureboost":
        return _secureboost_stages(ctx, aligned, meter, settings)
    ridge = _ridge_stages(ctx, aligned, meter, third, protocol, alpha, spec)
    if model == "ridge":
        return ridge
    # the third party holds no data and takes no part in SecureBoost's messages; it receives
    # the published bookkeeping (rows, split, columns) but not the trees' metrics, so it
    # finishes without waiting for their training
    return _join(ridge, _secureboost_stages(ctx, aligned, meter, settings, "secureboost."))

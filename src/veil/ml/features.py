"""Feature builders for time-series regression: splines, calendar terms, lags (pure numpy).

Every function here is party-free and deterministic: an owner calls it on its own columns, and
the plaintext checks call the very same functions on pooled data, so "the same model" means the
same numbers. Fitted quantities (spline range, standardisation) come from the *training* rows
only, so the test period never leaks into the model.

* :func:`bspline_basis` — cubic B-splines on uniform knots over the training range, constant
  outside it (the basis of scikit-learn's ``SplineTransformer(knots="uniform",
  extrapolation="constant")``, checked against it in the tests).
* :func:`fourier_terms`, :func:`one_hot` — periodic and categorical calendar terms.
* :func:`lag_by_time` — a series' value ``lag`` earlier, looked up by *time* (not by row), so a
  gap in the series gives a missing lag (NaN) instead of a silently shifted one.
* :func:`standardize` — centre and scale by the training rows' mean and standard deviation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from veil.errors import DataError

Array = np.ndarray[Any, Any]

NS_PER_MINUTE = 60 * 10**9
NS_PER_DAY = 24 * 60 * NS_PER_MINUTE


@dataclass(frozen=True)
class FeatureSpec:
    """How the demand model's features are built (agreed by every party; public).

    Parameters
    ----------
    n_knots, degree:
        Splines of each weather column: ``n_knots`` uniform knots over the training range,
        piecewise polynomials of ``degree``; ``n_knots + degree - 2`` columns (no bias column).
    fourier_k:
        Harmonics of the daily cycle used in the (secure) spline × time-of-day interactions.
    weekly_lag:
        Also use the target's value 7 days earlier (when that is at or beyond the horizon).
    """

    n_knots: int = 5
    degree: int = 3
    fourier_k: int = 3
    weekly_lag: bool = True

    def __post_init__(self) -> None:
        if self.n_knots < 2 or not 1 <= self.degree <= 5 or self.fourier_k < 1:
            raise DataError("need n_knots >= 2, 1 <= degree <= 5 and fourier_k >= 1")


def bspline_basis(
    x: Array, lo: float, hi: float, n_knots: int = 5, degree: int = 3, include_bias: bool = False
) -> Array:
    """B-spline basis of ``x`` on ``n_knots`` uniform knots over ``[lo, hi]``.

    Values outside ``[lo, hi]`` take the basis at the nearest end (constant extrapolation).
    Returns ``len(x) × (n_knots + degree - 1)`` columns, one fewer without the bias column
    (the basis sums to one, so with an intercept the last column is redundant).
    """
    x = np.asarray(x, dtype=np.float64)
    if not hi > lo:
        raise DataError(f"spline range is empty: [{lo}, {hi}] (a constant column?)")
    h = (hi - lo) / (n_knots - 1)
    knots = lo + h * np.arange(-degree, n_knots + degree)
    xc = np.clip(x, lo, hi)
    # degree 0: indicator of [t_j, t_{j+1}); the extended knots make x = hi fall inside one
    basis = ((xc[:, None] >= knots[None, :-1]) & (xc[:, None] < knots[None, 1:])).astype(float)
    for k in range(1, degree + 1):
        left = (xc[:, None] - knots[None, : -k - 1]) / (knots[k:-1] - knots[: -k - 1])[None, :]
        right = (knots[None, k + 1 :] - xc[:, None]) / (knots[k + 1 :] - knots[1:-k])[None, :]
        basis = left * basis[:, :-1] + right * basis[:, 1:]
    out: Array = basis if include_bias else basis[:, :-1]
    return out


def fourier_terms(phase: Array, period: float, k: int) -> Array:
    """``sin(2πjφ/P), cos(2πjφ/P)`` for ``j = 1..k`` (``2k`` columns)."""
    a = 2.0 * np.pi * np.asarray(phase, dtype=np.float64) / period
    return np.column_stack([f(j * a) for j in range(1, k + 1) for f in (np.sin, np.cos)])


def one_hot(codes: Array, n_levels: int, *, drop_first: bool = True) -> Array:
    """Indicator columns of integer ``codes`` in ``[0, n_levels)`` (level 0 dropped by default:
    with an intercept it is redundant)."""
    codes = np.asarray(codes, dtype=np.int64)
    if codes.size and (codes.min() < 0 or codes.max() >= n_levels):
        raise DataError(f"category codes must lie in [0, {n_levels})")
    out: Array = np.eye(n_levels)[codes]
    return out[:, 1:] if drop_first else out


def lookup_by_time(times_ns: Array, values: Array, query_ns: Array) -> Array:
    """``values`` at the times ``query_ns``; NaN where a time is not in ``times_ns`` (unique)."""
    t = np.asarray(times_ns, dtype=np.int64)
    v = np.asarray(values, dtype=np.float64)
    q = np.asarray(query_ns, dtype=np.int64)
    out = np.full(len(q), np.nan)
    if not len(t):
        return out
    order = np.argsort(t, kind="stable")
    ts = t[order]
    pos = np.clip(np.searchsorted(ts, q), 0, len(ts) - 1)
    hit = ts[pos] == q
    out[hit] = v[order][pos[hit]]
    return out


def lag_by_time(times_ns: Array, values: Array, lag_ns: int) -> Array:
    """``values`` at ``time - lag`` for every row, NaN where that time is not in the series.

    ``times_ns`` must be unique (int64 nanoseconds); order does not matter.
    """
    t = np.asarray(times_ns, dtype=np.int64)
    return lookup_by_time(t, values, t - np.int64(lag_ns))


def standardize(X: Array, train: Array) -> tuple[Array, Array, Array]:
    """``(X - mean) / sd`` with the training rows' mean and (population) sd; a constant column
    gets sd 1. Returns ``(Z, mean, sd)``."""
    X = np.asarray(X, dtype=np.float64)
    mu = X[train].mean(axis=0)
    sd = X[train].std(axis=0)
    sd = np.where(sd > 1e-12, sd, 1.0)
    return (X - mu) / sd, mu, sd


def slots_per_day(step_ns: int) -> int:
    """Number of time-of-day slots for a grid of ``step_ns`` (must divide a day)."""
    if step_ns <= 0 or NS_PER_DAY % step_ns:
        raise DataError(
            f"the time step ({step_ns / NS_PER_MINUTE:g} minutes) does not divide a day; "
            "resample the series to a regular grid (e.g. 15, 30 or 60 minutes)"
        )
    return NS_PER_DAY // step_ns


def time_of_day_slot(times_ns: Array, step_ns: int) -> Array:
    """Index of each time's slot within its day (0 at midnight)."""
    t = np.asarray(times_ns, dtype=np.int64)
    out: Array = (t % NS_PER_DAY) // step_ns
    return out


def day_of_week(times_ns: Array) -> Array:
    """0 = Monday … 6 = Sunday (naive times, no daylight saving)."""
    days = np.asarray(times_ns, dtype=np.int64) // NS_PER_DAY
    out: Array = (days + 3) % 7  # 1970-01-01 was a Thursday
    return out


def lags_for_horizon(horizon_ns: int, *, weekly: bool = True) -> list[int]:
    """Lags at or beyond the horizon: the horizon rounded up to whole days, and 7 days."""
    if horizon_ns <= 0:
        raise DataError("the horizon must be positive")
    days = -(-horizon_ns // NS_PER_DAY)
    lags = [days * NS_PER_DAY]
    if weekly and lags[0] < 7 * NS_PER_DAY:
        lags.append(7 * NS_PER_DAY)
    return lags


def target_block(
    times_ns: Array,
    target: Array,
    extra: Mapping[str, Array],
    *,
    step_ns: int,
    lags_ns: Sequence[int],
    lag_source: tuple[Array, Array] | None = None,
) -> tuple[Array, list[str]]:
    """The target owner's raw features: lags, time-of-day and day-of-week indicators, its
    other columns, and each other column × time of day (e.g. the daily profile of work days).

    ``lag_source`` (times, values) is the owner's whole series (default: these rows), so lags
    may reach rows outside the aligned set.
    """
    src_t, src_v = lag_source if lag_source is not None else (times_ns, target)
    cols: list[Array] = []
    names: list[str] = []
    t = np.asarray(times_ns, dtype=np.int64)
    for lag in lags_ns:
        cols.append(lookup_by_time(src_t, src_v, t - np.int64(lag))[:, None])
        names.append(f"lag_{lag // NS_PER_MINUTE}min")
    n_slots = slots_per_day(step_ns)
    tod = one_hot(time_of_day_slot(times_ns, step_ns), n_slots)
    dow = one_hot(day_of_week(times_ns), 7)
    cols += [tod, dow]
    names += [f"tod={i}" for i in range(1, n_slots)] + [f"dow={i}" for i in range(1, 7)]
    for name, v in extra.items():
        v = np.asarray(v, dtype=np.float64)[:, None]
        cols += [v, v * tod]
        names += [name] + [f"{name}*tod={i}" for i in range(1, n_slots)]
    return np.concatenate(cols, axis=1), names


def weather_block(
    columns: Mapping[str, Array], train: Array, spec: FeatureSpec
) -> tuple[Array, list[str]]:
    """Splines of each of the owner's columns, knots over its training range."""
    cols: list[Array] = []
    names: list[str] = []
    for name, v in columns.items():
        v = np.asarray(v, dtype=np.float64)
        lo, hi = float(np.min(v[train])), float(np.max(v[train]))
        if not hi > lo:
            raise DataError(f"column {name!r} is constant over the training period")
        b = bspline_basis(v, lo, hi, spec.n_knots, spec.degree)
        cols.append(b)
        names += [f"{name}_spline{i}" for i in range(b.shape[1])]
    if not cols:
        raise DataError("no weather columns to build features from")
    return np.concatenate(cols, axis=1), names


def daily_fourier(times_ns: Array, spec: FeatureSpec) -> tuple[Array, list[str]]:
    """Harmonics of the time of day (for the spline × time-of-day interactions)."""
    phase = np.asarray(times_ns, dtype=np.int64) % NS_PER_DAY
    f = fourier_terms(phase.astype(np.float64), float(NS_PER_DAY), spec.fourier_k)
    names = [f"{fn}{j}_day" for j in range(1, spec.fourier_k + 1) for fn in ("sin", "cos")]
    return f, names


def pairwise_products(a: Array, b: Array) -> Array:
    """Every column of ``a`` times every column of ``b`` (``a``-major), as the secure job does."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    out: Array = (a[:, :, None] * b[:, None, :]).reshape(a.shape[0], -1)
    return out


def pairwise_names(a: Sequence[str], b: Sequence[str]) -> list[str]:
    """Names of :func:`pairwise_products`' columns."""
    return [f"{x}*{y}" for x in a for y in b]

"""SimBench electric-vehicle charging profiles: loading, splitting over operators, windowing.

The data are SimBench's 15 EV charging-station load profiles (``HLS_*``: home charging,
``APLS_*``: public charging; 15-minute active power relative to each station's rating, the year
2016) from ``LoadProfile.csv`` of the ``simbench`` package. SimBench data are under the Open
Database License: they are read from the installed package at run time and never shipped with
veil. Only the CSV is read; the ``simbench`` module itself (and its ``pandapower`` dependency)
is never imported.

Every function here is party-free: an operator calls them on its own stations only.

Forecasting task: for each station and day ``d``, predict the 96 quarter-hour values of day
``d`` from the 7 days before it and the calendar. The features (see :func:`day_features`) are
hourly means of yesterday, of the 7-day mean profile and of the same weekday last week
(3 × 24), the day of week (one-hot, 7) and a German public-holiday flag (1): 80 in all.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from veil.errors import ConfigError, DataError
from veil.fl.loop import ClientData

Array = np.ndarray[Any, Any]

#: The 15 EV charging-station profiles of SimBench (column prefix before ``_pload``).
STATIONS: tuple[str, ...] = (
    "HLS_A_3.7", "HLS_B_3.7", "HLS_C_3.7", "HLS_A_11.0", "HLS_B_11.0", "HLS_A_22.0",
    "APLS_A_3.7", "APLS_B_3.7", "APLS_A_11.0", "APLS_B_11.0", "APLS_A_22.0", "APLS_A_50.0",
    "APLS_0.033", "APLS_0.1014", "APLS_0.5202",
)  # fmt: skip
#: Quarter-hours per day.
SLOTS = 96
#: Days of history behind each forecast.
LOOKBACK = 7
#: Features per station-day (see :func:`day_features`).
N_FEATURES = 3 * 24 + 7 + 1
#: Where ``LoadProfile.csv`` sits inside the installed ``simbench`` package.
PROFILE_PATH = ("networks", "1-complete_data-mixed-all-0-sw", "LoadProfile.csv")
INSTALL_HINT = "pip install --no-deps 'simbench==1.6.3'"


@dataclass(frozen=True)
class Profiles:
    """Daily load profiles: ``loads[s, d]`` is station ``stations[s]``'s day ``days[d]``."""

    stations: tuple[str, ...]
    days: tuple[dt.date, ...]
    loads: Array  # (n_stations, n_days, 96), float64

    def station(self, name: str) -> Array:
        """One station's ``(n_days, 96)`` profiles."""
        return np.asarray(self.loads[self.stations.index(name)])


def simbench_profile_csv() -> Path:
    """Path of ``LoadProfile.csv`` in the installed ``simbench`` package (not imported).

    Raises
    ------
    ConfigError
        If the package is not installed, with the command that installs it.
    """
    spec = importlib.util.find_spec("simbench")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "the EV forecasting demo reads SimBench's load profiles (ODbL data, not shipped "
            f"with veil); install them with: {INSTALL_HINT}"
        )
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*PROFILE_PATH)
    if not path.is_file():
        raise ConfigError(
            f"the installed simbench package has no {'/'.join(PROFILE_PATH)} ({path}); "
            f"reinstall it with: {INSTALL_HINT}"
        )
    return path


def load_profiles(path: Path | str | None = None, stations: Sequence[str] = STATIONS) -> Profiles:
    """Read ``stations``' active-power profiles from a SimBench ``LoadProfile.csv``.

    ``path`` defaults to the installed package's file (:func:`simbench_profile_csv`). The file is
    ``;``-separated with a ``time`` column (``DD.MM.YYYY HH:MM`` on the local clock, 15-minute
    steps; SimBench's labels follow German summer time, so a day is 96 consecutive rows from the
    first midnight: a day of standard time) and one
    ``<station>_pload`` column per station. Raises :class:`DataError` naming the file if a column
    is missing, a time does not parse, the steps are not whole days of 15 minutes, or a value is
    missing or not finite.
    """
    import pandas as pd

    csv = simbench_profile_csv() if path is None else Path(path)
    if not csv.is_file():
        raise DataError(f"load profile file {csv} not found")
    wanted = [f"{s}_pload" for s in stations]
    try:
        header = list(pd.read_csv(csv, sep=";", nrows=0).columns)
        missing = [c for c in ["time", *wanted] if c not in header]
        if missing:
            raise DataError(f"{csv}: no column(s) {missing}; is this a SimBench LoadProfile.csv?")
        df = pd.read_csv(csv, sep=";", usecols=["time", *wanted])
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {csv} as a SimBench load profile: {exc}") from None
    times = pd.to_datetime(df["time"], format="%d.%m.%Y %H:%M", errors="coerce")
    if times.isna().any():
        bad = df["time"][times.isna()].iloc[0]
        raise DataError(f"{csv}: unparsable time {bad!r} (expected DD.MM.YYYY HH:MM)")
    t = times.to_numpy()
    if len(t) % SLOTS or t[0] != t[0].astype("datetime64[D]") or not _steps_ok(t):
        raise DataError(
            f"{csv}: times must be whole days of consecutive 15-minute steps from midnight "
            "(local clock changes to and from summer time allowed)"
        )
    values = df[wanted].to_numpy(dtype=np.float64)
    if not np.isfinite(values).all():
        raise DataError(f"{csv}: missing or non-finite load values")
    # Rows are consecutive quarter-hours; a "day" is 96 of them from the first midnight, i.e. a
    # day of standard time (an hour later on the wall clock during summer time).
    n_days = len(t) // SLOTS
    first = pd.Timestamp(t[0]).date()
    days = tuple(first + dt.timedelta(days=i) for i in range(n_days))
    loads = values.T.reshape(len(wanted), n_days, SLOTS)
    return Profiles(tuple(stations), days, loads)


def _steps_ok(t: Array) -> bool:
    """Consecutive quarter-hours on a local clock: 15 minutes, or the summer-time jumps
    (01:45 -> 03:00 in spring, 02:45 -> 02:00 in autumn)."""
    steps = np.diff(t).astype("timedelta64[m]").astype(np.int64)
    minute_of_day = (t[:-1] - t[:-1].astype("datetime64[D]")).astype("timedelta64[m]")
    start = minute_of_day.astype(np.int64)
    spring = (steps == 75) & (start == 105)
    autumn = (steps == -45) & (start == 165)
    return bool(np.all((steps == 15) | spring | autumn))


def split_operators(
    operators: Sequence[str], seed: int, stations: Sequence[str] = STATIONS
) -> dict[str, list[str]]:
    """Deal ``stations`` over ``operators`` at random (seeded), as evenly as possible."""
    if len(operators) < 1 or len(set(operators)) != len(operators):
        raise ConfigError(f"operators must be distinct names, got {list(operators)}")
    if len(stations) < len(operators):
        raise ConfigError(f"{len(stations)} stations cannot be split over {len(operators)}")
    order = np.random.default_rng([seed, 0xE7]).permutation(len(stations))
    return {op: [stations[i] for i in sorted(order[k :: len(operators)])]
            for k, op in enumerate(operators)}  # fmt: skip


def easter(year: int) -> dt.date:
    """Gregorian Easter Sunday (anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    lw = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 19 * lw) // 433
    month = (h + lw - 7 * m + 90) // 25
    return dt.date(year, month, (h + lw - 7 * m + 33 * month + 19) % 32)


def german_holidays(year: int) -> frozenset[dt.date]:
    """Germany's nationwide public holidays of ``year`` (regional ones excluded)."""
    e = easter(year)
    moving = (-2, 1, 39, 50)  # Good Friday, Easter Monday, Ascension, Whit Monday
    fixed = ((1, 1), (5, 1), (10, 3), (12, 25), (12, 26))
    return frozenset([e + dt.timedelta(days=k) for k in moving]
                     + [dt.date(year, m, d) for m, d in fixed])  # fmt: skip


def day_features(history: Array, day: dt.date) -> Array:
    """Features for forecasting ``day`` from the ``(7, 96)`` profiles of the 7 days before it.

    Layout: hourly means of yesterday (24), of the 7-day mean profile (24), of the same weekday
    a week ago (24); day of week one-hot (7, Monday first); German public holiday (1).
    """
    if history.shape != (LOOKBACK, SLOTS):
        raise DataError(f"history must be ({LOOKBACK}, {SLOTS}), got {history.shape}")
    hourly = history.reshape(LOOKBACK, 24, SLOTS // 24).mean(axis=2)
    cal = np.zeros(8)
    cal[day.weekday()] = 1.0
    cal[7] = float(day in german_holidays(day.year))
    return np.concatenate([hourly[-1], hourly.mean(axis=0), hourly[0], cal])


def station_windows(
    loads: Array, days: Sequence[dt.date], first: dt.date, last: dt.date
) -> tuple[Array, Array, list[dt.date]]:
    """One station's ``(X, Y, target days)`` for every target day in ``[first, last]``.

    ``loads`` is the station's ``(n_days, 96)`` array over ``days``; a target day needs its 7
    previous days in the data (earlier target days are skipped).
    """
    X, Y, out = [], [], []
    for i, d in enumerate(days):
        if d < first or d > last or i < LOOKBACK or days[i - LOOKBACK] != d - dt.timedelta(7):
            continue
        X.append(day_features(loads[i - LOOKBACK : i], d))
        Y.append(loads[i])
        out.append(d)
    return np.array(X).reshape(-1, N_FEATURES), np.array(Y).reshape(-1, SLOTS), out


@dataclass(frozen=True)
class Split:
    """Where training ends and the forecast test window lies (inclusive dates)."""

    test_from: dt.date
    test_to: dt.date

    @property
    def test_days(self) -> list[dt.date]:
        """The test window's days, in order."""
        n = (self.test_to - self.test_from).days + 1
        return [self.test_from + dt.timedelta(days=i) for i in range(n)]


def operator_data(profiles: Profiles, stations: Sequence[str], split: Split) -> ClientData:
    """An operator's rows: training days before ``split.test_from``, held out the test window.

    Rows are station-days of all its ``stations`` (stacked station by station).
    """
    if not stations:
        raise ConfigError("an operator needs at least one station")
    parts = []
    for s in stations:
        loads = profiles.station(s)
        tr = station_windows(loads, profiles.days, dt.date.min, split.test_from - dt.timedelta(1))
        te = station_windows(loads, profiles.days, split.test_from, split.test_to)
        if len(te[2]) != len(split.test_days):
            raise DataError(
                f"station {s}: the data do not cover the test window {split.test_from} to "
                f"{split.test_to} with {LOOKBACK} days of history"
            )
        if not tr[2]:
            raise DataError(f"station {s}: no training days before {split.test_from}")
        parts.append((tr[0], tr[1], te[0], te[1]))
    return ClientData(*(np.concatenate([p[k] for p in parts]) for k in range(4)))


def forecast_metrics(forecast: Array, actual: Array) -> dict[str, float]:
    """MAE, RMSE and peak error of day-ahead forecasts, both ``(n_days, 96)``.

    ``peak_error`` is the mean over days of ``|forecast - actual|`` at the quarter-hour of the
    day's actual peak (the error a planner sees when the load is highest).
    """
    if forecast.shape != actual.shape or forecast.ndim != 2:
        raise DataError(f"forecast {forecast.shape} and actual {actual.shape} must be (days, 96)")
    err = forecast - actual
    peak = np.argmax(actual, axis=1)
    rows = np.arange(actual.shape[0])
    return {
        "mae": float(np.mean(np.abs(err))),
        "rmse": float(np.sqrt(np.mean(err * err))),
        "peak_error": float(np.mean(np.abs(err[rows, peak]))),
    }

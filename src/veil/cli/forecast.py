"""``veil forecast``: a day-ahead forecast across a target owner and a weather provider."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from veil.cli.common import check_out_dir, user_errors


def forecast(
    party: Annotated[list[str], typer.Option(help="A party and its CSV: NAME=FILE (twice).")],
    time: Annotated[str, typer.Option("--time", help="Time column (in every file).")],
    target: Annotated[str, typer.Option(help="What to forecast: PARTY:COLUMN.")],
    test_from: Annotated[
        str, typer.Option(help="First time of the test period (e.g. 2014-11-01).")
    ],
    out: Annotated[Path, typer.Option(help="Folder for report.json, forecast.csv, report.html.")],
    test_to: Annotated[
        str | None, typer.Option(help="Last day of the test period (default: the end).")
    ] = None,
    horizon: Annotated[str, typer.Option(help="Forecast horizon, e.g. 1d or 36h.")] = "1d",
    model: Annotated[
        str,
        typer.Option(
            help="ridge (splines + interactions, trained under MPC) or secureboost (vertical "
            "gradient-boosted trees on the raw columns, gradients under HE; pooled check: "
            "xgboost), or both (one alignment, both models reported)."
        ),
    ] = "ridge",
    protocol: Annotated[str, typer.Option(help="ridge: semi2k (+ dealer) or aby3.")] = "semi2k",
    alpha: Annotated[float, typer.Option(help="Ridge penalty.")] = 1.0,
    trees: Annotated[
        int | None, typer.Option(help="secureboost: number of trees (default 50).")
    ] = None,
    depth: Annotated[int | None, typer.Option(help="secureboost: tree depth (default 5).")] = None,
    learning_rate: Annotated[
        float | None, typer.Option(help="secureboost: learning rate (default 0.2).")
    ] = None,
    transport: Annotated[str, typer.Option(help="grpc (processes, mTLS) or memory.")] = "grpc",
    seed: Annotated[int, typer.Option(help="Job seed.")] = 0,
) -> None:
    """Forecast a party's series with another party's covariates: private alignment of the time
    grids, features built by each owner, ridge regression trained and applied under MPC (or
    vertical SecureBoost); the forecasts go to the target's owner only."""
    with user_errors():
        import dataclasses

        from veil.apps.load_demand import TreeSettings
        from veil.apps.load_demand_run import DemandOptions, run
        from veil.errors import ConfigError

        if transport not in ("memory", "grpc"):
            raise ConfigError(f"--transport must be memory or grpc, got {transport!r}")
        owner, sep, column = target.partition(":")
        if not sep or not owner or not column:
            raise ConfigError(f"--target expects PARTY:COLUMN, got {target!r}")
        files: dict[str, Path] = {}
        for item in party:
            name, sep, path = item.partition("=")
            if not sep or not name or not path:
                raise ConfigError(f"--party expects NAME=FILE, got {item!r}")
            if name in files:
                raise ConfigError(f"--party names {name!r} twice")
            files[name] = Path(path)
        given: dict[str, Any] = {
            "n_estimators": trees,
            "max_depth": depth,
            "learning_rate": learning_rate,
        }
        settings = dataclasses.replace(
            TreeSettings(), **{k: v for k, v in given.items() if v is not None}
        )
        opts = DemandOptions(time_col=time, target_party=owner, target=column,
                             test_from=test_from, test_to=test_to, horizon=horizon, model=model,
                             protocol=protocol, alpha=alpha,  # type: ignore[arg-type]
                             trees=settings)  # fmt: skip
        check_out_dir(out)
        run(files, opts, out, transport=transport, seed=seed)  # type: ignore[arg-type]

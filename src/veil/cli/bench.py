"""``veil bench NAME [OPTIONS]``: route a benchmark name to the module that runs it.

Each benchmark module parses its own options (``veil bench NAME --help``) and prints JSON lines
in the format of ``../shared/anchors`` (see ``benchmarks/README.md``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

import typer

from veil.errors import ConfigError

#: benchmark name prefix -> (module, whether its parser takes the name as first argument)
ROUTES: dict[str, tuple[str, bool]] = {
    "mpc.": ("veil.bench.mpc", True),
    "he.": ("veil.bench.he", True),
    "psi.": ("veil.bench.psi", False),
    "secagg.": ("veil.bench.secagg", False),
    "fl.": ("veil.bench.fl", True),
    "lr.": ("veil.bench.lr", True),
    "sb.": ("veil.bench.sb", True),
    "load": ("veil.bench.load", False),
    "link.": ("veil.bench.link", False),
    "tee": ("veil.bench.tee", False),
    "gwas": ("veil.bench.gwas", False),
}

EXAMPLES = """Benchmarks: mpc.{matmul,mul,less,sigmoid,reciprocal,exp}, he.{encrypt,histogram},
lr.train, sb.train, psi.intersect, secagg.round, fl.round, link.{throughput,rtt}, tee, load,
gwas (federated GWAS vs PLINK 1.9: --times K --sites N).
Options depend on the benchmark: `veil bench NAME --help`."""


def route(name: str) -> tuple[Callable[[list[str]], None], bool]:
    """The ``main(argv)`` of the module running ``name``."""
    for prefix, (module, takes_name) in ROUTES.items():
        if name == prefix.rstrip(".") or name.startswith(prefix):
            try:
                mod = importlib.import_module(module)
            except ImportError as exc:
                raise ConfigError(f"benchmark {name!r} is not available here: {exc}") from None
            main: Callable[[list[str]], None] = mod.main
            return main, takes_name
    raise ConfigError(f"unknown benchmark {name!r}. {EXAMPLES}")


def bench(ctx: typer.Context, name: str = typer.Argument(..., help=EXAMPLES)) -> None:
    """Run a benchmark and print JSON lines (compare with ../shared/anchors/run.sh)."""
    from veil.cli.common import user_errors

    with user_errors():
        main, takes_name = route(name)
        args = [name, *ctx.args] if takes_name else list(ctx.args)
        main(args)

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


HELP_FLAGS = ("--help", "-h")


def bench(
    ctx: typer.Context, name: str | None = typer.Argument(None, help=EXAMPLES, show_default=False)
) -> None:
    """Run a benchmark and print JSON lines (compare with ../shared/anchors/run.sh).

    The command has no help option of its own (see ``veil.cli.main``): ``--help`` after a
    benchmark name is passed to that benchmark's parser, which prints its options; ``veil bench``
    or ``veil bench --help`` alone print the list of benchmarks."""
    from veil.cli.common import user_errors

    if name is None or name in HELP_FLAGS:
        typer.echo("Usage: veil bench NAME [OPTIONS]\n\nRun a benchmark and print JSON lines.\n")
        typer.echo(EXAMPLES)
        if name is None and not any(a in HELP_FLAGS for a in ctx.args):
            raise typer.Exit(2)
        return
    with user_errors():
        main, takes_name = route(name)
        args = [name, *ctx.args] if takes_name else list(ctx.args)
        main(args)

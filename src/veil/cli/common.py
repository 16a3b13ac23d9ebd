"""Helpers shared by the CLI commands: error reporting and parameter parsing."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from veil.errors import ConfigError, DataError, PartyFailed, VeilError

_USER_ERRORS = {"ConfigError", "DataError", "RevealDenied", "PrivacyBudgetExceeded"}


def err_console() -> Console:
    """A console on stderr (stdout stays for machine-readable output); long lines are not
    wrapped, so a one-line error stays one line in logs."""
    return Console(stderr=True, soft_wrap=True)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn veil's errors into a one-line message and an exit code, not a traceback.

    Exit codes: 2 for bad configuration or input (fix and re-run), 1 for a failed job.
    """
    console = err_console()
    try:
        yield
    except PartyFailed as exc:
        if exc.error_type in _USER_ERRORS:
            # bad input or configuration: the message says what to fix; no traceback
            _print_error(console, str(exc.error))
            raise typer.Exit(2) from None
        if exc.error_type == "PeerError" and not os.environ.get("VEIL_DEBUG"):
            # this party stopped because another one failed: the cause is there, in one line
            note = f"(party {exc.party!r} stopped because of it; VEIL_DEBUG=1 shows the traceback)"
            _print_error(console, f"{exc.error} {note}")
            raise typer.Exit(1) from None
        console.print(f"[bold red]error:[/] party {exc.party!r} failed")
        console.print(exc.traceback_text, markup=False, highlight=False)
        raise typer.Exit(1) from None
    except (ConfigError, DataError) as exc:
        _print_error(console, str(exc))
        raise typer.Exit(2) from None
    except VeilError as exc:
        _print_error(console, f"{type(exc).__name__}: {exc}")
        raise typer.Exit(1) from None


def _print_error(console: Console, message: str) -> None:
    """``error: message``; the message is text, never markup (``[parties.bank]`` stays)."""
    console.print("[bold red]error:[/] ", end="")
    console.print(message, markup=False, highlight=False)


def check_out_dir(out: Path) -> None:
    """Fail before any work when ``--out`` cannot be a folder (an existing file, or under one)."""
    for folder in (out, *out.parents):
        if folder.exists():
            if not folder.is_dir():
                raise ConfigError(f"--out {out}: {folder} is a file, not a folder; choose a folder")
            if not os.access(folder, os.W_OK | os.X_OK):
                raise ConfigError(f"--out {out}: cannot write into {folder}; choose another folder")
            return


def parse_params(items: Sequence[str] | None) -> dict[str, Any]:
    """``["k=v", ...]`` to a dict; values that parse as JSON (numbers, lists) are converted."""
    out: dict[str, Any] = {}
    for item in items or ():
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--param expects KEY=VALUE, got {item!r}")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def split_names(text: str, what: str = "--parties") -> list[str]:
    """``"a,b,c"`` to ``["a", "b", "c"]`` with a clear error when empty or duplicated."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if len(names) < 2:
        raise ConfigError(f"{what} needs at least two comma-separated names, got {text!r}")
    if len(set(names)) != len(names):
        raise ConfigError(f"{what} lists a name twice: {text!r}")
    return names


def lazy_typer(loader: Callable[[], typer.Typer]) -> typer.Typer | None:
    """Load an optional sub-command group; ``None`` if its module is not installed."""
    try:
        return loader()
    except ImportError:
        return None

"""Reading one party's own table, with errors that name the party, the file and the column."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from veil.errors import DataError


def read_party_csv(path: str | Path, party: str, column: str, *, what: str = "id") -> Any:
    """``party``'s CSV as a pandas DataFrame; it must have ``column`` (its ``what`` column,
    e.g. the id or time column) and at least one row."""
    import pandas as pd

    try:
        df = pd.read_csv(path)
    except FileNotFoundError:
        raise DataError(f"party {party!r}: file {path} not found") from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"party {party!r}: cannot read {path} as CSV: {exc}") from None
    if column not in df.columns:
        raise DataError(
            f"party {party!r}: {path} has no {what} column {column!r}; columns: {list(df.columns)}"
        )
    if len(df) == 0:
        raise DataError(f"party {party!r}: {path} has no rows")
    return df

"""Self-contained HTML reports (tables + matplotlib figures embedded as PNG) and JSON output."""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from veil.errors import ConfigError
from veil.runtime.node import write_atomic


def figure_png(fig: Any) -> str:
    """A matplotlib figure as a base64 PNG data URI (the figure is closed)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def pyplot() -> Any:
    """matplotlib's pyplot on the non-interactive Agg backend (an actionable error if missing)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError("reports need matplotlib: pip install 'veil[ml]'") from None
    return plt


def table_html(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """An HTML table; floats with 4 significant digits, integers with thousands separators."""

    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4g}"
        if isinstance(v, int) and not isinstance(v, bool):
            return f"{v:,}"
        return html.escape("-" if v is None else str(v))

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 10px;
text-align:right}th{background:#f3f3f3}img{max-width:100%}code{background:#f3f3f3;padding:1px 4px}
.note{color:#555;font-size:.9em}"""


def html_page(title: str, sections: Sequence[tuple[str, str]]) -> str:
    """A self-contained report page: ``sections`` are (heading, HTML body) pairs."""
    parts = [f"<!doctype html><meta charset=utf-8><title>{html.escape(title)}</title>",
             f"<style>{_STYLE}</style><h1>{html.escape(title)}</h1>"]  # fmt: skip
    for heading, body in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>{body}")
    return "\n".join(parts)


def write_html(path: Path, title: str, sections: Sequence[tuple[str, str]]) -> None:
    """Write a report: ``sections`` are (heading, HTML body) pairs."""
    write_atomic(path, html_page(title, sections).encode())


def write_json(path: Path, report: dict[str, Any]) -> None:
    """Write ``report`` as indented JSON, atomically."""
    write_atomic(path, json.dumps(report, indent=2, default=_default).encode())


def _default(v: Any) -> Any:
    import numpy as np

    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    return str(v)

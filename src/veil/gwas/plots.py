"""Manhattan and QQ plots of GWAS P values, rendered to PNG bytes (matplotlib, Agg canvas).

Figures are built on :class:`matplotlib.figure.Figure` with an explicit Agg canvas, so nothing
touches pyplot's global state or the process-wide backend, and nothing happens at import time.
Both plots are vectorised (one ``plot`` call per colour, one band): 300k variants render in
about a second. NA (non-finite) P values are skipped; P = 0 (underflow) is drawn at the largest
finite ``-log10 P`` of the plot.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from veil.errors import ConfigError

F64 = npt.NDArray[np.float64]
#: genome-wide significance and the conventional suggestive threshold
GENOME_WIDE = 5e-8
SUGGESTIVE = 1e-5
_COLOURS = ("#1f4e79", "#6fa8dc")
_CHROM_ORDER = {"X": 23, "Y": 24, "XY": 25, "MT": 26, "M": 26}


@dataclass(frozen=True)
class QqSeries:
    """One set of P values for the QQ plot, with its legend label and genomic-control lambda."""

    label: str
    p: F64
    lambda_gc: float


def _figure(width: float, height: float) -> Any:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ConfigError("GWAS plots need matplotlib: pip install 'veil[ml]'") from None
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def png_bytes(fig: Any, dpi: int = 110) -> bytes:
    """Render ``fig`` to PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def _neglog10(p: F64) -> F64:
    with np.errstate(divide="ignore"):
        out = -np.log10(p)
    finite = out[np.isfinite(out)]
    cap = float(finite.max()) if finite.size else 1.0
    return np.where(np.isposinf(out), cap, out)


def chrom_rank(chrom: npt.NDArray[np.str_]) -> npt.NDArray[np.int64]:
    """Sort key of chromosome codes: 1..22 numerically, then X, Y, XY, MT, then others."""
    uniq, inv = np.unique(chrom, return_inverse=True)
    keys = []
    for c in uniq:
        name = str(c).upper().removeprefix("CHR")
        if name.isdigit():
            keys.append((int(name), ""))
        else:
            keys.append((_CHROM_ORDER.get(name, 100), name))
    order = sorted(range(len(uniq)), key=lambda i: keys[i])
    rank = np.empty(len(uniq), dtype=np.int64)
    rank[order] = np.arange(len(uniq))
    return rank[inv.reshape(-1)]


def manhattan_png(
    chrom: npt.NDArray[np.str_],
    bp: npt.NDArray[np.int64],
    p: F64,
    *,
    labels: Sequence[tuple[int, str]] = (),
    title: str = "Manhattan plot",
) -> bytes:
    """A Manhattan plot: ``-log10 P`` by chromosome and position, threshold lines, labels.

    Parameters
    ----------
    chrom, bp, p:
        Per variant chromosome code, base-pair position and P value (NaN = NA, skipped).
    labels:
        ``(variant index, text)`` to annotate (the top hits).
    """
    p = np.asarray(p, dtype=np.float64)
    ok = np.isfinite(p)
    rank = chrom_rank(np.asarray(chrom))
    bpf = np.asarray(bp, dtype=np.float64)
    n_chrom = int(rank.max()) + 1 if rank.size else 0
    # each chromosome spans [min bp, max bp] of its variants, laid end to end with a gap
    span_lo = np.full(n_chrom, np.inf)
    span_hi = np.full(n_chrom, -np.inf)
    np.minimum.at(span_lo, rank, bpf)
    np.maximum.at(span_hi, rank, bpf)
    width = np.maximum(span_hi - span_lo, 1.0)
    gap = 0.02 * float(width.sum()) if n_chrom > 1 else 0.0
    start = np.concatenate([[0.0], np.cumsum(width + gap)[:-1]])
    x = start[rank] + bpf - span_lo[rank]
    y = _neglog10(p)
    fig = _figure(11.0, 4.0)
    ax = fig.add_subplot()
    for parity, colour in enumerate(_COLOURS):
        sel = ok & (rank % 2 == parity)
        ax.plot(x[sel], y[sel], ".", ms=2.5, color=colour, rasterized=True)
    ax.axhline(-np.log10(GENOME_WIDE), color="#c00000", lw=0.8, ls="--", label="5e-8")
    ax.axhline(-np.log10(SUGGESTIVE), color="#7f7f7f", lw=0.8, ls=":", label="1e-5")
    for idx, text in labels:
        if 0 <= idx < p.size and ok[idx]:
            ax.annotate(text, (x[idx], y[idx]), xytext=(3, 3), textcoords="offset points",
                        fontsize=7)  # fmt: skip
    names = np.asarray(chrom)
    ticks, ticklabels = [], []
    for r in range(n_chrom):
        first = int(np.flatnonzero(rank == r)[0])
        ticks.append(start[r] + width[r] / 2)
        ticklabels.append(str(names[first]))
    ax.set_xticks(ticks, ticklabels, fontsize=7 if n_chrom > 12 else 9)
    top = float(np.max(y[ok])) if ok.any() else 1.0
    ax.set(xlabel="chromosome", ylabel="-log10 P", title=title,
           ylim=(0.0, max(top, -np.log10(GENOME_WIDE)) * 1.08))  # fmt: skip
    ax.legend(loc="upper right", fontsize=7, title="thresholds", title_fontsize=7)
    return png_bytes(fig)


def qq_png(series: Sequence[QqSeries], *, title: str = "QQ plot") -> bytes:
    """QQ plot of observed vs expected ``-log10 P`` under the null, with a 95 % band.

    The band is the 2.5 / 97.5 % quantiles of the uniform order statistics
    (``Beta(i, n - i + 1)``) for the first series' number of tests. Every point of the 5000
    smallest P values is drawn, then log-spaced ranks (visually identical, much faster).
    """
    from scipy.stats import beta

    fig = _figure(5.0, 5.0)
    ax = fig.add_subplot()
    hi = 1.0
    for i, s in enumerate(series):
        p = np.sort(np.asarray(s.p, dtype=np.float64)[np.isfinite(s.p)])
        n = p.size
        if n == 0:
            continue
        expected = -np.log10((np.arange(1, n + 1) - 0.5) / n)
        observed = _neglog10(p)
        if i == 0:
            # band on at most ~2000 log-spaced ranks (the curve is smooth)
            ranks = np.unique(np.geomspace(1, n, num=min(n, 2000)).astype(np.int64))
            lo = -np.log10(beta.ppf(0.975, ranks, n - ranks + 1))
            up = -np.log10(beta.ppf(0.025, ranks, n - ranks + 1))
            ax.fill_between(expected[ranks - 1], lo, up, color="#d9d9d9", label="95 % band")
        # the strongest 5000 points, then log-spaced ranks (the rest overlap at this size)
        spaced = np.geomspace(1, n, num=min(n, 5000)).astype(np.int64) - 1
        idx = np.unique(np.concatenate([np.arange(min(n, 5000)), spaced]))
        ax.plot(expected[idx], observed[idx], ".", ms=3, rasterized=True,
                label=f"{s.label} (λ = {s.lambda_gc:.3f})")  # fmt: skip
        hi = max(hi, float(expected[0]))
    ax.plot([0, hi], [0, hi], color="#c00000", lw=0.8)
    ax.set(xlabel="expected -log10 P", ylabel="observed -log10 P", title=title)
    ax.legend(loc="upper left", fontsize=8)
    return png_bytes(fig)


__all__ = [
    "GENOME_WIDE",
    "SUGGESTIVE",
    "QqSeries",
    "chrom_rank",
    "manhattan_png",
    "png_bytes",
    "qq_png",
]

"""Plain metrics computed by whoever holds labels and scores (the label holder): AUC, KS, ROC."""

from __future__ import annotations

from typing import Any

import numpy as np

from veil.errors import DataError

Array = np.ndarray[Any, Any]


def _check(y: Array, score: Array) -> tuple[Array, Array]:
    yb = np.asarray(y).reshape(-1) > 0.5
    s = np.asarray(score, dtype=np.float64).reshape(-1)
    if yb.shape != s.shape:
        raise DataError(f"labels ({yb.shape}) and scores ({s.shape}) differ in length")
    if yb.all() or not yb.any():
        raise DataError("AUC and KS need both classes among the labels")
    return yb, s


def auc(y: Array, score: Array) -> float:
    """ROC AUC (Mann–Whitney with average ranks for ties; equals sklearn's roc_auc_score)."""
    yb, s = _check(y, score)
    order = np.argsort(s, kind="mergesort")
    ss = s[order]
    edges = np.flatnonzero(np.r_[True, ss[1:] != ss[:-1], True])
    ranks_sorted = np.repeat((edges[:-1] + edges[1:] + 1) / 2.0, np.diff(edges))
    ranks = np.empty(len(s))
    ranks[order] = ranks_sorted
    npos = int(yb.sum())
    nneg = len(yb) - npos
    return float((ranks[yb].sum() - npos * (npos + 1) / 2.0) / (npos * nneg))


def roc_curve(y: Array, score: Array) -> tuple[Array, Array]:
    """False- and true-positive rates at every distinct threshold (descending)."""
    yb, s = _check(y, score)
    order = np.argsort(-s, kind="mergesort")
    ys, ss = yb[order], s[order]
    last = np.r_[ss[1:] != ss[:-1], True]
    tp = np.cumsum(ys)[last]
    fp = np.cumsum(~ys)[last]
    return np.r_[0.0, fp / fp[-1]], np.r_[0.0, tp / tp[-1]]


def ks(y: Array, score: Array) -> float:
    """Kolmogorov–Smirnov statistic: max distance between the classes' score distributions."""
    fpr, tpr = roc_curve(y, score)
    return float(np.max(tpr - fpr))

"""Federated evaluation from summable statistics.

Each client evaluates the global model on its own held-out rows and produces a vector of sums
(loss sum, row count, correct predictions, score histograms); only the sum over clients is
revealed, so no client's own metrics are disclosed. AUC comes from the pooled per-class score
histograms: exact up to the bin width (ties inside a bin count one half), which with the default
2,000 bins on [0, 1] differs from the exact AUC by at most the mass of pairs sharing a bin.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import numpy as np

from veil.fl.models import Array, LinearModel, Model, SoftmaxModel

DEFAULT_BINS = 2000


class Task(StrEnum):
    """What a model predicts."""

    BINARY = "binary"
    MULTICLASS = "multiclass"
    REGRESSION = "regression"


def task_of(model: Model) -> Task:
    """The task of a model (torch models declare theirs as ``model.task``)."""
    declared = getattr(model, "task", None)
    if declared is not None:
        return Task(declared)
    if isinstance(model, SoftmaxModel):
        return Task.MULTICLASS
    if isinstance(model, LinearModel):
        return Task.REGRESSION
    return Task.BINARY


def stats_size(task: Task, bins: int = DEFAULT_BINS) -> int:
    """Length of the statistics vector for ``task``."""
    return 3 + (2 * bins if task is Task.BINARY else 0)


def eval_stats(
    model: Model, params: Array, X: Array, y: Array, *, bins: int = DEFAULT_BINS
) -> Array:
    """Summable evaluation statistics of ``params`` on one client's rows.

    Layout: ``[loss_sum, n, correct_or_sse]`` then, for binary tasks, the histogram of scores of
    positives and of negatives over ``bins`` equal bins of [0, 1].
    """
    task = task_of(model)
    n = X.shape[0]
    if n == 0:
        return np.zeros(stats_size(task, bins))
    loss, _ = model.loss_grad(params, X, y)
    scores = model.predict(params, X)
    if task is Task.BINARY:
        correct = float(np.sum((scores >= 0.5) == (y == 1)))
        idx = np.clip((scores * bins).astype(np.int64), 0, bins - 1)
        pos = np.bincount(idx[y == 1], minlength=bins)
        neg = np.bincount(idx[y != 1], minlength=bins)
        return np.concatenate([[loss * n, n, correct], pos, neg]).astype(np.float64)
    if task is Task.MULTICLASS:
        correct = float(np.sum(np.argmax(scores, axis=1) == y))
        return np.array([loss * n, n, correct])
    sse = float(np.sum((scores - y) ** 2))
    return np.array([loss * n, n, sse])


def auc_from_histograms(pos: Array, neg: Array) -> float | None:
    """ROC AUC from per-class score histograms (ties within a bin count one half)."""
    n_pos, n_neg = float(pos.sum()), float(neg.sum())
    if n_pos == 0 or n_neg == 0:
        return None
    neg_below = np.cumsum(neg) - neg
    return float((pos * (neg_below + 0.5 * neg)).sum() / (n_pos * n_neg))


def eval_metrics(stats: Array, task: Task, *, bins: int = DEFAULT_BINS) -> dict[str, Any]:
    """Metrics from pooled statistics: loss, and accuracy + AUC, or RMSE."""
    loss_sum, n, third = (float(v) for v in stats[:3])
    if n <= 0:
        return {"n": 0, "loss": None}
    out: dict[str, Any] = {"n": round(n), "loss": loss_sum / n}
    if task is Task.REGRESSION:
        out["rmse"] = (max(third, 0.0) / n) ** 0.5
        return out
    out["accuracy"] = third / n
    if task is Task.BINARY:
        pos = np.rint(stats[3 : 3 + bins])
        neg = np.rint(stats[3 + bins : 3 + 2 * bins])
        out["auc"] = auc_from_histograms(pos, neg)
    return out

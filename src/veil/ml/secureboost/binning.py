"""Quantile binning of one party's features, done locally by each owner (nothing is sent).

Each feature gets at most ``max_bin`` bins cut at quantiles of the owner's training rows. Bin
``b`` of a feature holds the values ``cuts[b-1] <= x < cuts[b]``; a split "bin <= k goes left"
is the threshold rule ``x < cuts[k]`` (xgboost's convention). A feature with at most
``max_bin`` distinct values gets one bin per value. The cut values never leave the owner.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from veil.errors import ConfigError, DataError

Array = np.ndarray[Any, Any]


def fit_cuts(X: Array, max_bin: int, *, party: str = "this party") -> list[Array]:
    """Per-feature sorted cut values (at most ``max_bin - 1`` each) from the rows of ``X``.

    Raises :class:`DataError` naming ``party`` for non-finite values (impute them first, e.g.
    with :func:`veil.data.vertical.encode_block`).
    """
    if max_bin < 2 or max_bin > 65535:
        raise ConfigError(f"max_bin must be in [2, 65535], got {max_bin}")
    x = _check(X, party)
    cuts: list[Array] = []
    q = np.linspace(0.0, 1.0, max_bin + 1)[1:-1]
    for j in range(x.shape[1]):
        col = x[:, j]
        uniq = np.unique(col)
        if len(uniq) <= max_bin:
            cuts.append(uniq[1:].astype(np.float64))
            continue
        c = np.unique(np.quantile(col, q, method="nearest"))
        cuts.append(c[c > uniq[0]].astype(np.float64))
    return cuts


def apply_cuts(X: Array, cuts: list[Array], *, party: str = "this party") -> Array:
    """Bin index ``(rows, features)`` (int32) of every value: ``searchsorted(cuts, x, "right")``."""
    x = _check(X, party)
    if x.shape[1] != len(cuts):
        raise DataError(
            f"{party}: the feature block has {x.shape[1]} columns but the model was fitted on "
            f"{len(cuts)}; pass the same columns in the same order"
        )
    out = np.empty(x.shape, dtype=np.int32)
    for j, c in enumerate(cuts):
        out[:, j] = np.searchsorted(c, x[:, j], side="right")
    return out


def n_bins(cuts: list[Array]) -> Array:
    """Number of bins of each feature (``len(cuts) + 1``)."""
    return np.array([len(c) + 1 for c in cuts], dtype=np.int64)


def _check(X: Array, party: str) -> Array:
    x = np.asarray(X, dtype=np.float64)
    if x.ndim != 2:
        raise DataError(f"{party}: the feature block must be 2-d (rows × features), got {x.shape}")
    if not np.isfinite(x).all():
        raise DataError(
            f"{party}: the feature block has missing or infinite values; impute them first"
        )
    return x

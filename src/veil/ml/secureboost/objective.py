"""The objective-specific part of SecureBoost training, at the label holder: the training
target, the base margin, the validation loss and the map back to the model's units.

* ``binary:logistic``: 0/1 labels; base margin ``logit(mean)`` (or of ``base_score``);
  validation log-loss.
* ``reg:squarederror``: the target is standardised, ``(y - mean) / sd`` with the training mean
  and population sd (``gamma`` divided by ``sd**2``), and the leaf weights are multiplied by
  ``sd`` at the end; base prediction the mean (or ``base_score``); validation RMSE in the
  target's unit. Exact: gains scale by ``sd**2`` and leaf weights by ``sd``, so the trees are
  those of the raw target, while the fixed-point precision of the encrypted gradients no longer
  depends on the target's unit (a standardised value is at most ``sqrt(n)`` in magnitude).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from veil.errors import DataError
from veil.ml.secureboost.params import SQUARED_ERROR, BoostParams
from veil.ml.secureboost.tree import Tree, sigmoid

Array = np.ndarray[Any, Any]


@dataclass(frozen=True)
class Target:
    """The label holder's training target: ``y`` in training units, the base margin, and the
    map back to the model's units (``shift + scale * margin``; identity for logistic)."""

    y: Array
    base: float
    shift: float
    scale: float
    params: BoostParams  # with ``gamma`` in training units

    @classmethod
    def fit(cls, y: Array, params: BoostParams, party: str) -> Target:
        """The training target of ``y`` under ``params.objective``; bad labels or targets raise
        :class:`DataError` naming ``party``."""
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        if params.regression:
            if len(y) < 2 or not np.isfinite(y).all():
                raise DataError(f"{party!r}: SecureBoost regression needs >= 2 finite targets")
            mu = float(y.mean())
            sd = float(y.std())
            sd = sd if sd > 0 else 1.0
            raw = mu if params.base_score is None else params.base_score
            p = dataclasses.replace(params, gamma=params.gamma / sd**2)
            return cls((y - mu) / sd, (raw - mu) / sd, mu, sd, p)
        if not np.isin(y, (0.0, 1.0)).all():
            raise DataError(f"{party!r}: SecureBoost needs 0/1 labels (or objective="
                            f"{SQUARED_ERROR!r} for a real-valued target)")  # fmt: skip
        mean = float(y.mean()) if params.base_score is None else params.base_score
        mean = min(max(mean, 1e-6), 1 - 1e-6)
        return cls(y, float(np.log(mean / (1 - mean))), 0.0, 1.0, params)

    def loss(self, y: Array, margin: Array) -> float:
        """Validation loss of training-unit ``margin`` against raw ``y``: RMSE or log-loss."""
        if self.params.regression:
            pred = self.shift + self.scale * margin
            return float(np.sqrt(np.mean((pred - y) ** 2)))
        return _logloss(y, margin)

    def finish(self, trees: list[Tree]) -> float:
        """Rescale the leaf weights to the model's units; return the base margin in them."""
        if self.scale != 1.0:
            for t in trees:
                t.value = [v * self.scale for v in t.value]
        return self.shift + self.scale * self.base


def _logloss(y: Array, margin: Array) -> float:
    p = np.clip(sigmoid(margin), 1e-15, 1 - 1e-15)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))

"""Hyper-parameters of :class:`~veil.ml.secureboost.SecureBoost` (xgboost names)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from veil.errors import ConfigError
from veil.ml.secureboost.tree import TreeParams

#: xgboost's name of the binary logistic objective (the default).
LOGISTIC = "binary:logistic"
#: xgboost's name of the squared-error regression objective.
SQUARED_ERROR = "reg:squarederror"
OBJECTIVES = (LOGISTIC, SQUARED_ERROR)


@dataclass(frozen=True)
class BoostParams:
    """Boosting, regularisation, sampling and HE settings.

    The first block mirrors xgboost (``tree_method="hist"``): ``objective`` is
    ``"binary:logistic"`` (default; 0/1 labels, probabilities) or ``"reg:squarederror"``
    (real targets; ``base_score`` defaults to the training mean, as in xgboost >= 2.0, and
    validation/early stopping use the RMSE instead of the log-loss);
    ``scheme``/``key_bits``/``insecure`` choose the label holder's HE key, ``frac_bits`` the
    fixed-point precision of the encrypted gradients (``2**-frac_bits``), ``workers`` the number
    of processes each party uses for HE batches, ``seed`` the sampling seed (public).
    ``first_tree_local=True`` grows the first tree on the label holder's features only, so the
    feature holders learn no instance space of the tree most correlated with the labels
    (SecureBoost's "reduced leakage" variant; needs label-holder features to be useful).
    """

    objective: str = LOGISTIC
    n_estimators: int = 10
    max_depth: int = 5
    learning_rate: float = 0.3
    reg_lambda: float = 1.0
    gamma: float = 0.0
    min_child_weight: float = 1.0
    subsample: float = 1.0
    colsample_bytree: float = 1.0
    max_bin: int = 32
    early_stopping_rounds: int | None = None
    base_score: float | None = None
    first_tree_local: bool = False
    scheme: str = "ou"
    key_bits: int = 2048
    insecure: bool = False
    frac_bits: int = 20
    workers: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ConfigError(
                f"objective must be one of {list(OBJECTIVES)}, got {self.objective!r}"
            )
        if self.n_estimators < 1:
            raise ConfigError(f"n_estimators must be >= 1, got {self.n_estimators}")
        if not 0 < self.learning_rate <= 1:
            raise ConfigError(f"learning_rate must be in (0, 1], got {self.learning_rate}")
        if not 0 < self.subsample <= 1 or not 0 < self.colsample_bytree <= 1:
            raise ConfigError("subsample and colsample_bytree must be in (0, 1]")
        if not 8 <= self.frac_bits <= 40:
            raise ConfigError(f"frac_bits must be in [8, 40], got {self.frac_bits}")
        if self.early_stopping_rounds is not None and self.early_stopping_rounds < 1:
            raise ConfigError("early_stopping_rounds must be >= 1 (or None)")
        if self.base_score is not None:
            if self.objective == LOGISTIC and not 0 < self.base_score < 1:
                raise ConfigError("base_score is a probability in (0, 1) for binary:logistic")
            if not math.isfinite(self.base_score):
                raise ConfigError("base_score must be finite")
        if self.workers < 1:
            raise ConfigError("workers must be >= 1")
        _ = self.tree  # validates the tree parameters

    @property
    def regression(self) -> bool:
        """Whether the objective is ``reg:squarederror``."""
        return self.objective == SQUARED_ERROR

    @property
    def tree(self) -> TreeParams:
        """The per-tree part."""
        return TreeParams(self.max_depth, self.reg_lambda, self.gamma, self.min_child_weight)

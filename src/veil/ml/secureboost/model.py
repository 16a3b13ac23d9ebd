"""``SecureBoost``: the sklearn-like front of vertical SecureBoost for SPMD jobs.

Every party of the job runs the same calls with its *own* aligned feature block::

    sb = SecureBoost(ctx, label_holder="bank", feature_holders=["ext1", "ext2"],
                     n_estimators=10, max_depth=5, learning_rate=0.3)
    sb.fit(X_local, y if ctx.party == "bank" else None)
    scores = sb.predict_proba(X_test_local)      # probabilities at the bank, None elsewhere

Regression: ``SecureBoost(ctx, "utility", ["weather"], objective="reg:squarederror", ...)``;
``fit(X_local, y)`` with real targets at the label holder, ``predict(X_local)`` returns the
predictions there (``None`` elsewhere).

See :mod:`veil.ml.secureboost.protocol` (training; threat model and leakage) and
:mod:`veil.ml.secureboost.predict` (joint prediction).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from veil.errors import ConfigError, DataError, ProtocolError
from veil.ml.secureboost.feature_holder import train_feature_holder
from veil.ml.secureboost.params import BoostParams
from veil.ml.secureboost.predict import LocalSplits, joint_leaves, send_reach
from veil.ml.secureboost.protocol import LabelHolderModel, train_label_holder
from veil.ml.secureboost.tree import Tree, sigmoid
from veil.transport.base import Link

Array = np.ndarray[Any, Any]


class SecureBoost:
    """Vertical gradient-boosted trees (binary logistic or squared-error loss) with
    HE-protected gradients.

    Parameters
    ----------
    ctx:
        The party's :class:`veil.Context` (only ``party``, ``link`` and ``next_key`` are used).
    label_holder:
        The party with the labels; it holds the HE key, the trees and the leaf weights.
    feature_holders:
        The other parties with features (each keeps its own split thresholds).
    heu_scheme:
        ``"ou"`` (Okamoto–Uchiyama, default: fastest) or ``"paillier"``.
    **params:
        :class:`~veil.ml.secureboost.params.BoostParams` fields: ``objective``
        (``"binary:logistic"``, the default, or ``"reg:squarederror"``), ``n_estimators``,
        ``max_depth``, ``learning_rate``, ``reg_lambda``, ``gamma``, ``min_child_weight``,
        ``subsample``, ``colsample_bytree``, ``max_bin``, ``early_stopping_rounds``,
        ``base_score``, ``first_tree_local``, ``key_bits``, ``insecure``, ``frac_bits``,
        ``workers``, ``seed``.

    Attributes (after :meth:`fit`)
    ------------------------------
    n_trees_:
        Number of trees kept (after early stopping), at every model party.
    best_iteration_, evals_result_, seconds_:
        Label holder only: index of the best tree, the validation loss per round (log-loss,
        or RMSE in the target's unit for regression), and
        wall seconds per phase (``encrypt``, ``wait`` for histograms, ``decrypt``, ``split``).
    """

    def __init__(
        self,
        ctx: Any,
        label_holder: str,
        feature_holders: Sequence[str],
        heu_scheme: str = "ou",
        **params: Any,
    ) -> None:
        if "scheme" in params:
            raise ConfigError("choose the HE scheme with heu_scheme='ou' or 'paillier'")
        names = {f.name for f in dataclasses.fields(BoostParams)} - {"scheme"}
        unknown = sorted(set(params) - names)
        if unknown:
            raise ConfigError(f"unknown SecureBoost parameters {unknown}; valid: {sorted(names)}")
        self.params = BoostParams(scheme=heu_scheme, **params)
        fhs = list(feature_holders)
        if label_holder in fhs or len(set(fhs)) != len(fhs):
            raise ConfigError("the label holder and feature holders must be distinct parties")
        for p in (label_holder, *fhs):
            if p not in ctx.link.parties:
                raise ConfigError(f"{p!r} is not a party of the job {list(ctx.link.parties)}")
        self.ctx = ctx
        self.label_holder = label_holder
        self.feature_holders = fhs
        self._lh: LabelHolderModel | None = None
        self._splits: LocalSplits | None = None
        self.n_trees_ = 0
        self.best_iteration_: int | None = None
        self.evals_result_: list[float] = []
        self.seconds_: dict[str, float] = {}

    @property
    def _link(self) -> Link:
        link: Link = self.ctx.link
        return link

    @property
    def _role(self) -> str:
        me = self.ctx.party
        if me == self.label_holder:
            return "label"
        return "feature" if me in self.feature_holders else "none"

    def fit(
        self,
        X: Array | None,
        y: Array | None = None,
        *,
        eval_set: tuple[Array | None, Array | None] | None = None,
    ) -> SecureBoost:
        """Train (collective: every party of the job calls it, SPMD).

        ``X`` is this party's aligned feature block (``None`` at a label holder without
        features, ignored at other parties); ``y`` the 0/1 labels, or the real targets for
        ``reg:squarederror`` (label holder only). ``eval_set=(X_val_local, y_val)`` (``y_val``
        at the label holder) enables the validation loss and ``early_stopping_rounds``; every
        model party must pass its block.
        """
        prefix = self.ctx.next_key("sb.fit")
        role = self._role
        if role == "label":
            if y is None:
                raise DataError(f"{self.ctx.party!r} is the label holder: pass the labels y")
            ev = None
            if eval_set is not None:
                if eval_set[1] is None:
                    raise DataError("the label holder must pass validation labels in eval_set")
                ev = (eval_set[0], np.asarray(eval_set[1]))
            self._lh = train_label_holder(self._link, prefix, self.feature_holders, X,
                                          np.asarray(y), self.params, eval_set=ev)  # fmt: skip
            self._splits = self._lh.splits
            self.best_iteration_ = self._lh.best_iteration
            self.evals_result_ = list(self._lh.evals_result)
            self.seconds_ = dict(self._lh.seconds)
            self.n_trees_ = len(self._lh.trees)
        elif role == "feature":
            if X is None:
                raise DataError(f"{self.ctx.party!r} is a feature holder: pass its feature block")
            X_eval = None if eval_set is None else eval_set[0]
            self._splits = train_feature_holder(self._link, prefix, self.label_holder,
                                                np.asarray(X), self.params,
                                                X_eval=X_eval)  # fmt: skip
            self.n_trees_ = self._splits.n_trees
        return self

    @property
    def trees_(self) -> list[Tree] | None:
        """The trees (topology, split owners and opaque split ids, leaf weights) at the label
        holder; ``None`` elsewhere."""
        return None if self._lh is None else self._lh.trees

    def decision_function(self, X: Array | None, n_rows: int | None = None) -> Array | None:
        """Margins (log-odds; the predictions for regression) at the label holder, ``None``
        elsewhere (collective).

        ``X`` is this party's block of the rows to score (``None`` at a label holder without
        features: then pass ``n_rows``).
        """
        prefix = self.ctx.next_key("sb.predict")
        role = self._role
        if role == "none":
            return None
        if self._splits is None:
            raise ProtocolError(f"{self.ctx.party!r}: fit the SecureBoost model before predicting")
        trees = range(self._splits.n_trees)
        if role == "feature":
            if X is None:
                raise DataError(f"{self.ctx.party!r}: pass this party's feature block")
            bins = self._splits.binned(np.asarray(X), len(X))
            send_reach(self._link, prefix, self.label_holder, self._splits, bins, trees)
            return None
        assert self._lh is not None
        rows = len(X) if X is not None else n_rows
        if rows is None:
            raise DataError("the label holder holds no features: pass n_rows")
        bins = self._splits.binned(None if X is None else np.asarray(X), rows)
        reach = joint_leaves(self._link, prefix, self.feature_holders, self._splits, bins, trees)
        return self._lh.margin(reach)

    def predict(self, X: Array | None, n_rows: int | None = None) -> Array | None:
        """At the label holder: 0/1 predictions (probability >= 0.5), or the predicted values
        for ``reg:squarederror``; ``None`` elsewhere (collective)."""
        if self.params.regression:
            return self.decision_function(X, n_rows)
        prob = self.predict_proba(X, n_rows)
        return None if prob is None else (prob >= 0.5).astype(np.int64)

    def predict_proba(self, X: Array | None, n_rows: int | None = None) -> Array | None:
        """Probability of class 1, shape ``(rows,)``, at the label holder; ``None`` elsewhere."""
        if self.params.regression:
            raise ConfigError("predict_proba needs objective='binary:logistic'; use predict")
        m = self.decision_function(X, n_rows)
        return None if m is None else sigmoid(m)

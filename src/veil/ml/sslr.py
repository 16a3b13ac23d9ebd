"""Secret-shared logistic regression: mini-batch SGD with L2, trained entirely under MPC.

Features and labels are secret-shared into an MPC device (``x.to(mpc)``); the weights start at
zero and stay secret-shared through training; :attr:`SSLogisticRegression.coef_` and
:attr:`intercept_` are secret tensors that leave the device only by ``ctx.reveal`` (policy-checked,
ledgered) — typically to the label holder. Predictions are secret too.

Each step on a batch of ``m`` rows computes ``g = sigmoid(X_b w + b) − y_b`` and
``w ← w − lr (X_bᵀ g / m + l2 w)``, ``b ← b − lr mean(g)``: two secret matrix products and one
secret sigmoid per batch (``sigmoid="accurate"``: error ≲ 1e-4; ``"cheap"``: ≤ 9e-3, fewer
rounds). Batches are taken in a fixed order (or a public permutation per epoch with
``shuffle=True``), so all parties agree on them without communication.

Fixed point: the step ``lr / m`` is applied as ``(· × 1/m) × lr``; ``1/m`` is exact when the
batch size is a power of two. Each product is truncated probabilistically (error of one unit in
the last fractional bit), so weights differ from float64 training by about ``steps × 2^-frac``.

Threat model: that of the device's protocol (semi2k: semi-honest, dishonest majority, trusted
dealer; aby3: semi-honest honest majority). What leaks: the shapes (rows, features per party),
the hyper-parameters, and whatever is revealed afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from veil.errors import ConfigError, DataError
from veil.mpc import SecretTensor, sigmoid


@dataclass
class SSLogisticRegression:
    """sklearn-like logistic regression trained on secret-shared data.

    Parameters
    ----------
    device:
        The MPC device (``ctx.mpc(...)``) holding the data.
    epochs, batch_size, lr:
        Mini-batch SGD schedule.
    l2:
        L2 penalty on the weights (not the intercept), as in ``lr · l2 · w`` per step. To match
        sklearn's ``LogisticRegression(C=C)`` on ``n`` rows use ``l2 = 1 / (C · n)``.
    sigmoid:
        ``"accurate"`` or ``"cheap"`` (see module docstring).
    shuffle:
        Public per-epoch permutation of the batches' rows (from ``seed``), else fixed order.
    """

    device: Any
    epochs: int = 5
    batch_size: int = 1024
    lr: float = 0.1
    l2: float = 0.0
    sigmoid: str = "accurate"
    shuffle: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or not self.lr > 0 or self.l2 < 0:
            raise ConfigError("need epochs >= 1, batch_size >= 1, lr > 0 and l2 >= 0")
        if self.sigmoid not in ("accurate", "cheap"):
            raise ConfigError("sigmoid must be 'accurate' or 'cheap'")
        self.coef_: SecretTensor | None = None
        self.intercept_: SecretTensor | None = None
        self.n_steps_ = 0

    def _batches(self, n: int, epoch: int) -> list[np.ndarray]:
        order = (
            np.random.default_rng([self.seed, epoch]).permutation(n)
            if self.shuffle
            else np.arange(n)
        )
        return [order[s : s + self.batch_size] for s in range(0, n, self.batch_size)]

    def fit(self, X: SecretTensor, y: SecretTensor) -> SSLogisticRegression:
        """Train on secret ``X`` (n × d) and secret labels ``y`` (n,) in {0, 1}."""
        if X.ndim != 2:
            raise DataError(f"X must be a matrix, got shape {X.pshape}")
        n, d = X.pshape
        y = y.reshape(n) if y.pshape != (n,) else y
        if y.pshape != (n,):
            raise DataError(f"y must have {n} entries, got shape {y.pshape}")
        w = self.device.constant(np.zeros(d))
        b = self.device.constant(np.zeros(()))
        contiguous = not self.shuffle
        for epoch in range(self.epochs):
            for rows in self._batches(n, epoch):
                if contiguous:
                    Xb, yb = (
                        X[int(rows[0]) : int(rows[-1]) + 1],
                        y[int(rows[0]) : int(rows[-1]) + 1],
                    )
                else:
                    Xb, yb = X[rows], y[rows]
                m = len(rows)
                g = sigmoid(Xb @ w + b, mode=self.sigmoid) - yb
                grad = (Xb.T @ g) * (1.0 / m)
                if self.l2:
                    grad = grad + w * self.l2
                w = w - grad * self.lr
                b = b - (g.sum() * (1.0 / m)) * self.lr
                self.n_steps_ += 1
        self.coef_, self.intercept_ = w, b
        return self

    def decision_function(self, X: SecretTensor) -> SecretTensor:
        """Secret ``X w + b``."""
        if self.coef_ is None or self.intercept_ is None:
            raise ConfigError("fit the model first")
        return X @ self.coef_ + self.intercept_

    def predict_proba(self, X: SecretTensor) -> SecretTensor:
        """Secret probabilities of class 1 (n,)."""
        return sigmoid(self.decision_function(X), mode=self.sigmoid)

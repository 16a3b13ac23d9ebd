"""Secret-shared logistic regression: mini-batch SGD with L2, trained entirely under MPC.

Features and labels are secret-shared into an MPC device (``x.to(mpc)``); the weights start at
zero and stay secret-shared through training; :attr:`SSLogisticRegression.coef_` and
:attr:`intercept_` are secret tensors that leave the device only by ``ctx.reveal`` (policy-checked,
ledgered) — typically to the label holder. Predictions are secret too.

Each step on a batch of ``m`` rows computes ``g = sigmoid(X_b w + b) − y_b`` and
``w ← w − lr (X_bᵀ g / m + l2 w)``, ``b ← b − lr mean(g)``: two secret matrix products and one
secret sigmoid per batch. Batches are taken in a fixed order (or a public permutation per
epoch with ``shuffle=True``), so all parties agree on them without communication.

How a step is kept cheap (all exact rewritings of the update above):

* the intercept is a column of ones appended to ``X`` (one product gives ``Xw + b``, one gives
  both gradients);
* ``[X, 1]`` is a :class:`~veil.mpc.fixed.FixedMatrix`: in semi2k its masked opening
  ``X − A`` happens once for the whole training and each step opens only the ``m + d + 1``
  elements of ``w`` and ``g`` (reusing the dealer mask ``A`` is secure: see that module);
* ``lr`` is folded into the sigmoid (``sigmoid(·, scale=lr)``: free in the cheap mode) and into
  ``y`` once (``lr·y``, one truncation before training), and ``1/m`` into the second product's
  truncation (exact division by ``2^k`` when ``m = 2^k``; other batch sizes pay one truncation
  by ``2^k/m``, ``2^k ≥ m``).

A step with the cheap sigmoid is 20 rounds in semi2k (2 + 16 + 2) and 22 in aby3 (2 + 18 + 2);
semi2k's two products open only ``m + d + 1`` elements per party pair.

``sigmoid="cheap"`` (the default) trains with a degree-5 polynomial of σ (error ≤ 9e-3 before
saturation at ±8); on the anchors' ``lr.train`` data (100,000 × 30) its AUC equals numpy's to
1e-6 and its weights are within 3e-4 of the float32 loop (SPU: 3e-3), at about 70 % of the
accurate mode's time (benchmarks/README.md § lr.train). ``"accurate"`` (error ≲ 4e-4) costs 17
(semi2k) / 20 (aby3) more rounds per step.
:meth:`SSLogisticRegression.predict_proba` always uses the accurate sigmoid.

Fixed point: every product is truncated probabilistically (error of one unit in the last
fractional bit), so weights differ from float64 training by about ``steps × 2^-frac``.

Threat model: that of the device's protocol (semi2k: semi-honest, dishonest majority, trusted
dealer; aby3: semi-honest honest majority). What leaks: the shapes (rows, features per party),
the hyper-parameters, and whatever is revealed afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from veil.errors import ConfigError, DataError
from veil.mpc import SecretTensor, concatenate, sigmoid
from veil.mpc.fixed import FixedMatrix


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
        Training sigmoid, ``"cheap"`` (default) or ``"accurate"`` (see module docstring);
        predictions always use the accurate one.
    shuffle:
        Public per-epoch permutation of the batches' rows (from ``seed``), else fixed order.
    """

    device: Any
    epochs: int = 5
    batch_size: int = 1024
    lr: float = 0.1
    l2: float = 0.0
    sigmoid: str = "cheap"
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
        ones = self.device.constant(np.ones((n, 1)))
        Xa = FixedMatrix(concatenate([X.to_fxp(), ones], axis=1))  # masked once (semi2k)
        y_lr = y.to_fxp() * self.lr
        w = self.device.constant(np.zeros(d + 1))
        decay = np.append(np.full(d, 1.0 - self.lr * self.l2), 1.0)  # no penalty on b
        contiguous = not self.shuffle
        for epoch in range(self.epochs):
            for rows in self._batches(n, epoch):
                sel: Any = slice(int(rows[0]), int(rows[-1]) + 1) if contiguous else rows
                m = len(rows)
                k = (m - 1).bit_length()  # 2^k >= m
                g = sigmoid(Xa.matmul(w, sel), mode=self.sigmoid, scale=self.lr) - y_lr[sel]
                if m != 1 << k:
                    g = g * ((1 << k) / m)
                step = Xa.matmul(g, sel, transpose=True, extra_bits=k)  # lr/m · [X, 1]ᵀ g
                if self.l2:
                    w = w * decay
                w = w - step
                self.n_steps_ += 1
        self.coef_, self.intercept_ = w[:d], w[d]
        return self

    def decision_function(self, X: SecretTensor) -> SecretTensor:
        """Secret ``X w + b``."""
        if self.coef_ is None or self.intercept_ is None:
            raise ConfigError("fit the model first")
        return X @ self.coef_ + self.intercept_

    def predict_proba(self, X: SecretTensor) -> SecretTensor:
        """Secret probabilities of class 1 (n,)."""
        return sigmoid(self.decision_function(X), mode="accurate")

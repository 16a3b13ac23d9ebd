"""Models for horizontal federated learning that need no torch: linear, logistic, softmax.

A model is stateless: its parameters are one flat float64 vector (what travels, as raw array
bytes, never pickled), and it knows how to compute the mean loss and gradient on a batch, predict,
and run local SGD from a starting vector. Local training supports the hooks the strategies need:
a proximal term (FedProx) and a gradient correction (SCAFFOLD control variates).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np

from veil.errors import ConfigError, DataError

Array = np.ndarray[Any, Any]


@dataclass(frozen=True)
class LocalTraining:
    """How a client trains locally in one round."""

    epochs: int = 1
    batch_size: int = 32
    lr: float = 0.1
    momentum: float = 0.0
    prox_mu: float = 0.0  # FedProx: mu/2 * ||w - w_global||^2

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ConfigError("local training needs epochs >= 1, batch_size >= 1 and lr > 0")
        if self.prox_mu < 0 or not 0 <= self.momentum < 1:
            raise ConfigError("prox_mu must be >= 0 and momentum in [0, 1)")


class Model(ABC):
    """A model whose parameters are one flat float64 vector."""

    #: Number of parameters.
    n_params: int

    @abstractmethod
    def init_params(self, rng: np.random.Generator) -> Array:
        """Initial parameter vector (the same at every party for the same ``rng`` state)."""

    @abstractmethod
    def loss_grad(self, params: Array, X: Array, y: Array) -> tuple[float, Array]:
        """Mean loss on the batch and its gradient (regularisation included)."""

    @abstractmethod
    def predict(self, params: Array, X: Array) -> Array:
        """Scores: probability of class 1, class probabilities, or the regression value."""

    def check_data(self, X: Array, y: Array) -> None:
        """Raise :class:`DataError` unless ``X``, ``y`` fit this model."""
        if X.ndim != 2 or X.shape[0] != y.shape[0]:
            raise DataError(f"X must be (n, d) and y (n,), got {X.shape} and {y.shape}")

    def fit_local(
        self,
        params: Array,
        X: Array,
        y: Array,
        opts: LocalTraining,
        rng: np.random.Generator,
        *,
        correction: Array | None = None,
    ) -> tuple[Array, int]:
        """Mini-batch SGD from ``params``; returns the new vector and the number of steps.

        ``correction`` is added to every gradient (SCAFFOLD's ``c - c_i``); ``opts.prox_mu``
        pulls towards the starting point (FedProx).
        """
        self.check_data(X, y)
        w = params.astype(np.float64, copy=True)
        start = params
        velocity = np.zeros_like(w)
        steps = 0
        n = X.shape[0]
        for _ in range(opts.epochs):
            order = rng.permutation(n)
            for lo in range(0, n, opts.batch_size):
                idx = order[lo : lo + opts.batch_size]
                _, g = self.loss_grad(w, X[idx], y[idx])
                if opts.prox_mu:
                    g = g + opts.prox_mu * (w - start)
                if correction is not None:
                    g = g + correction
                if opts.momentum:
                    velocity = opts.momentum * velocity + g
                    g = velocity
                w -= opts.lr * g
                steps += 1
        return w, steps


def _sigmoid(z: Array) -> Array:
    return np.exp(-np.logaddexp(0.0, -z))


@dataclass
class _GLM(Model):
    """A generalised linear model ``g(X w + b)`` with L2 on ``w``: parameters ``[w..., b]``.

    Subclasses give the inverse link and the per-row loss in terms of ``z = X w + b``; the
    gradient is ``Xᵀ (g(z) − y) / n`` for both canonical links used here.
    """

    n_features: int
    l2: float = 0.0

    def __post_init__(self) -> None:
        self.n_params = self.n_features + 1

    def init_params(self, rng: np.random.Generator) -> Array:
        return np.zeros(self.n_params)

    def check_data(self, X: Array, y: Array) -> None:
        super().check_data(X, y)
        if X.shape[1] != self.n_features:
            raise DataError(f"expected {self.n_features} features, got {X.shape[1]}")

    @abstractmethod
    def _mean(self, z: Array) -> Array:
        """The inverse link: the prediction for linear scores ``z``."""

    @abstractmethod
    def _row_loss(self, z: Array, y: Array) -> Array:
        """The loss of each row."""

    def loss_grad(self, params: Array, X: Array, y: Array) -> tuple[float, Array]:
        w, b = params[:-1], params[-1]
        z = X @ w + b
        loss = float(np.mean(self._row_loss(z, y))) + 0.5 * self.l2 * float(w @ w)
        r = (self._mean(z) - y) / X.shape[0]
        return loss, np.concatenate([X.T @ r + self.l2 * w, [r.sum()]])

    def predict(self, params: Array, X: Array) -> Array:
        return self._mean(X @ params[:-1] + params[-1])


@dataclass
class LogisticModel(_GLM):
    """Binary logistic regression ``p = sigmoid(X w + b)`` with optional L2 on ``w``."""

    def check_data(self, X: Array, y: Array) -> None:
        super().check_data(X, y)
        if not np.isin(y, (0, 1)).all():
            raise DataError("logistic regression needs labels 0/1")

    def _mean(self, z: Array) -> Array:
        return _sigmoid(z)

    def _row_loss(self, z: Array, y: Array) -> Array:
        out: Array = np.logaddexp(0.0, z) - y * z
        return out


@dataclass
class LinearModel(_GLM):
    """Least-squares linear regression (loss = mean squared error / 2) with optional L2."""

    def _mean(self, z: Array) -> Array:
        return z

    def _row_loss(self, z: Array, y: Array) -> Array:
        out: Array = 0.5 * (z - y) ** 2
        return out


@dataclass
class SoftmaxModel(Model):
    """Multinomial logistic regression over ``n_classes`` (labels 0..n_classes-1)."""

    n_features: int
    n_classes: int
    l2: float = 0.0

    def __post_init__(self) -> None:
        if self.n_classes < 2:
            raise ConfigError("softmax regression needs at least 2 classes")
        self.n_params = (self.n_features + 1) * self.n_classes

    def _split(self, params: Array) -> tuple[Array, Array]:
        k = self.n_classes
        return params[:-k].reshape(self.n_features, k), params[-k:]

    def init_params(self, rng: np.random.Generator) -> Array:
        return np.zeros(self.n_params)

    def check_data(self, X: Array, y: Array) -> None:
        super().check_data(X, y)
        if y.size and (y.min() < 0 or y.max() >= self.n_classes):
            raise DataError(f"labels must be in 0..{self.n_classes - 1}")

    def _proba(self, W: Array, b: Array, X: Array) -> Array:
        z = X @ W + b
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        out: Array = e / e.sum(axis=1, keepdims=True)
        return out

    def loss_grad(self, params: Array, X: Array, y: Array) -> tuple[float, Array]:
        W, b = self._split(params)
        p = self._proba(W, b, X)
        yi = y.astype(np.int64)
        n = X.shape[0]
        loss = float(-np.mean(np.log(p[np.arange(n), yi] + 1e-300))) + 0.5 * self.l2 * float(
            np.sum(W * W)
        )
        p[np.arange(n), yi] -= 1.0
        p /= n
        return loss, np.concatenate([(X.T @ p + self.l2 * W).ravel(), p.sum(axis=0)])

    def predict(self, params: Array, X: Array) -> Array:
        W, b = self._split(params)
        return self._proba(W, b, X)


@dataclass
class MLPModel(Model):
    """A multilayer perceptron with ReLU hidden layers, in numpy.

    ``n_outputs == 1``: binary classification (sigmoid output, labels 0/1); ``n_outputs >= 2``:
    multiclass (softmax, labels 0..n_outputs-1). Layers are initialised like ``torch.nn.Linear``
    (uniform in ±1/sqrt(fan_in)); parameters are laid out layer by layer as ``W`` (in × out,
    row-major) then ``b``.
    """

    n_features: int
    hidden: tuple[int, ...] = (32,)
    n_outputs: int = 1
    l2: float = 0.0

    def __post_init__(self) -> None:
        if self.n_outputs < 1 or any(h < 1 for h in self.hidden):
            raise ConfigError("layer sizes must be positive")
        sizes = (self.n_features, *self.hidden, self.n_outputs)
        self._shapes = [(sizes[i], sizes[i + 1]) for i in range(len(sizes) - 1)]
        self.n_params = sum(i * o + o for i, o in self._shapes)

    @property
    def task(self) -> str:
        return "binary" if self.n_outputs == 1 else "multiclass"

    def _layers(self, params: Array) -> list[tuple[Array, Array]]:
        out, pos = [], 0
        for i, o in self._shapes:
            W = params[pos : pos + i * o].reshape(i, o)
            pos += i * o
            out.append((W, params[pos : pos + o]))
            pos += o
        return out

    def init_params(self, rng: np.random.Generator) -> Array:
        parts = []
        for i, o in self._shapes:
            bound = 1.0 / np.sqrt(i)
            parts += [rng.uniform(-bound, bound, i * o), rng.uniform(-bound, bound, o)]
        return np.concatenate(parts)

    def check_data(self, X: Array, y: Array) -> None:
        super().check_data(X, y)
        if X.shape[1] != self.n_features:
            raise DataError(f"expected {self.n_features} features, got {X.shape[1]}")

    def _forward(self, params: Array, X: Array) -> tuple[list[Array], Array]:
        acts = [X]
        layers = self._layers(params)
        h = X
        for W, b in layers[:-1]:
            h = np.maximum(h @ W + b, 0.0)
            acts.append(h)
        W, b = layers[-1]
        return acts, h @ W + b

    def _output(self, z: Array) -> Array:
        if self.n_outputs == 1:
            return _sigmoid(z[:, 0])
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        out: Array = e / e.sum(axis=1, keepdims=True)
        return out

    def loss_grad(self, params: Array, X: Array, y: Array) -> tuple[float, Array]:
        acts, z = self._forward(params, X)
        n = X.shape[0]
        if self.n_outputs == 1:
            zz = z[:, 0]
            loss = float(np.mean(np.logaddexp(0.0, zz) - y * zz))
            dz = ((_sigmoid(zz) - y) / n)[:, None]
        else:
            p = self._output(z)
            yi = y.astype(np.int64)
            loss = float(-np.mean(np.log(p[np.arange(n), yi] + 1e-300)))
            p[np.arange(n), yi] -= 1.0
            dz = p / n
        layers = self._layers(params)
        grads: list[Array] = []
        for li in range(len(layers) - 1, -1, -1):
            W, _ = layers[li]
            a = acts[li]
            grads.append(dz.sum(axis=0))
            grads.append((a.T @ dz + self.l2 * W).ravel())
            if li:
                dz = (dz @ W.T) * (a > 0)
        loss += 0.5 * self.l2 * sum(float(np.sum(W * W)) for W, _ in layers)
        return loss, np.concatenate(grads[::-1])

    def predict(self, params: Array, X: Array) -> Array:
        return self._output(self._forward(params, X)[1])

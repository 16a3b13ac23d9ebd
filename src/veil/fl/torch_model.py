"""torch ``nn.Module``s as federated models (extra ``veil[torch]``; CPU build: ``pip install
torch==2.13.0``).

:class:`TorchModel` adapts a module factory to :class:`veil.fl.models.Model`: parameters travel
as one flat float64 vector (``parameters_to_vector``), never pickled; local training is torch
SGD (optionally with momentum) over mini-batches in an order drawn from the round's numpy
generator; FedProx's proximal term and SCAFFOLD's correction are added to the gradients.

Sample-level differential privacy inside each client (``dp_sgd=(noise_multiplier,
max_grad_norm)``) goes through opacus (:class:`veil.dp.opacus_adapter.DPSGDTrainer`): per-sample
clipping, Gaussian noise per step, Poisson-sampled batches; :meth:`TorchModel.dp_epsilon` gives
the client's ε(δ) over all its steps, composed by dp-accounting (unit: one training record of
that client). Client-level guarantees are :mod:`veil.fl.private`'s.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from veil.errors import ConfigError, DataError
from veil.fl.models import Array, LocalTraining, Model

_INSTALL = "pip install torch==2.13.0 && pip install 'veil[torch]'"


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise ConfigError(f"torch models need torch: {_INSTALL}") from None
    return torch


class TorchModel(Model):
    """A federated model backed by a torch module.

    Parameters
    ----------
    factory:
        Builds the module (called once per party; the server's initial weights are the ones
        every client starts from, since the server publishes them in round 1).
    task:
        ``"multiclass"`` (cross-entropy over logits; labels 0..k-1), ``"binary"`` (one logit,
        BCE; labels 0/1) or ``"regression"`` (MSE).
    dp_sgd:
        ``(noise_multiplier, max_grad_norm)`` for sample-level DP-SGD through opacus.
    """

    def __init__(
        self,
        factory: Callable[[], Any],
        *,
        task: str = "multiclass",
        dp_sgd: tuple[float, float] | None = None,
    ) -> None:
        if task not in ("multiclass", "binary", "regression"):
            raise ConfigError(f"unknown task {task!r}: multiclass, binary or regression")
        torch = _torch()
        self.torch = torch
        self.module = factory()
        # evaluation runs on its own copy, outside opacus' per-sample hooks
        self._eval = factory()
        self.task = task
        self.dp_sgd = dp_sgd
        self._trainer: Any = None
        self.n_params = int(sum(p.numel() for p in self.module.parameters()))

    # ------------------------------------------------------------- parameters
    def _set(self, params: Array, module: Any = None) -> None:
        vec = self.torch.from_numpy(np.asarray(params, dtype=np.float32))
        target = self.module if module is None else module
        self.torch.nn.utils.vector_to_parameters(vec, target.parameters())

    def _get(self) -> Array:
        vec = self.torch.nn.utils.parameters_to_vector(self.module.parameters())
        out: Array = vec.detach().cpu().numpy().astype(np.float64)
        return out

    def init_params(self, rng: np.random.Generator) -> Array:
        return self._get()

    # ------------------------------------------------------------------- math
    def _loss(self, out: Any, y: Any) -> Any:
        F = self.torch.nn.functional
        if self.task == "multiclass":
            return F.cross_entropy(out, y.long())
        if self.task == "binary":
            return F.binary_cross_entropy_with_logits(out.reshape(-1), y.float())
        return F.mse_loss(out.reshape(y.shape), y.float()) * 0.5

    def check_data(self, X: Array, y: Array) -> None:
        super().check_data(X, y)
        if not (np.all(np.isfinite(X)) and np.all(np.isfinite(y))):
            raise DataError("training data holds NaN or infinity")

    def loss_grad(self, params: Array, X: Array, y: Array) -> tuple[float, Array]:
        torch = self.torch
        self._set(params, self._eval)
        self._eval.zero_grad()
        loss = self._loss(self._eval(torch.from_numpy(X.astype(np.float32))), torch.from_numpy(y))
        loss.backward()
        grads = [p.grad.reshape(-1) for p in self._eval.parameters()]
        return float(loss.item()), torch.cat(grads).detach().numpy().astype(np.float64)

    def predict(self, params: Array, X: Array) -> Array:
        torch = self.torch
        self._set(params, self._eval)
        with torch.no_grad():
            out = self._eval(torch.from_numpy(X.astype(np.float32)))
            if self.task == "multiclass":
                out = torch.softmax(out, dim=1)
            elif self.task == "binary":
                out = torch.sigmoid(out.reshape(-1))
        result: Array = out.numpy().astype(np.float64)
        return result

    # --------------------------------------------------------------- training
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
        self.check_data(X, y)
        if self.dp_sgd is not None:
            if correction is not None or opts.prox_mu:
                raise ConfigError("DP-SGD is not combined with SCAFFOLD or FedProx here")
            return self._fit_dp(params, X, y, opts)
        torch = self.torch
        self._set(params)
        start = torch.from_numpy(np.asarray(params, dtype=np.float32))
        corr = None if correction is None else torch.from_numpy(correction.astype(np.float32))
        opt = torch.optim.SGD(self.module.parameters(), lr=opts.lr, momentum=opts.momentum)
        Xt, yt = torch.from_numpy(X.astype(np.float32)), torch.from_numpy(y)
        steps = 0
        self.module.train()
        for _ in range(opts.epochs):
            order = torch.from_numpy(rng.permutation(len(y)))
            for lo in range(0, len(y), opts.batch_size):
                b = order[lo : lo + opts.batch_size]
                opt.zero_grad()
                self._loss(self.module(Xt[b]), yt[b]).backward()
                if opts.prox_mu or corr is not None:
                    self._adjust_grads(start, corr, opts.prox_mu)
                opt.step()
                steps += 1
        return self._get(), steps

    def _adjust_grads(self, start: Any, corr: Any, mu: float) -> None:
        torch = self.torch
        w = torch.nn.utils.parameters_to_vector(self.module.parameters()).detach()
        extra = torch.zeros_like(w)
        if mu:
            extra += mu * (w - start)
        if corr is not None:
            extra += corr
        pos = 0
        for p in self.module.parameters():
            n = p.numel()
            p.grad.add_(extra[pos : pos + n].reshape(p.shape))
            pos += n

    def _fit_dp(self, params: Array, X: Array, y: Array, opts: LocalTraining) -> tuple[Array, int]:
        torch = self.torch
        self._set(params)
        if self._trainer is None:
            from veil.dp.opacus_adapter import DPSGDTrainer

            data = torch.utils.data.TensorDataset(
                torch.from_numpy(X.astype(np.float32)), torch.from_numpy(y)
            )
            loader = torch.utils.data.DataLoader(data, batch_size=opts.batch_size)
            opt = torch.optim.SGD(self.module.parameters(), lr=opts.lr, momentum=opts.momentum)
            z, clip = self.dp_sgd or (0.0, 0.0)
            self._trainer = DPSGDTrainer(self.module, opt, loader, noise_multiplier=z,
                                         max_grad_norm=clip)  # fmt: skip
        tr = self._trainer
        before = tr.steps
        tr.module.train()
        for _ in range(opts.epochs):
            for xb, yb in tr.data_loader:
                if len(yb) == 0:
                    continue
                tr.optimizer.zero_grad()
                self._loss(tr.module(xb), yb).backward()
                tr.optimizer.step()
        return self._get(), tr.steps - before

    def dp_epsilon(self, delta: float) -> float | None:
        """This client's sample-level ε(δ) so far (``None`` without DP-SGD or before training)."""
        return None if self._trainer is None else float(self._trainer.epsilon(delta))

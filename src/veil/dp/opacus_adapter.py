"""Sample-level DP-SGD inside one client for torch models, through opacus (``veil[dp,torch]``).

:class:`DPSGDTrainer` wraps a torch module, optimizer and data loader with opacus'
``PrivacyEngine.make_private`` (per-sample gradient clipping to ``max_grad_norm``, Gaussian
noise of stddev ``noise_multiplier * max_grad_norm`` per step, Poisson sampling of batches).
The steps opacus took are read back from its history and accounted by **dp-accounting**
(``SelfComposed(PoissonSampled(q, Gaussian(z)), steps)``, one call with the step count), so the
numbers in the ledger come from the same accountant as every other veil release.

Unit of privacy: one *training record of this client* (``unit="record"``), over all the steps
this trainer ran (across FL rounds, if the same trainer is reused). Client-level guarantees
come from :mod:`veil.dp.fedavg`.

Noise RNG: opacus draws the noise with torch's generator. With ``secure_mode=True`` opacus uses
a CSPRNG and its floating-point-attack mitigation, but needs the ``torchcsprng`` package, which
veil does not install; without it, the noise is not cryptographically random — fine for
research, state it in a production deployment.

torch and opacus are imported on first use; when missing, an actionable
:class:`~veil.errors.ConfigError` says ``pip install 'veil[dp,torch]'``.
"""

from __future__ import annotations

from dataclasses import replace
from importlib import import_module
from types import ModuleType
from typing import Any

from veil.dp.accounting import AccountantKind, compose_epsilon
from veil.dp.spec import DPEventRecord, EventKind
from veil.errors import ConfigError

_INSTALL = "pip install 'veil[dp,torch]'"


def _opacus() -> ModuleType:
    try:
        import_module("torch")
        return import_module("opacus")
    except ImportError as exc:
        raise ConfigError(
            f"sample-level DP-SGD needs torch and opacus, which are not installed: {_INSTALL}"
        ) from exc


class DPSGDTrainer:
    """A torch training setup made differentially private per sample by opacus.

    Parameters
    ----------
    module, optimizer, data_loader:
        The client's ``torch.nn.Module``, ``torch.optim.Optimizer`` and ``DataLoader``.
    noise_multiplier:
        ``z``: Gaussian noise stddev over ``max_grad_norm`` per step.
    max_grad_norm:
        Per-sample L2 gradient clipping bound.
    secure_mode:
        Passed to opacus (needs ``torchcsprng``).

    Attributes
    ----------
    module, optimizer, data_loader:
        The private versions to train with (use them in the usual torch loop).
    sample_rate:
        Poisson sampling rate ``q`` of a record per step (opacus' ``1 / len(data_loader)``).
    """

    def __init__(
        self,
        module: Any,
        optimizer: Any,
        data_loader: Any,
        *,
        noise_multiplier: float,
        max_grad_norm: float,
        secure_mode: bool = False,
    ) -> None:
        if not float(noise_multiplier) > 0.0 or not float(max_grad_norm) > 0.0:
            raise ConfigError("DP-SGD needs noise_multiplier > 0 and max_grad_norm > 0")
        opacus = _opacus()
        self._engine = opacus.PrivacyEngine(accountant="rdp", secure_mode=secure_mode)
        self.module, self.optimizer, self.data_loader = self._engine.make_private(
            module=module,
            optimizer=optimizer,
            data_loader=data_loader,
            noise_multiplier=float(noise_multiplier),
            max_grad_norm=float(max_grad_norm),
            poisson_sampling=True,
        )
        self.noise_multiplier = float(noise_multiplier)
        self.max_grad_norm = float(max_grad_norm)
        self.sample_rate = 1.0 / len(self.data_loader)

    @property
    def steps(self) -> int:
        """Noisy optimizer steps taken so far (from opacus' step history)."""
        return sum(int(n) for _, _, n in self._engine.accountant.history)

    def events(self, delta: float) -> list[DPEventRecord]:
        """The steps taken so far as dp-accounting-ready records (one per distinct setting)."""
        out: list[DPEventRecord] = []
        for z, q, n in self._engine.accountant.history:
            kind = EventKind.SUBSAMPLED_GAUSSIAN if float(q) < 1.0 else EventKind.GAUSSIAN
            base = DPEventRecord(
                kind=kind,
                mechanism="dp-sgd",
                epsilon=float("nan"),
                delta=float(delta),
                sensitivity=self.max_grad_norm,
                noise_scale=float(z) * self.max_grad_norm,
                noise_multiplier=float(z),
                count=int(n),
                sampling_rate=float(q),
                query="per-sample-clipped-gradient-sum",
                unit="record",
            )
            eps = compose_epsilon([base], delta, AccountantKind.RDP)
            out.append(replace(base, epsilon=eps))
        return out

    def epsilon(self, delta: float, accountant: AccountantKind | str = "rdp") -> float:
        """epsilon(delta) of all steps so far, composed by dp-accounting."""
        return compose_epsilon(self.events(delta), delta, accountant)

    def opacus_epsilon(self, delta: float) -> float:
        """opacus' own RDP figure, for cross-checking only (veil reports :meth:`epsilon`)."""
        return float(self._engine.accountant.get_epsilon(delta=float(delta)))


__all__ = ["DPSGDTrainer"]

"""Federated optimisation strategies: FedAvg, FedProx, SCAFFOLD and server optimisers (FedOpt).

A strategy says what a client sends and how the server turns the aggregated sum into the next
global model. Clients always send *weighted* sums so that one secure sum serves every strategy:
``[n_i * delta_i, n_i]`` (plus ``n_i * delta_c_i`` for SCAFFOLD), where ``delta_i`` is the
client's model change and ``n_i`` its number of training rows. The server only ever sees the sum.

- FedAvg (McMahan et al. 2017): ``w += sum(n_i delta_i) / sum(n_i)``.
- FedProx (Li et al. 2020): FedAvg with a proximal term ``mu/2 ||w - w_global||^2`` in local
  training (set ``LocalTraining.prox_mu``).
- SCAFFOLD (Karimireddy et al. 2020): control variates correct client drift; each client keeps
  its ``c_i``; the server keeps ``c``. The weighted mean of ``delta_c_i`` over the sampled clients,
  scaled by the sampled fraction, updates ``c``.
- FedAdam / FedYogi / FedAdagrad (Reddi et al. 2021): the averaged change is a pseudo-gradient
  for a server-side adaptive optimiser.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

from veil.errors import ConfigError
from veil.fl.models import Array


class ServerOpt(StrEnum):
    """Server-side update rule."""

    AVG = "avg"
    ADAM = "adam"
    YOGI = "yogi"
    ADAGRAD = "adagrad"


@dataclass(frozen=True)
class Strategy:
    """Options of the federated optimisation.

    Parameters
    ----------
    server_opt:
        ``avg`` (FedAvg/FedProx), ``adam``, ``yogi`` or ``adagrad`` (FedOpt).
    server_lr:
        Server learning rate (1.0 for FedAvg).
    scaffold:
        Use SCAFFOLD control variates.
    beta1, beta2, tau:
        FedOpt moments and adaptivity (Reddi et al. defaults).
    """

    server_opt: ServerOpt = ServerOpt.AVG
    server_lr: float = 1.0
    scaffold: bool = False
    beta1: float = 0.9
    beta2: float = 0.99
    tau: float = 1e-3

    def __post_init__(self) -> None:
        if self.server_lr <= 0 or self.tau <= 0:
            raise ConfigError("server_lr and tau must be positive")
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            raise ConfigError("beta1 and beta2 must be in [0, 1)")

    def upload_size(self, n_params: int) -> int:
        """Length of a client's upload vector: weighted change(s) and the weight."""
        return (2 if self.scaffold else 1) * n_params + 1


@dataclass
class ServerState:
    """What the server keeps between rounds (checkpointed)."""

    params: Array
    control: Array | None = None
    m: Array | None = None
    v: Array | None = None
    round: int = 0
    extra: dict[str, float] = field(default_factory=dict)


def client_upload(delta: Array, n_rows: int, delta_c: Array | None = None) -> Array:
    """The vector a client contributes to the secure sum."""
    parts = [n_rows * delta]
    if delta_c is not None:
        parts.append(n_rows * delta_c)
    parts.append(np.array([float(n_rows)]))
    return np.concatenate(parts)


def server_update(
    strategy: Strategy, state: ServerState, total: Array, *, sampled_fraction: float = 1.0
) -> ServerState:
    """Apply one round's aggregated upload ``total`` (the sum of :func:`client_upload`)."""
    d = state.params.shape[0]
    weight = float(total[-1])
    if weight <= 0:
        raise ConfigError("no training rows were aggregated this round")
    delta = total[:d] / weight
    control = state.control
    if strategy.scaffold:
        dc = total[d : 2 * d] / weight
        control = (control if control is not None else np.zeros(d)) + sampled_fraction * dc
    m, v = state.m, state.v
    if strategy.server_opt is ServerOpt.AVG:
        params = state.params + strategy.server_lr * delta
    else:
        m = (m if m is not None else np.zeros(d)) * strategy.beta1 + (1 - strategy.beta1) * delta
        sq = delta * delta
        if v is None:
            v = np.full(d, strategy.tau**2)
        if strategy.server_opt is ServerOpt.ADAM:
            v = strategy.beta2 * v + (1 - strategy.beta2) * sq
        elif strategy.server_opt is ServerOpt.YOGI:
            v = v - (1 - strategy.beta2) * sq * np.sign(v - sq)
        else:
            v = v + sq
        params = state.params + strategy.server_lr * m / (np.sqrt(v) + strategy.tau)
    return ServerState(params, control, m, v, state.round + 1, dict(state.extra))

"""Client-level differential privacy for the federated loop (DP-FedAvg, McMahan et al. 2018).

With ``FLConfig.dp`` set, every sampled client clips its model change to L2 norm ``clip_norm``
and the server averages the clipped changes *unweighted*, with Gaussian noise calibrated by
:func:`veil.dp.plan_dpfedavg` so that the whole run meets ``(epsilon, delta)`` for any one
client's participation:

- **distributed** (with secure aggregation, the default): each client encodes its clipped change
  to integers (``scale`` ring units per unit) and adds its share of discrete Gaussian noise
  (:class:`veil.dp.DistributedNoise`) before masking, so the server only ever sees the noisy
  sum. Accounted by the Kairouz–Liu–Steinke bound for the honest survivors of the round
  (``min_clients − max_colluding`` at worst); no amplification by sampling is claimed.
- **central** (with ``plain`` aggregation): clients send clipped changes in the clear and the
  server adds Gaussian noise of standard deviation ``z · clip_norm`` (OpenDP sampler). The
  server is trusted with the raw changes.

The server holds a :class:`veil.dp.PrivacyBudget` of exactly the planned run: before a round it
checks the worst case (fewest survivors), after the sum it spends the round's actual event and
writes it to the audit ledger; a round that would exceed the budget raises
:class:`veil.errors.PrivacyBudgetExceeded` and nothing of it is revealed. ε(δ) spent so far is in
every round's history entry.

Not covered by ε: the final federated evaluation (pooled held-out metrics are released without
noise, like the model itself) and the preprocessing statistics. Per-round evaluation is off in
DP mode. SCAFFOLD and the robust aggregators are refused with DP (their extra statistics are
not accounted).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from veil.errors import ConfigError, DataError
from veil.fl.models import Array


@dataclass(frozen=True)
class DPConfig:
    """Client-level DP of a federated run.

    Parameters
    ----------
    epsilon, delta:
        The target guarantee of the whole run, per client.
    clip_norm:
        L2 bound of one client's model change per round.
    min_clients:
        Fewest survivors a round may have and still be released (default: every sampled
        client, i.e. a round with any dropout fails). The noise is calibrated to it.
    max_colluding:
        Clients assumed to collude with the server (their noise does not count).
    scale:
        Ring units per real unit in distributed mode (fixed-point resolution ``1/scale``).
    accountant:
        ``"rdp"`` or ``"pld"`` (central mode; distributed mode accounts with RDP).
    """

    epsilon: float
    delta: float
    clip_norm: float = 1.0
    min_clients: int | None = None
    max_colluding: int = 0
    scale: float = 2.0**16
    accountant: str = "rdp"

    def __post_init__(self) -> None:
        if not (self.epsilon > 0 and 0 < self.delta < 1 and self.clip_norm > 0 and self.scale > 0):
            raise ConfigError("DP needs epsilon > 0, 0 < delta < 1, clip_norm > 0 and scale > 0")


class DPRound:
    """The DP plan of a run, shared by every party (all derive it from the same config)."""

    def __init__(self, cfg: DPConfig, *, rounds: int, n_per_round: int, dim: int,
                 distributed: bool) -> None:  # fmt: skip
        from veil.dp import DPFedAvgMode, plan_dpfedavg

        self.cfg, self.dim, self.distributed = cfg, dim, distributed
        self.min_clients = cfg.min_clients or n_per_round
        if not 1 <= self.min_clients <= n_per_round:
            raise ConfigError(
                f"min_clients={self.min_clients} must be between 1 and the {n_per_round} "
                "clients sampled per round"
            )
        mode = DPFedAvgMode.DISTRIBUTED if distributed else DPFedAvgMode.CENTRAL
        self.plan = plan_dpfedavg(cfg.epsilon, cfg.delta, rounds, clip_norm=cfg.clip_norm,
                                  sampling_rate=1.0, mode=mode,
                                  accountant="rdp" if distributed else cfg.accountant)  # fmt: skip
        self.noise = None
        if distributed:
            self.noise = self.plan.distributed_noise(
                scale=cfg.scale, dimension=dim, min_clients=self.min_clients,
                max_colluding=cfg.max_colluding,
            )  # fmt: skip
            self.noise.check_headroom(n_per_round)

    def budget(self) -> Any:
        """The server's budget for the planned run."""
        return self.plan.budget()

    def client_upload(self, delta: Array, n_selected: int, party: str) -> Array:
        """A client's contribution: the clipped change, encoded and noised when distributed."""
        from veil.dp import clip_l2

        change = np.asarray(delta, dtype=np.float64)
        if not np.all(np.isfinite(change)):
            raise DataError(f"client {party!r}: its model change holds NaN/Inf")
        clipped, _ = clip_l2(change, self.cfg.clip_norm)
        if self.noise is None:
            return np.asarray(clipped, dtype=np.float64)
        q = self.noise.encode(clipped) + self.noise.client_noise(self.dim, n_selected)
        out: Array = q.astype(np.float64)  # exact: |q| < 2^53, summed with 0 fractional bits
        return out

    def worst_event(self) -> Any:
        """The round event with the fewest survivors allowed (the largest ε)."""
        if self.noise is not None:
            return self.noise.event(self.min_clients, self.cfg.delta)
        return self.plan.round_event((self.dim,))

    def server_mean(
        self, total: Array, n_survivors: int, budget: Any
    ) -> tuple[Array, dict[str, Any]]:
        """Spend the round, then the noisy mean change; returns it and the ledger entry."""
        if n_survivors < self.min_clients:
            raise ConfigError(
                f"only {n_survivors} clients survived the round, fewer than min_clients="
                f"{self.min_clients}; the round is not released"
            )
        if self.noise is not None:
            entry = budget.spend(self.noise.event(n_survivors, self.cfg.delta))
            noisy_sum = self.noise.decode(np.rint(total).astype(np.int64))
        else:
            from veil.dp import add_central_noise

            entry = budget.spend(self.plan.round_event((self.dim,)))
            noisy_sum = add_central_noise(total, self.plan.noise_multiplier, self.cfg.clip_norm)
        return noisy_sum / n_survivors, entry

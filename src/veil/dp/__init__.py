"""Differential privacy: mechanisms, accounting, budget, distributed noise, DP-FedAvg.

Public API (imports no optional dependency until used):

* :class:`DPSpec`, :class:`DPEventRecord`, :class:`Mechanism` — frozen descriptions of a release;
* :func:`release` — Laplace / Gaussian release of counts, sums, means, histograms (OpenDP noise);
* :class:`PrivacyBudget` — refuses a release that would exceed the job's ``(epsilon, delta)``;
* :func:`compose_epsilon` — dp-accounting (RDP / PLD) composition of records;
* :func:`plan_dpfedavg`, :func:`dpfedavg_epsilon`, :func:`dpfedavg_noise_multiplier`,
  :func:`poisson_sample` — client-level DP-FedAvg;
* :class:`DistributedNoise`, :func:`distributed_noise_multiplier` — per-client discrete
  Gaussian noise under secure aggregation;
* :func:`clip_l2`, :class:`AdaptiveClipping` — update clipping.

Sample-level DP-SGD for torch lives in :mod:`veil.dp.opacus_adapter` (extra ``veil[dp,torch]``).
See ``docs/dp.md``.
"""

from veil.dp.accounting import AccountantKind, compose_epsilon
from veil.dp.budget import PrivacyBudget
from veil.dp.clipping import AdaptiveClipping, clip_l2, clip_l2_list, l2_norm
from veil.dp.distributed import DistributedNoise, distributed_noise_multiplier
from veil.dp.fedavg import (
    DPFedAvgMode,
    DPFedAvgPlan,
    add_central_noise,
    dpfedavg_epsilon,
    dpfedavg_noise_multiplier,
    dpfedavg_round_event,
    plan_dpfedavg,
    poisson_sample,
)
from veil.dp.mechanisms import clamp, release
from veil.dp.spec import DPEventRecord, DPSpec, EventKind, Mechanism, Neighbouring

__all__ = [
    "AccountantKind",
    "AdaptiveClipping",
    "DPEventRecord",
    "DPFedAvgMode",
    "DPFedAvgPlan",
    "DPSpec",
    "DistributedNoise",
    "EventKind",
    "Mechanism",
    "Neighbouring",
    "PrivacyBudget",
    "add_central_noise",
    "clamp",
    "clip_l2",
    "clip_l2_list",
    "compose_epsilon",
    "distributed_noise_multiplier",
    "dpfedavg_epsilon",
    "dpfedavg_noise_multiplier",
    "dpfedavg_round_event",
    "l2_norm",
    "plan_dpfedavg",
    "poisson_sample",
    "release",
]

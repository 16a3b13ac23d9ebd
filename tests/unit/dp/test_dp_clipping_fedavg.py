"""Clipping (plain and adaptive) and DP-FedAvg central noise."""

from __future__ import annotations

import math

import numpy as np
import pytest

from veil.dp import (
    AdaptiveClipping,
    DPFedAvgMode,
    add_central_noise,
    clip_l2,
    clip_l2_list,
    l2_norm,
    plan_dpfedavg,
    poisson_sample,
)
from veil.dp.fedavg import dpfedavg_round_event
from veil.dp.spec import EventKind
from veil.errors import ConfigError, DataError, PrivacyBudgetExceeded


def test_clip_l2_scales_only_long_updates() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        u = rng.normal(size=37) * rng.uniform(0.01, 10)
        out, norm = clip_l2(u, 1.5)
        assert norm == pytest.approx(np.linalg.norm(u))
        if norm <= 1.5:
            np.testing.assert_array_equal(out, u)
        else:
            assert np.linalg.norm(out) == pytest.approx(1.5)
            np.testing.assert_allclose(out * norm / 1.5, u)  # direction kept


def test_clip_list_uses_the_global_norm() -> None:
    parts = [np.full((2, 3), 1.0), np.full(4, 2.0)]
    flat = np.concatenate([p.ravel() for p in parts])
    out, norm = clip_l2_list(parts, 2.0)
    assert norm == pytest.approx(np.linalg.norm(flat)) == pytest.approx(l2_norm(parts))
    assert l2_norm(out) == pytest.approx(2.0)
    assert [o.shape for o in out] == [(2, 3), (4,)]
    np.testing.assert_allclose(out[1] / out[0][0, 0], 2.0)


def test_clip_refuses_nan_and_bad_bounds() -> None:
    with pytest.raises(DataError):
        clip_l2(np.array([1.0, np.inf]), 1.0)
    with pytest.raises(ConfigError):
        clip_l2(np.ones(3), 0.0)


def test_adaptive_clipping_tracks_the_target_quantile() -> None:
    rng = np.random.default_rng(1)
    ac = AdaptiveClipping(target_quantile=0.7, learning_rate=0.2, count_stddev=5.0)
    clip = 0.01
    for _ in range(400):  # noiseless bit sums: converges to the 0.7 quantile of the norms
        norms = rng.lognormal(mean=0.0, sigma=0.5, size=100)
        bits = sum(ac.client_bit(n, clip) for n in norms)
        clip = ac.next_clip(clip, bits, 100)
    q07 = math.exp(0.5 * 0.5244)  # lognormal 0.7 quantile: exp(sigma * Phi^-1(0.7))
    assert clip == pytest.approx(q07, rel=0.1)


def test_adaptive_clipping_noise_split_is_as_private_as_z() -> None:
    ac = AdaptiveClipping(count_stddev=5.0)
    z = 1.2
    z_update = ac.update_noise_multiplier(z)
    assert z_update > z
    assert z_update**-2 + (2 * 5.0) ** -2 == pytest.approx(z**-2)
    with pytest.raises(ConfigError, match="count_stddev"):
        AdaptiveClipping(count_stddev=0.5).update_noise_multiplier(1.2)


def test_central_noise_variance() -> None:
    n, z, c = 20_000, 1.5, 2.0
    total = np.full(n, 3.0)
    noise = add_central_noise(total, z, c) - total
    var = (z * c) ** 2
    assert abs(float(np.var(noise)) - var) <= 6 * var * math.sqrt(2.0 / n)


def test_round_event_record() -> None:
    rec = dpfedavg_round_event(1.1, 0.2, clip_norm=0.5, delta=1e-5, shape=(10,), rounds=3)
    assert rec.kind is EventKind.SUBSAMPLED_GAUSSIAN and rec.unit == "client"
    assert rec.noise_scale == pytest.approx(0.55) and rec.count == 3
    full = dpfedavg_round_event(1.1, 1.0, clip_norm=0.5, delta=1e-5)
    assert full.kind is EventKind.GAUSSIAN
    assert full.epsilon > rec.epsilon / 3  # no amplification at q = 1


def test_plan_distributed_run_fits_its_budget_exactly() -> None:
    plan = plan_dpfedavg(4.0, 1e-5, 10, clip_norm=1.0)
    assert plan.mode is DPFedAvgMode.DISTRIBUTED and plan.epsilon <= 4.0 * (1 + 1e-9)
    dn = plan.distributed_noise(scale=2.0**16, dimension=100, min_clients=5, max_colluding=1)
    budget = plan.budget()
    for _ in range(10):
        budget.spend(dn.event(5, plan.delta))  # the minimum survivors every round
    assert budget.spent()[0] == pytest.approx(plan.epsilon, rel=1e-6)
    with pytest.raises(PrivacyBudgetExceeded):
        budget.spend(dn.event(5, plan.delta))  # an eleventh round is refused
    with pytest.raises(ConfigError):
        plan.round_event()


def test_plan_central_run() -> None:
    plan = plan_dpfedavg(2.0, 1e-5, 8, clip_norm=0.5, sampling_rate=0.2, mode="central")
    budget = plan.budget()
    rec = plan.round_event(shape=(3,))
    assert rec.noise_scale == pytest.approx(plan.noise_multiplier * 0.5)
    for _ in range(8):
        budget.spend(rec)
    with pytest.raises(PrivacyBudgetExceeded):
        budget.spend(rec)
    with pytest.raises(ConfigError):
        plan.distributed_noise(scale=1.0, dimension=1, min_clients=1)


def test_poisson_sample_rate() -> None:
    rng = np.random.default_rng(4)
    clients = [f"c{i}" for i in range(20_000)]
    picked = poisson_sample(clients, 0.3, lambda n: rng.bytes(n))
    p = len(picked) / len(clients)
    assert abs(p - 0.3) <= 6 * math.sqrt(0.3 * 0.7 / len(clients))
    assert set(picked) <= set(clients) and len(set(picked)) == len(picked)
    assert poisson_sample(clients[:5], 1.0) == clients[:5]
    with pytest.raises(ConfigError):
        poisson_sample(clients, 0.0)

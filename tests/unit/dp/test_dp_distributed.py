"""Distributed discrete Gaussian noise: variance of the sum, ring round trip, headroom, accounting."""

from __future__ import annotations

import math

import dp_accounting as dpa
import numpy as np
import pytest

from veil.dp import DistributedNoise, clip_l2
from veil.dp.distributed import discrete_gaussian, distributed_noise_multiplier, kls_tau
from veil.dp.spec import EventKind
from veil.errors import ConfigError, DataError, ProtocolError

Z = 6.0


def _noise(**kw: float) -> DistributedNoise:
    params: dict = dict(
        noise_multiplier=1.0, clip_norm=1.0, scale=2.0**10, dimension=4000, min_clients=4
    )
    params.update(kw)
    return DistributedNoise(**params)


def test_sum_over_clients_has_the_stated_variance() -> None:
    dn = _noise(max_colluding=1)
    n = 5
    total = sum(dn.client_noise(4000, n).astype(np.float64) for _ in range(n))
    # each client adds sigma_c^2 = (z D)^2 / (min_clients - max_colluding)
    var = n * dn.client_stddev**2
    assert dn.sum_stddev(n) ** 2 == pytest.approx(var)
    assert dn.client_stddev == pytest.approx(dn.target_stddev / math.sqrt(3))
    se = var * math.sqrt(2.0 / total.size)
    assert abs(float(np.var(total)) - var) <= Z * se
    assert abs(float(np.mean(total))) <= Z * math.sqrt(var / total.size)
    # the fewest honest survivors (min_clients - max_colluding) carry the target noise
    assert (dn.min_clients - dn.max_colluding) * dn.client_stddev**2 == pytest.approx(
        dn.target_stddev**2
    )


def test_discrete_gaussian_is_integer_with_variance_sigma_squared() -> None:
    x = discrete_gaussian(20_000, 7.5)
    assert x.dtype == np.int64
    var = 7.5**2  # N_Z(0, s^2) has variance s^2 up to exp(-2 pi^2 s^2) for s >= 1
    assert abs(float(np.var(x)) - var) <= Z * var * math.sqrt(2.0 / x.size)


def test_secure_sum_round_trip_on_the_ring() -> None:
    rng = np.random.default_rng(7)
    dn = _noise(dimension=50, scale=2.0**20, min_clients=3)
    updates = [clip_l2(rng.normal(size=50), 1.0)[0] for _ in range(6)]
    ring = np.zeros(50, dtype=np.uint64)
    for u in updates:  # each client: encode + own noise, on Z_2^64 (wrap-around is the ring)
        ring += dn.to_ring(dn.encode(u) + dn.client_noise(50, 6))
    dn.check_headroom(6)
    got = dn.decode(ring)
    truth = np.sum(updates, axis=0)
    # error = rounding (<= 6 * 0.5 / scale) + noise (6-sigma bound of the sum's noise)
    tol = 6 * 0.5 / dn.scale + Z * dn.sum_stddev(6) / dn.scale
    np.testing.assert_allclose(got, truth, atol=tol)
    assert np.max(np.abs(got - truth)) > 0  # noise was actually added


def test_small_ring_decode_is_centred() -> None:
    dn = _noise(dimension=3, scale=4.0, ring_bits=16, noise_multiplier=0.5, min_clients=2)
    vals = np.array([-5, 0, 7], dtype=np.int64)
    ring = dn.to_ring(vals)
    assert int(ring.max()) < 2**16
    np.testing.assert_array_equal(dn.decode(ring), vals / 4.0)


def test_headroom_refuses_a_ring_that_would_wrap() -> None:
    dn = _noise(scale=2.0**40, ring_bits=48)
    with pytest.raises(ConfigError, match="ring"):
        dn.check_headroom(1000)
    bound = _noise().check_headroom(10)
    assert bound >= 10 * (2.0**10 + 0.5)


def test_event_is_kls_zcdp_composed_by_dp_accounting() -> None:
    dn = _noise(max_colluding=1)
    rec = dn.event(n_survivors=6, delta=1e-5, rounds=8)
    honest = 5
    rho = dn.sensitivity**2 / (2 * honest * dn.client_stddev**2)
    xi = kls_tau(honest, dn.client_stddev) * dn.dimension
    assert rec.kind is EventKind.ZCDP and rec.rho == pytest.approx(rho) and rec.xi == xi
    acc = dpa.rdp.RdpAccountant()
    acc.compose(dpa.SelfComposedDpEvent(dpa.ZCDpEvent(rho, xi), 8))
    assert rec.epsilon == pytest.approx(float(acc.get_epsilon(1e-5)), rel=1e-12)
    # the minimum survivors give exactly the target: rho = 1 / (2 z^2)
    assert dn.event(4, 1e-5).rho == pytest.approx(1 / (2 * dn.noise_multiplier**2))
    assert rec.to_dict()["extra"]["n_survivors"] == 6
    with pytest.raises(ProtocolError):
        dn.event(n_survivors=3, delta=1e-5)


def test_kls_tau_values() -> None:
    assert kls_tau(1, 1.0) == 0.0
    assert kls_tau(2, 1.0) == pytest.approx(10 * math.exp(-(math.pi**2)))
    assert kls_tau(100, 50.0) == 0.0  # underflows: negligible at ring scales


def test_sensitivity_includes_rounding() -> None:
    dn = _noise()
    assert dn.sensitivity == pytest.approx(2.0**10 + math.sqrt(4000) / 2)
    rng = np.random.default_rng(3)
    for _ in range(20):
        u = clip_l2(rng.normal(size=4000), 1.0)[0]
        assert np.linalg.norm(dn.encode(u).astype(np.float64)) <= dn.sensitivity


def test_misuse_is_refused() -> None:
    dn = _noise()
    with pytest.raises(ConfigError, match="seed"):
        dn.client_noise(4000, rng_seed=1)
    with pytest.raises(ConfigError, match="min_clients"):
        dn.client_noise(4000, n_clients=2)
    with pytest.raises(ConfigError, match="dimension"):
        dn.client_noise(10)
    with pytest.raises(DataError, match="clip"):
        dn.encode(np.full(4000, 1.0))
    with pytest.raises(DataError):
        dn.encode(np.full(4000, np.nan))
    with pytest.raises(ConfigError, match="1/2"):
        _noise(scale=1e-6, clip_norm=1e-6, dimension=1, noise_multiplier=0.1)
    with pytest.raises(ConfigError, match="honest"):
        _noise(max_colluding=4)


def test_integer_sums_of_counts() -> None:
    # three hospitals sum per-variant counts; one patient moves 2 variants by at most 2 each
    z = distributed_noise_multiplier(1.0, 1e-6)
    dn = DistributedNoise.for_integer_sums(
        z, l2_sensitivity=2 * math.sqrt(2), value_bound=1000, dimension=100, min_clients=3
    )
    assert dn.sensitivity == pytest.approx(2 * math.sqrt(2))  # no rounding term
    rng = np.random.default_rng(5)
    counts = [rng.integers(0, 1000, size=100) for _ in range(3)]
    ring = np.zeros(100, dtype=np.uint64)
    for c in counts:
        ring += dn.to_ring(dn.encode(c) + dn.client_noise(100, 3))
    got = dn.decode(ring)
    np.testing.assert_allclose(got, np.sum(counts, axis=0), atol=Z * dn.sum_stddev(3))
    rec = dn.event(3, 1e-6)
    assert rec.epsilon <= 1.0 + 1e-9
    assert rec.epsilon == pytest.approx(1.0, rel=1e-3)  # calibration is tight
    with pytest.raises(DataError):
        dn.encode(np.full(100, 0.5))
    with pytest.raises(DataError):
        dn.encode(np.full(100, 2000.0))
    with pytest.raises(ConfigError):
        DistributedNoise(1.0, 1.0, 2.0, 10, 3, integer_data=True, value_bound=1.0)


def test_discrete_gaussian_matches_its_pmf() -> None:
    # chi-square goodness of fit against N_Z(0, sigma^2): P(x) ∝ exp(-x^2 / (2 sigma^2))
    from scipy.stats import chi2

    sigma, n = 2.0, 20_000
    x = discrete_gaussian(n, sigma)
    support = np.arange(-60, 61)
    pmf = np.exp(-(support.astype(np.float64) ** 2) / (2 * sigma**2))
    pmf /= pmf.sum()
    edges = np.arange(-6, 7)  # cells -6..6 plus the two tails
    observed = [np.sum(x <= -7)] + [np.sum(x == k) for k in edges] + [np.sum(x >= 7)]
    expected = (
        [pmf[support <= -7].sum()]
        + [pmf[support == k].sum() for k in edges]
        + [pmf[support >= 7].sum()]
    )
    exp_counts = n * np.asarray(expected)
    stat = float(np.sum((np.asarray(observed) - exp_counts) ** 2 / exp_counts))
    assert stat < chi2.isf(1e-7, df=len(observed) - 1), stat


def test_dp_opening_of_additive_shares() -> None:
    # A secret-shared integer vector (e.g. counts inside semi2k) opened with DP: every holder adds
    # noise to its own share; with all but one holder possibly colluding, each adds the full
    # target noise (honest = 1), and the opened value carries at least that much.
    parties, d = 3, 2_000
    dn = DistributedNoise.for_integer_sums(
        2.0,
        l2_sensitivity=1.0,
        value_bound=10**6,
        dimension=d,
        min_clients=parties,
        max_colluding=parties - 1,
    )
    assert dn.client_stddev == pytest.approx(dn.target_stddev)
    rng = np.random.default_rng(11)
    secret = rng.integers(0, 10**6, size=d)
    shares = [rng.integers(0, 2**63, size=d, dtype=np.int64).view(np.uint64) for _ in range(2)]
    shares.append(dn.to_ring(secret) - shares[0] - shares[1])
    opened = sum(s + dn.to_ring(dn.client_noise(d, parties)) for s in shares)
    err = dn.decode(opened) - secret
    var = parties * dn.client_stddev**2
    assert abs(float(np.var(err)) - var) <= Z * var * math.sqrt(2.0 / d)
    rec = dn.event(parties, 1e-6)
    assert rec.rho == pytest.approx(1.0 / (2 * 2.0**2))  # one honest party's noise is accounted

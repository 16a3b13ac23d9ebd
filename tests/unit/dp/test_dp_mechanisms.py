"""Mechanisms: noise of the stated variance (statistical), specs from bounds, records.

OpenDP's samplers draw from a CSPRNG and cannot be seeded, so the statistical checks use enough
draws that a 6-standard-error bound fails with probability far below 1e-6: for a sample variance
of N draws with kurtosis k, the standard error is var * sqrt((k - 1) / N) (k = 3 Gaussian,
6 Laplace); for an exceedance frequency p, sqrt(p (1 - p) / N).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from veil.dp import DPSpec, Mechanism, clamp, release
from veil.dp.accounting import gaussian_epsilon, gaussian_noise_multiplier
from veil.dp.mechanisms import noise_scale
from veil.dp.spec import EventKind, Neighbouring
from veil.errors import ConfigError, DataError

Z = 6.0  # standard errors allowed


def assert_variance(noise: np.ndarray, var: float, kurtosis: float) -> None:
    n = noise.size
    se = var * math.sqrt((kurtosis - 1.0) / n)
    assert abs(float(np.var(noise)) - var) <= Z * se, (float(np.var(noise)), var, se)
    assert abs(float(np.mean(noise))) <= Z * math.sqrt(var / n)


def assert_tail(noise: np.ndarray, threshold: float, p: float) -> None:
    freq = float(np.mean(np.abs(noise) > threshold))
    assert abs(freq - p) <= Z * math.sqrt(p * (1 - p) / noise.size), (freq, p)


def test_laplace_noise_has_the_stated_variance_and_shape() -> None:
    n = 60_000
    spec = DPSpec(Mechanism.LAPLACE, epsilon=0.5, sensitivity=2.0)  # b = 4
    truth = np.full(n, 100.0)
    noisy, rec = release(truth, spec)
    noise = noisy - truth
    b = 4.0
    assert rec.noise_scale == pytest.approx(b)
    assert_variance(noise, 2 * b * b, kurtosis=6.0)
    assert_tail(noise, b, math.exp(-1.0))  # P(|X| > b) = 1/e for Laplace(b)


def test_gaussian_noise_has_the_stated_variance_and_shape() -> None:
    n = 30_000
    spec = DPSpec.sum(1.0, -0.5, 0.5, delta=1e-6, shape=(n,))  # L2 sensitivity 0.5 sqrt(n)
    truth = np.linspace(-10, 10, n)
    noisy, rec = release(truth, spec)
    sigma = 0.5 * math.sqrt(n) * gaussian_noise_multiplier(1.0, 1e-6)
    assert rec.noise_scale == pytest.approx(sigma, rel=1e-12)
    noise = noisy - truth
    assert_variance(noise, sigma * sigma, kurtosis=3.0)
    assert_tail(noise, sigma, math.erfc(1 / math.sqrt(2)))  # P(|X| > sigma) = 0.3173


def test_record_matches_the_spec_and_opendp_map() -> None:
    _, lap = release(5.0, DPSpec.count(0.7))
    assert lap.kind is EventKind.LAPLACE and lap.shape == ()
    assert lap.epsilon == pytest.approx(0.7, rel=1e-9)
    _, gau = release(np.zeros((3, 4)), DPSpec(Mechanism.GAUSSIAN, 0.9, 1e-5, 3.0))
    assert gau.kind is EventKind.GAUSSIAN and gau.shape == (3, 4)
    assert gau.epsilon == pytest.approx(0.9, rel=1e-6)
    assert gau.epsilon == pytest.approx(gaussian_epsilon(gau.noise_multiplier, 1e-5), rel=1e-12)
    assert gau.noise_multiplier == pytest.approx(gau.noise_scale / 3.0, rel=1e-9)


def test_scalar_in_scalar_out_and_fresh_noise() -> None:
    a, _ = release(10.0, DPSpec.count(1.0))
    b, _ = release(10.0, DPSpec.count(1.0))
    assert isinstance(a, float) and a != b
    arr, _ = release(np.arange(4.0), DPSpec.histogram(1.0))
    assert isinstance(arr, np.ndarray) and arr.shape == (4,) and arr.dtype == np.float64


def test_sensitivities_from_bounds() -> None:
    s = DPSpec.sum(1.0, [-1.0, 0.0, -3.0], [2.0, 5.0, 1.0], shape=(3,))
    assert s.mechanism is Mechanism.LAPLACE and s.sensitivity == pytest.approx(2 + 5 + 3)
    g = DPSpec.sum(1.0, [-1.0, 0.0, -3.0], [2.0, 5.0, 1.0], delta=1e-6, shape=(3,))
    assert g.mechanism is Mechanism.GAUSSIAN and g.sensitivity == pytest.approx(math.sqrt(38))
    m = DPSpec.mean(1.0, 0.0, 10.0, n=200, shape=(4,))
    assert m.sensitivity == pytest.approx(4 * 10 / 200)
    assert m.neighbouring is Neighbouring.REPLACE
    assert DPSpec.count(1.0).sensitivity == 1.0
    assert noise_scale(DPSpec.count(0.25)) == pytest.approx(4.0)


def test_bad_specs_and_values_are_refused() -> None:
    with pytest.raises(ConfigError, match="delta=0"):
        DPSpec(Mechanism.LAPLACE, 1.0, 1e-5)
    with pytest.raises(ConfigError, match="delta"):
        DPSpec(Mechanism.GAUSSIAN, 1.0, 0.0)
    with pytest.raises(ConfigError):
        DPSpec(Mechanism.LAPLACE, -1.0)
    with pytest.raises(ConfigError):
        DPSpec.sum(1.0, 1.0, 0.0)
    with pytest.raises(ConfigError):
        DPSpec.mean(1.0, 0.0, 1.0, n=0)
    with pytest.raises(ConfigError, match="shape"):
        release(np.zeros(3), DPSpec.sum(1.0, 0, 1, shape=(2,)))
    with pytest.raises(DataError):
        release(np.array([1.0, np.nan]), DPSpec.histogram(1.0))


def test_clamp() -> None:
    out = clamp([-5.0, 0.5, 9.0], 0.0, 1.0)
    np.testing.assert_array_equal(out, [0.0, 0.5, 1.0])
    with pytest.raises(DataError):
        clamp([np.nan], 0.0, 1.0)

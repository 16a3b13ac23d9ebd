"""Linear ops, products, matmul and truncation vs numpy, for every protocol."""

from __future__ import annotations

import numpy as np
import pytest
from mpc_harness import ULP, Setup

import veil.mpc as vm
from veil.errors import ConfigError, PartyFailed

rng = np.random.default_rng(1234)


def test_input_reveal_roundtrip(setup: Setup) -> None:
    x = rng.uniform(-1000, 1000, (4, 5))
    i = rng.integers(-(2**40), 2**40, 7)
    got_x, got_i = setup.run(lambda a, b: (a, b), x, i)
    assert np.max(np.abs(got_x - x)) <= ULP / 2
    assert got_i.dtype == np.int64 and np.array_equal(got_i, i)


def test_owner_inside_the_computation(setup: Setup) -> None:
    x = rng.uniform(-5, 5, 6)
    got = setup.run(lambda a: a * 2.0 + 1.0, x, owner=setup.parties[0])
    assert np.allclose(got, 2 * x + 1, atol=2 * ULP)


def test_linear_and_broadcasting(setup: Setup) -> None:
    x = rng.uniform(-100, 100, (3, 4))
    y = rng.uniform(-100, 100, (4,))
    got = setup.run(
        lambda a, b: (a + b, a - b, -a, b - a, 3 - a, a + 2.5, a.sum(axis=0), a.mean(axis=1)), x, y
    )
    want = (x + y, x - y, -x, y - x, 3 - x, x + 2.5, x.sum(0), x.mean(1))
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape
        assert np.max(np.abs(g - w)) <= 8 * ULP


def test_mul_secret_secret_and_public(setup: Setup) -> None:
    x = rng.uniform(-100, 100, (50, 3))
    y = rng.uniform(-100, 100, (50, 3))
    k = rng.integers(-9, 9, (50, 3))
    got = setup.run(lambda a, b, c: (a * b, a * 0.37, a * c, c * c, 2 * a), x, y, k)
    # product error: inputs' rounding (|x|,|y| ≤ 100 → 100 ulp) + truncation (1 ulp)
    assert np.max(np.abs(got[0] - x * y)) <= 110 * ULP
    assert np.max(np.abs(got[1] - x * 0.37)) <= 100 * ULP / 2 + 2 * ULP  # constant rounding
    assert np.max(np.abs(got[2] - x * k)) <= 10 * ULP
    assert np.array_equal(got[3], k * k)
    assert np.max(np.abs(got[4] - 2 * x)) <= 2 * ULP


def test_matmul(setup: Setup) -> None:
    a = rng.standard_normal((6, 9))
    b = rng.standard_normal((9, 4))
    v = rng.standard_normal(9)
    got = setup.run(lambda x, y, z: (x @ y, x @ z, z @ y, x @ np.ones((9, 2))), a, b, v)
    for g, w in zip(got, (a @ b, a @ v, v @ b, a @ np.ones((9, 2))), strict=True):
        assert g.shape == w.shape
        assert np.max(np.abs(g - w)) <= 40 * ULP


def test_large_magnitudes_near_bound(setup: Setup) -> None:
    # products must stay below 2^(62 - 2f) = 2^26: use |x·y| ≈ 5e7
    x = np.array([7000.0, -7000.0, 6999.5, 0.0])
    y = np.array([7000.0, 7000.0, -7000.0, 1e6])
    got = setup.run(lambda a, b: a * b, x, y)
    assert np.allclose(got, x * y, rtol=1e-9, atol=1e-2)


def test_empty_and_zero_d(setup: Setup) -> None:
    e = np.zeros((0, 3))
    z = np.array(2.5)
    got = setup.run(lambda a, b: (a + 1.0, a * a, b * b, b + b), e, z)
    assert got[0].shape == (0, 3) and got[1].shape == (0, 3)
    assert got[2].shape == () and abs(got[2] - 6.25) <= 2 * ULP
    assert abs(got[3] - 5.0) <= ULP


def test_shape_ops(setup: Setup) -> None:
    x = rng.uniform(-3, 3, (2, 3, 4))
    got = setup.run(
        lambda a: (
            a.T,
            a.reshape(6, 4),
            a[1, :, ::2],
            vm.concatenate([a, a], axis=1),
            vm.stack([a[0], a[1]]),
            a.transpose(1, 0, 2),
        ),
        x,
    )
    want = (
        x.T,
        x.reshape(6, 4),
        x[1, :, ::2],
        np.concatenate([x, x], 1),
        np.stack([x[0], x[1]]),
        x.transpose(1, 0, 2),
    )
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape and np.max(np.abs(g - w)) <= ULP


def test_truncation_error_bound(secure: Setup) -> None:
    # many products: every result within 1 ulp of the exact floor (+ input rounding); no outliers
    x = rng.uniform(-4, 4, 20000)
    y = rng.uniform(-4, 4, 20000)
    got = secure.run(lambda a, b: a * b, x, y)
    xe, ye = np.rint(x * 2**18) / 2**18, np.rint(y * 2**18) / 2**18
    assert np.max(np.abs(got - xe * ye)) <= 2 * ULP


def test_semi2k_local_truncation_two_parties() -> None:
    s = Setup("semi2k", ("p0", "p1"), "dealer", {"trunc": "local"})
    x = rng.uniform(-4, 4, 1000)
    got, rounds, _ = s.run(lambda a: a * a, x, with_stats=True)
    assert np.max(np.abs(got - x * x)) <= 10 * ULP
    assert rounds == 1  # Beaver only; truncation is local


def test_bad_configurations_raise() -> None:
    with pytest.raises(PartyFailed, match="dealer"):
        Setup("semi2k", ("p0", "p1")).run(lambda a: a, np.zeros(1))
    with pytest.raises(PartyFailed, match="exactly 3"):
        Setup("aby3", ("p0", "p1")).run(lambda a: a, np.zeros(1))
    with pytest.raises(PartyFailed, match="unknown MPC protocol"):
        Setup("spdz", ("p0", "p1")).run(lambda a: a, np.zeros(1))
    with pytest.raises(PartyFailed, match="2 parties"):
        Setup("semi2k", ("p0", "p1", "p2"), "dealer", {"trunc": "local"}).run(
            lambda a: a, np.zeros(1)
        )
    assert ConfigError  # the error type the parties raised


def test_broadcasting_products(setup: Setup) -> None:
    x = rng.uniform(-3, 3, (4, 1, 3))
    y = rng.uniform(-3, 3, (5, 1))
    s = np.array(1.5)
    got = setup.run(lambda a, b, c: (a * b, b * c, a * 2.0 * c, vm.where(a > 0, b, 0.0)), x, y, s)
    want = (x * y, y * 1.5, x * 3.0, np.where(x > 0, y, 0.0))
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape and np.max(np.abs(g - w)) <= 20 * ULP


@pytest.mark.parametrize("bits", [12, 24])
def test_configurable_fractional_bits(bits: int) -> None:
    s = Setup("semi2k", ("p0", "p1", "p2"), "dealer", {"frac_bits": bits})
    x, y = rng.uniform(-8, 8, 500), rng.uniform(-8, 8, 500)
    prod, lt, e = s.run(lambda a, b: (a * b, a < b, vm.exp(a, bound=8.0)), x, y)
    ulp = 2.0**-bits
    assert np.max(np.abs(prod - x * y)) <= 10 * ulp + 16 * ulp  # input rounding + truncation
    xe, ye = np.rint(x / ulp), np.rint(y / ulp)
    assert np.array_equal(lt, xe < ye)
    assert np.max(np.abs(e / np.exp(x) - 1)[np.exp(x) > 0.1]) <= max(1e-3, 4000 * ulp)

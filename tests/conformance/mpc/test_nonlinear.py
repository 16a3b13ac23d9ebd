"""Nonlinear functions vs numpy within their documented ranges and errors."""

from __future__ import annotations

import numpy as np
import pytest
from mpc_harness import Setup

import veil.mpc as vm
from veil.errors import ConfigError

rng = np.random.default_rng(5)


def _q(x: np.ndarray) -> np.ndarray:
    """Round to the fixed-point grid (the secret's actual input)."""
    return np.rint(x * 2**18) / 2**18


def _sig(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def test_exp(setup: Setup) -> None:
    x = np.concatenate([rng.uniform(-4, 4, 2000), [-4.0, 0.0, 4.0]])
    y = np.concatenate([rng.uniform(-8, 8, 2000), [-8.0, 8.0]])
    e4, e8 = setup.run(lambda a, b: (vm.exp(a, bound=4.0), vm.exp(b)), x, y)
    assert np.max(np.abs(e4 / np.exp(x) - 1)) <= 1e-3  # the documented relative error
    big = np.exp(y) >= 1e-2
    assert np.max(np.abs(e8[big] / np.exp(y[big]) - 1)) <= 1e-3
    assert np.all(np.abs(e8 - np.exp(y)) <= 1e-3 * np.exp(y) + 2e-5)


def test_log(setup: Setup) -> None:
    x = _q(np.concatenate([2.0 ** rng.uniform(-6, 15, 2000), [2.0**-6, 1.0, 30000.0]]))
    got = setup.run(vm.log, x)
    assert np.max(np.abs(got - np.log(x))) <= 1e-3


def test_reciprocal_and_div(setup: Setup) -> None:
    x = rng.uniform(0.5, 10, 2000) * rng.choice([-1.0, 1.0], 2000)
    big = _q(2.0 ** rng.uniform(-7, 15.9, 2000))
    y = rng.uniform(-10, 10, 2000)
    r, rb, d = setup.run(lambda a, b, c: (vm.reciprocal(a), vm.reciprocal(b), c / a), x, big, y)
    assert np.max(np.abs(r * x - 1)) <= 1e-4
    # documented: |error| ≤ 2e-5·|1/x| + 2·2^-f
    assert np.all(np.abs(rb - 1 / big) <= 2e-5 / big + 2 * 2.0**-18)
    assert np.max(np.abs(d - y / x)) <= 1e-3


def test_sqrt_rsqrt(setup: Setup) -> None:
    x = _q(np.concatenate([2.0 ** rng.uniform(-7, 15.9, 2000), [0.25, 1.0, 4.0]]))
    s, rs, z = setup.run(lambda a, b: (vm.sqrt(a), vm.rsqrt(a), vm.sqrt(b)), x, np.zeros(3))
    assert np.max(np.abs(s / np.sqrt(x) - 1)) <= 1e-3
    assert np.max(np.abs(rs * np.sqrt(x) - 1)) <= 1e-3
    assert np.max(np.abs(z)) <= 1e-4


def test_sigmoid_modes(setup: Setup) -> None:
    x = np.concatenate([rng.uniform(-12, 12, 3000), [-8.0, -7.99, 0.0, 7.99, 8.0, 40.0, -40.0]])
    acc, cheap = setup.run(lambda a: (vm.sigmoid(a), vm.sigmoid(a, mode="cheap")), x)
    assert np.max(np.abs(acc - _sig(x))) <= 5e-4
    assert np.max(np.abs(cheap - _sig(x))) <= 1e-2


def test_sigmoid_scale_is_folded_in(setup: Setup) -> None:
    x = np.concatenate([rng.uniform(-12, 12, 500), [-8.0, 0.0, 8.0, 300.0, -300.0]])
    (acc, cheap), rounds, _ = setup.run(
        lambda a: (vm.sigmoid(a, scale=0.1), vm.sigmoid(a, mode="cheap", scale=0.1)),
        x,
        with_stats=True,
    )
    assert np.max(np.abs(acc - 0.1 * _sig(x))) <= 5e-5
    assert np.max(np.abs(cheap - 0.1 * _sig(x))) <= 1e-3
    (cheap1,), rounds1, _ = setup.run(lambda a: (vm.sigmoid(a, mode="cheap"),), x, with_stats=True)
    assert np.max(np.abs(cheap1 - _sig(x))) <= 1e-2
    if setup.protocol == "semi2k":  # msb 8 + 1 + three product levels (2 each) + 1
        assert rounds1 == 16
    elif setup.protocol == "aby3":  # msb 9 + 1 + 3·2 + 2
        assert rounds1 == 18


def test_softmax(setup: Setup) -> None:
    x = rng.uniform(-6, 6, (40, 7))
    x[0] = [30.0, -30.0, 0, 0, 0, 0, 0]  # a clipped difference
    got = setup.run(lambda a: vm.softmax(a, axis=1), x)
    want = np.exp(x - x.max(1, keepdims=True))
    want /= want.sum(1, keepdims=True)
    assert np.max(np.abs(got - want)) <= 1e-3


def test_bad_settings_raise() -> None:
    from veil.mpc.engine import Engine
    from veil.mpc.local import run_parties

    def body(lp):  # type: ignore[no-untyped-def]
        eng = Engine(lp.link, lp.next_key, "ref", ("p",))
        x = eng.constant(np.ones(3))
        with pytest.raises(ConfigError, match="bound"):
            vm.exp(x, bound=100.0)
        with pytest.raises(ConfigError, match="mode"):
            vm.sigmoid(x, mode="fast")
        with pytest.raises(ConfigError, match="range"):
            vm.reciprocal(x, lo_exp=-40, hi_exp=40)
        return True

    assert run_parties(["p"], body)["p"]

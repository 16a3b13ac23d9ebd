"""Bigger sizes (slow): no outliers over many elements."""

from __future__ import annotations

import numpy as np
import pytest
from mpc_harness import SECURE, ULP, Setup

import veil.mpc as vm

rng = np.random.default_rng(77)


@pytest.mark.slow
@pytest.mark.parametrize("setup", SECURE, ids=lambda s: s.id)
def test_many_elements(setup: Setup) -> None:
    n = 200_000
    x, y = rng.standard_normal(n) * 3, rng.standard_normal(n) * 3
    prod, lt, sig = setup.run(lambda a, b: (a * b, a < b, vm.sigmoid(a)), x, y)
    xe, ye = np.rint(x * 2**18) / 2**18, np.rint(y * 2**18) / 2**18
    assert np.max(np.abs(prod - xe * ye)) <= 2 * ULP
    assert np.array_equal(lt, xe < ye)
    assert np.max(np.abs(sig - 1 / (1 + np.exp(-x)))) <= 5e-4


@pytest.mark.slow
@pytest.mark.parametrize("setup", SECURE, ids=lambda s: s.id)
def test_matmul_256(setup: Setup) -> None:
    a, b = rng.standard_normal((256, 300)), rng.standard_normal((300, 128))
    got = setup.run(lambda p, q: p @ q, a, b)
    assert np.max(np.abs(got - a @ b)) <= 1e-3

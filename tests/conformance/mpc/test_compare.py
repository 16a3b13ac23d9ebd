"""Comparisons, selection and max/argmax vs numpy, for every protocol."""

from __future__ import annotations

import numpy as np
from mpc_harness import ULP, Setup

import veil.mpc as vm

rng = np.random.default_rng(99)


def _grid(n: int) -> np.ndarray:
    """Values on the fixed-point grid (no encoding ties), including zeros and extremes."""
    v = np.rint(rng.uniform(-1e4, 1e4, n) * 2**18) / 2**18
    v[:6] = [0.0, -0.0, ULP, -ULP, 1e9, -1e9]
    return v


def test_less_greater_equal(setup: Setup) -> None:
    a, b = _grid(3000), _grid(3000)
    b[100:200] = a[100:200]  # ties
    lt, gt, eq, le, ge = setup.run(lambda x, y: (x < y, x > y, x == y, x <= y, x >= y), a, b)
    assert lt.dtype == np.int64
    assert np.array_equal(lt, a < b) and np.array_equal(gt, a > b) and np.array_equal(eq, a == b)
    assert np.array_equal(le, a <= b) and np.array_equal(ge, a >= b)


def test_compare_with_public_and_broadcast(setup: Setup) -> None:
    a = _grid(60).reshape(3, 20)
    t = np.array([-1.0, 0.0, 5.5] * 20)[:20]
    got = setup.run(lambda x: (x < t, x > 0.0, x == a[0]), a)
    assert np.array_equal(got[0], a < t)
    assert np.array_equal(got[1], a > 0)
    assert np.array_equal(got[2], a == a[0])


def test_integer_compare_and_where(setup: Setup) -> None:
    i = rng.integers(-(2**50), 2**50, 500)
    j = rng.integers(-(2**50), 2**50, 500)
    x = _grid(500)
    lt, sel, sel2 = setup.run(
        lambda p, q, r: (p < q, vm.where(p < q, p, q), vm.where(p < q, r, 1.5)), i, j, x
    )
    assert np.array_equal(lt, i < j)
    assert np.array_equal(sel, np.minimum(i, j))
    assert np.max(np.abs(sel2 - np.where(i < j, x, 1.5))) <= ULP


def test_relu_abs_sign_maximum(setup: Setup) -> None:
    x, y = _grid(400), _grid(400)
    r, a, s, m, mn = setup.run(
        lambda p, q: (vm.relu(p), vm.abs(p), vm.sign(p), vm.maximum(p, q), vm.minimum(p, 2.0)), x, y
    )
    assert np.max(np.abs(r - np.maximum(x, 0))) <= ULP
    assert np.max(np.abs(a - np.abs(x))) <= ULP
    assert np.array_equal(s, np.where(x < 0, -1, 1))
    assert np.max(np.abs(m - np.maximum(x, y))) <= ULP
    assert np.max(np.abs(mn - np.minimum(x, 2.0))) <= ULP


def test_max_argmax_along_axes(setup: Setup) -> None:
    x = _grid(7 * 5).reshape(7, 5)
    x[3, 1] = x[3, 4] = 2e9  # a tie: argmax takes the first
    got = setup.run(
        lambda p: (
            vm.max(p, axis=0),
            vm.max(p, axis=1),
            vm.max(p),
            vm.argmax(p, axis=0),
            vm.argmax(p, axis=1),
        ),
        x,
    )
    assert np.max(np.abs(got[0] - x.max(0))) <= ULP
    assert np.max(np.abs(got[1] - x.max(1))) <= ULP
    assert abs(got[2] - x.max()) <= ULP
    assert np.array_equal(got[3], x.argmax(0))
    assert np.array_equal(got[4], x.argmax(1))


def test_empty_and_zero_d_compare(setup: Setup) -> None:
    e = np.zeros((0,))
    got = setup.run(lambda p, q: (p < p, q > 1.0, q == q), e, np.array(3.0))
    assert got[0].shape == (0,)
    assert got[1].shape == () and int(got[1]) == 1 and int(got[2]) == 1

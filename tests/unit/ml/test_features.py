"""Feature builders: splines equal scikit-learn's, lags follow time (gaps stay missing)."""

import numpy as np
import pandas as pd
import pytest
from sklearn.preprocessing import SplineTransformer

from veil.errors import DataError
from veil.ml import features as ft

MIN = ft.NS_PER_MINUTE


@pytest.mark.parametrize(("n_knots", "degree"), [(5, 3), (8, 2), (4, 1)])
def test_bspline_equals_sklearn(n_knots, degree):
    rng = np.random.default_rng(0)
    train = rng.normal(20, 5, size=400)
    x = np.r_[rng.normal(20, 8, size=300), train.min(), train.max(), -1e3, 1e3]
    ref = SplineTransformer(n_knots=n_knots, degree=degree, include_bias=False)
    expect = ref.fit(train[:, None]).transform(x[:, None])
    got = ft.bspline_basis(x, train.min(), train.max(), n_knots, degree)
    np.testing.assert_allclose(got, expect, atol=1e-12)


def test_constant_spline_range_refused():
    with pytest.raises(DataError, match="constant"):
        ft.weather_block({"t": np.ones(10)}, np.arange(10), ft.FeatureSpec())


def test_lag_by_time_leaves_gaps_missing():
    t = np.array([0, 30, 60, 120, 150]) * MIN  # 90 is missing
    v = np.array([1.0, 2, 3, 5, 6])
    lag = ft.lag_by_time(t, v, 30 * MIN)
    np.testing.assert_array_equal(np.isnan(lag), [True, False, False, True, False])
    assert lag[1] == 1 and lag[2] == 2 and lag[4] == 5
    # order of the rows does not matter
    perm = np.array([3, 0, 4, 2, 1])
    np.testing.assert_array_equal(ft.lag_by_time(t[perm], v[perm], 30 * MIN), lag[perm])


def test_calendar_terms():
    times = pd.date_range("2014-01-06 00:00", periods=96, freq="30min")
    times = times.to_numpy(dtype="datetime64[ns]").astype(np.int64)
    assert ft.day_of_week(times[:1])[0] == 0  # 2014-01-06 was a Monday
    slots = ft.time_of_day_slot(times, 30 * MIN)
    np.testing.assert_array_equal(slots[:48], np.arange(48))
    assert ft.slots_per_day(30 * MIN) == 48
    with pytest.raises(DataError, match="divide a day"):
        ft.slots_per_day(7 * MIN)
    oh = ft.one_hot(slots, 48)
    assert oh.shape == (96, 47) and oh[0].sum() == 0 and oh[1, 0] == 1


def test_lags_at_or_beyond_horizon():
    day = ft.NS_PER_DAY
    assert ft.lags_for_horizon(day) == [day, 7 * day]
    assert ft.lags_for_horizon(36 * 60 * MIN) == [2 * day, 7 * day]
    assert ft.lags_for_horizon(8 * day) == [8 * day]
    with pytest.raises(DataError):
        ft.lags_for_horizon(0)


def test_target_block_lags_from_whole_series():
    times = np.arange(0, 10) * ft.NS_PER_DAY
    y = np.arange(10.0)
    X, names = ft.target_block(
        times[8:],
        y[8:],
        {},
        step_ns=ft.NS_PER_DAY,
        lags_ns=[ft.NS_PER_DAY, 7 * ft.NS_PER_DAY],
        lag_source=(times, y),
    )
    assert names[:2] == ["lag_1440min", "lag_10080min"]
    np.testing.assert_array_equal(X[:, :2], [[7, 1], [8, 2]])


def test_standardize_uses_training_rows():
    X = np.array([[1.0, 5], [3, 5], [100, 7]])
    Z, mu, sd = ft.standardize(X, np.array([0, 1]))
    np.testing.assert_allclose(mu, [2, 5])
    np.testing.assert_allclose(sd, [1, 1])  # constant column: sd 1
    np.testing.assert_allclose(Z[2], [98, 2])


def test_pairwise_products_order():
    a, b = np.array([[1.0, 2]]), np.array([[3.0, 4, 5]])
    np.testing.assert_array_equal(ft.pairwise_products(a, b), [[3, 4, 5, 6, 8, 10]])
    assert ft.pairwise_names(["a", "b"], ["x"]) == ["a*x", "b*x"]

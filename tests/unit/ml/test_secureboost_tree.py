"""Party-free SecureBoost math against plain brute-force implementations."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from veil.errors import ConfigError, DataError
from veil.ml.secureboost.binning import apply_cuts, fit_cuts, n_bins
from veil.ml.secureboost.tree import (
    TreeParams,
    best_candidate,
    candidates_from_hist,
    leaf_weight,
    reachable_leaves,
)


def _brute_force(X_bins, g, h, params):
    """Every (feature, bin) rule 'bin <= k goes left' by direct row sums, xgboost's gain."""
    G, H, lam = g.sum(), h.sum(), params.reg_lambda
    best = None
    for f in range(X_bins.shape[1]):
        for k in range(X_bins[:, f].max()):
            left = X_bins[:, f] <= k
            GL, HL = g[left].sum(), h[left].sum()
            GR, HR = G - GL, H - HL
            mcw = params.min_child_weight
            if min(HL, HR) < mcw:
                continue
            gain = GL**2 / (HL + lam) + GR**2 / (HR + lam) - G**2 / (H + lam)
            if gain > params.gamma and gain > 1e-12 and (best is None or gain > best[0] + 1e-12):
                best = (gain, f, k)
    return best


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10**6),
    lam=st.floats(0.0, 5.0),
    gamma=st.floats(0.0, 2.0),
    mcw=st.floats(0.0, 5.0),
)
def test_best_split_matches_brute_force(seed, lam, gamma, mcw):
    rng = np.random.default_rng(seed)
    n, F, B = 60, 3, 6
    bins = rng.integers(0, B, size=(n, F))
    bins[0] = B - 1  # every feature has all B bins' range
    p = rng.random(n)
    y = rng.random(n) < 0.4
    g, h = p - y, p * (1 - p)
    params = TreeParams(max_depth=3, reg_lambda=lam, gamma=gamma, min_child_weight=mcw)
    hist = np.zeros((F, B, 2))
    for f in range(F):
        hist[f, :, 0] = np.bincount(bins[:, f], weights=g, minlength=B)
        hist[f, :, 1] = np.bincount(bins[:, f], weights=h, minlength=B)
    left, feats, ks = candidates_from_hist(hist, np.full(F, B))
    got = best_candidate(left[:, 0], left[:, 1], g.sum(), h.sum(), params)
    want = _brute_force(bins, g, h, params)
    if want is None:
        assert got is None
    else:
        assert got is not None
        i, gain = got
        assert gain == pytest.approx(want[0], rel=1e-9)
        assert (feats[i], ks[i]) == (want[1], want[2])


def test_candidates_skip_single_bin_features_and_order_by_feature():
    hist = np.arange(2 * 4 * 2, dtype=float).reshape(2, 4, 2)
    left, feats, ks = candidates_from_hist(hist, np.array([1, 3]))
    assert feats.tolist() == [1, 1] and ks.tolist() == [0, 1]
    np.testing.assert_array_equal(left, np.cumsum(hist[1], axis=0)[:2])


def test_leaf_weight_is_newton_step():
    assert leaf_weight(3.0, 1.0, 1.0) == -1.5


def test_reachable_leaves_intersect_to_one_leaf():
    # root(0) -> 1, 2 ; node 1 -> 3, 4 ; leaves 2, 3, 4
    left, right = np.array([1, 3, -1, -1, -1]), np.array([2, 4, -1, -1, -1])
    d0 = np.array([True, True, False])
    d1 = np.array([True, False, True])
    a = reachable_leaves(left, right, {0: d0}, 3)  # party owning the root
    b = reachable_leaves(left, right, {1: d1}, 3)  # party owning node 1
    both = a & b
    assert both.sum(axis=1).tolist() == [1, 1, 1]
    assert [int(np.flatnonzero(r)[0]) for r in both] == [1, 2, 0]  # leaves 3, 4, 2


def test_quantile_bins_follow_threshold_rule():
    rng = np.random.default_rng(1)
    X = np.c_[rng.normal(size=1000), rng.integers(0, 3, 1000)]
    cuts = fit_cuts(X, 16)
    b = apply_cuts(X, cuts)
    assert n_bins(cuts).tolist() == [16, 3]
    counts = np.bincount(b[:, 0], minlength=16)
    assert counts.min() >= 40 and counts.max() <= 90  # near-equal quantile bins
    for k, c in enumerate(cuts[0]):  # bin <= k  <=>  x < cuts[k]
        np.testing.assert_array_equal(b[:, 0] <= k, X[:, 0] < c)


def test_binning_errors_name_the_party():
    with pytest.raises(DataError, match="bank"):
        fit_cuts(np.array([[1.0], [np.nan]]), 8, party="bank")
    with pytest.raises(ConfigError):
        fit_cuts(np.zeros((3, 1)), 1)
    with pytest.raises(DataError, match="2 columns"):
        apply_cuts(np.zeros((3, 2)), [np.array([0.5])], party="ext1")

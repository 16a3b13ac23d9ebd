"""Secure ridge regression equals float64 ridge to fixed-point precision (semi2k and aby3)."""

import math

import numpy as np
import pytest
from sklearn.linear_model import Ridge

import veil
from veil.errors import ConfigError, PartyFailed
from veil.ml.ridge import SSRidge, gram, lead_block_inverse, ridge_plain, secure_mean

FRAC = 18


def _data(n, d, seed=3, collinear=False):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * rng.uniform(0.5, 2.0, size=d) + rng.normal(size=d)
    if collinear:
        X[:, 1] = X[:, 0] + 0.05 * rng.normal(size=n)
    w = rng.normal(size=d)
    y = X @ w + 0.3 * rng.normal(size=n) + 2.0
    return X, y


def _tolerance(X, alpha, w):
    """Coefficient error bound: residual error ~ sqrt(d)·2^-f·(1 + |w|) per entry, amplified by
    at most 1/λ_min of the scaled system (see veil.ml.ridge), with a safety factor of 2."""
    n, d = X.shape
    s = 2.0 ** round(math.log2(n))
    Xc = X - X.mean(0)
    lam = np.linalg.eigvalsh((Xc.T @ Xc + alpha * np.eye(d)) / s).min()
    return 2 * math.sqrt(d) * 2.0**-FRAC * (1 + np.abs(w).max()) / lam


def ridge_job(ctx, *, protocol, n, d, alpha, collinear=False):
    a, b, c = ctx.parties("a", "b", "c")
    X, y = _data(n, d, collinear=collinear)
    Xnew = _data(200, d, seed=9)[0]
    if protocol == "semi2k":
        mpc = ctx.mpc("semi2k", parties=(a, b), dealer=c)
    else:
        mpc = ctx.mpc("aby3", parties=(a, b, c))
    h = d // 2
    Xs = veil.mpc.concatenate(
        [a(lambda: X[:, :h])().to(mpc), b(lambda: X[:, h:])().to(mpc)], axis=1
    )
    ys = b(lambda: y)().to(mpc)
    model = SSRidge(mpc, alpha=alpha).fit(Xs, ys)
    new = veil.mpc.concatenate(
        [a(lambda: Xnew[:, :h])().to(mpc), b(lambda: Xnew[:, h:])().to(mpc)], axis=1
    )
    pred = ctx.reveal(model.predict(new), to=ctx.parties("a")[0], tag="pred")
    w = ctx.reveal(model.coef_, tag="w")
    b0 = ctx.reveal(model.intercept_, tag="b")
    return {"w": w, "b": float(np.asarray(b0).reshape(())), "pred": pred}


@pytest.mark.parametrize("protocol", ["semi2k", "aby3"])
def test_secure_ridge_equals_plaintext(protocol):
    n, d, alpha = 3000, 12, 1.0
    out = veil.simulate(
        ridge_job, ["a", "b", "c"], params={"protocol": protocol, "n": n, "d": d, "alpha": alpha}
    )
    X, y = _data(n, d)
    w, b = ridge_plain(X, y, alpha)
    tol = _tolerance(X, alpha, w)
    assert tol < 1e-2  # the bound itself is small for this well-conditioned problem
    res = out["a"]
    np.testing.assert_allclose(res["w"], w, atol=tol)
    Xnew = _data(200, d, seed=9)[0]
    # secure inference = plaintext prediction with the plaintext model
    bound = tol * np.abs(Xnew - X.mean(0)).sum(1).max() + 1e-3
    np.testing.assert_allclose(res["pred"], Xnew @ w + b, atol=bound)
    assert abs(res["b"] - b) < bound
    assert out["b"]["pred"] is None  # predictions reached only party a


def test_ill_conditioned_within_derived_bound():
    n, d, alpha = 2000, 6, 1.0
    out = veil.simulate(
        ridge_job,
        ["a", "b", "c"],
        params={"protocol": "semi2k", "n": n, "d": d, "alpha": alpha, "collinear": True},
    )
    X, y = _data(n, d, collinear=True)
    w, _ = ridge_plain(X, y, alpha)
    np.testing.assert_allclose(out["a"]["w"], w, atol=_tolerance(X, alpha, w))


def test_ridge_plain_is_sklearn_ridge():
    X, y = _data(500, 7)
    w, b = ridge_plain(X, y, 3.0)
    ref = Ridge(alpha=3.0).fit(X, y)
    np.testing.assert_allclose(w, ref.coef_, rtol=1e-9, atol=1e-10)
    assert b == pytest.approx(ref.intercept_, rel=1e-9)


def mean_job(ctx, *, n):
    a, b, c = ctx.parties("a", "b", "c")
    mpc = ctx.mpc("semi2k", parties=(a, b), dealer=c)
    x = a(lambda: np.linspace(1.0, 2.0, n))().to(mpc)
    return ctx.reveal(secure_mean(x, n), tag="m"), ctx.reveal(x.mean(), tag="m")


def test_secure_mean_keeps_precision_for_large_n():
    n = 14_000
    out = veil.simulate(mean_job, ["a", "b", "c"], params={"n": n})
    good, _naive = out["a"]
    assert abs(float(np.asarray(good).reshape(())) - 1.5) < 4 * 2.0**-FRAC


def small_alpha_job(ctx):
    a, b, c = ctx.parties("a", "b", "c")
    mpc = ctx.mpc("semi2k", parties=(a, b), dealer=c)
    X = a(lambda: np.ones((1 << 18, 1)))().to(mpc)
    return SSRidge(mpc, alpha=1.0).fit(X, X.reshape(1 << 18))


def test_too_small_alpha_refused():
    with pytest.raises(PartyFailed, match="alpha"):
        veil.simulate(small_alpha_job, ["a", "b", "c"])
    with pytest.raises(ConfigError):
        SSRidge(None, alpha=0.0)


def stats_job(ctx, *, n, d, lead, collinear=False):
    """Vertical split: a's own block statistics in plaintext, the rest under MPC."""
    a, b, c = ctx.parties("a", "b", "c")
    X, y = _data(n, d, collinear=collinear)
    h = d // 2
    mpc = ctx.mpc("semi2k", parties=(a, b), dealer=c)
    U = a(lambda: X[:, :h])().to(mpc)
    R = b(lambda: X[:, h:])().to(mpc)
    ys = a(lambda: y)().to(mpc)

    def local():
        Xa = X[:, :h]
        return Xa.T @ Xa, Xa.T @ y, Xa.sum(0), np.asarray(y.sum()), lead_block_inverse(Xa, 2.0)

    uu, uy, us, ysum, inv = (p.to(mpc) for p in a(local, num_returns=5)())
    cross = gram(U, R, chunk_rows=700)
    xtx = veil.mpc.concatenate(
        [
            veil.mpc.concatenate([uu, cross], axis=1),
            veil.mpc.concatenate([cross.T, gram(R, R)], axis=1),
        ]
    )
    xty = veil.mpc.concatenate([uy.reshape(h, 1), gram(R, ys.reshape(n, 1))])
    x_sum = veil.mpc.concatenate([us, R.sum(axis=0)])
    model = SSRidge(mpc, alpha=2.0).fit_stats(
        xtx, xty, x_sum, ysum, n, lead_inverse=inv if lead else None
    )
    return ctx.reveal(model.coef_, tag="w"), ctx.reveal(model.intercept_, tag="b")


@pytest.mark.parametrize(
    ("lead", "collinear"), [(False, False), (True, False), (True, True)],
    ids=["full-inverse", "schur", "schur-collinear"],
)  # fmt: skip
def test_fit_from_vertical_statistics_equals_plaintext(lead, collinear):
    n, d = 3000, 10
    params = {"n": n, "d": d, "lead": lead, "collinear": collinear}
    w_s, b_s = veil.simulate(stats_job, ["a", "b", "c"], params=params)["a"]
    X, y = _data(n, d, collinear=collinear)
    w, b = ridge_plain(X, y, 2.0)
    tol = _tolerance(X, 2.0, w)
    np.testing.assert_allclose(w_s, w, atol=tol)
    assert abs(float(np.asarray(b_s).reshape(())) - b) < tol * np.abs(X.mean(0)).sum() + 1e-3

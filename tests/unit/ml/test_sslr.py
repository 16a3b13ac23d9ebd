"""Secure logistic regression against sklearn and numpy on the same data."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

import veil
from veil.ml import SSLogisticRegression
from veil.ml.metrics import auc, ks

rng = np.random.default_rng(11)
N, D = 3000, 6
X = rng.normal(size=(N, D))
W = np.array([1.0, -0.8, 0.5, 0.0, 0.3, -1.2])
Y = (rng.random(N) < 1 / (1 + np.exp(-(X @ W - 0.4)))).astype(np.float64)
TEST = slice(2000, None)
TRAIN = slice(0, 2000)


def sslr_job(ctx, protocol, l2):
    a, b, c = ctx.parties("a", "b", "c")
    mpc = (
        ctx.mpc("semi2k", parties=(a, b), dealer=c)
        if protocol == "semi2k"
        else ctx.mpc("aby3", parties=(a, b, c))
    )
    from veil.mpc import concatenate

    Xs = concatenate([a(lambda: X[TRAIN, :3])().to(mpc), b(lambda: X[TRAIN, 3:])().to(mpc)], 1)
    ys = b(lambda: Y[TRAIN])().to(mpc)
    m = SSLogisticRegression(mpc, epochs=30, batch_size=250, lr=0.5, l2=l2, shuffle=True)
    m.fit(Xs, ys)
    w = ctx.reveal(m.coef_, to=b, tag="model.weights")
    b0 = ctx.reveal(m.intercept_, to=b, tag="model.weights")
    return None if w is None else (np.asarray(w), float(np.asarray(b0).reshape(-1)[0]))


@pytest.mark.parametrize("protocol", ["semi2k", "aby3"])
def test_auc_within_0_002_of_sklearn_same_penalty(protocol):
    l2 = 1e-3
    w, b0 = veil.simulate(sslr_job, ["a", "b", "c"], params={"protocol": protocol, "l2": l2})["b"]
    sk = LogisticRegression(C=1.0 / (l2 * 2000), tol=1e-10, max_iter=10_000)
    sk.fit(X[TRAIN], Y[TRAIN])
    ours = auc(Y[TEST], X[TEST] @ w + b0)
    theirs = auc(Y[TEST], sk.decision_function(X[TEST]))
    assert abs(ours - theirs) < 0.002
    np.testing.assert_allclose(w, sk.coef_[0], atol=0.05)


def test_metrics_match_sklearn():
    from sklearn.metrics import roc_auc_score, roc_curve

    s = np.round(rng.random(500), 2)  # ties on purpose
    y = (rng.random(500) < s).astype(float)
    assert auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    fpr, tpr, _ = roc_curve(y, s)
    assert ks(y, s) == pytest.approx(np.max(tpr - fpr), abs=1e-12)


def _numpy_sgd(Xtr, ytr, epochs, batch, lr, l2):
    w, b = np.zeros(Xtr.shape[1]), 0.0
    for _ in range(epochs):
        for s in range(0, len(ytr), batch):
            xb, yb = Xtr[s : s + batch], ytr[s : s + batch]
            g = 1 / (1 + np.exp(-(xb @ w + b))) - yb
            w = w - lr * (xb.T @ g / len(yb) + l2 * w)
            b = b - lr * g.mean()
    return w, b


def fixed_order_job(ctx, protocol, batch, mode):
    a, b, c = ctx.parties("a", "b", "c")
    mpc = (
        ctx.mpc("semi2k", parties=(a, b), dealer=c)
        if protocol == "semi2k"
        else ctx.mpc("aby3", parties=(a, b, c))
    )
    Xs = a(lambda: X[TRAIN])().to(mpc)
    ys = b(lambda: Y[TRAIN])().to(mpc)
    m = SSLogisticRegression(mpc, epochs=3, batch_size=batch, lr=0.5, l2=1e-2, sigmoid=mode)
    m.fit(Xs, ys)
    w = ctx.reveal(m.coef_, to=b, tag="model.weights")
    b0 = ctx.reveal(m.intercept_, to=b, tag="model.weights")
    return None if w is None else (np.asarray(w), float(np.asarray(b0).reshape(-1)[0]))


@pytest.mark.parametrize(
    ("protocol", "batch", "mode", "tol"),
    [
        ("semi2k", 256, "accurate", 1e-4),  # power of two: 1/m folded into the truncation
        ("semi2k", 300, "cheap", 5e-3),  # 300 and a last batch of 200: one extra scaling
        ("aby3", 256, "cheap", 5e-3),
        ("aby3", 300, "accurate", 1e-4),
    ],
)
def test_fused_update_follows_the_plain_sgd_update(protocol, batch, mode, tol):
    got = veil.simulate(
        fixed_order_job,
        ["a", "b", "c"],
        params={"protocol": protocol, "batch": batch, "mode": mode},
    )["b"]
    w_np, b_np = _numpy_sgd(X[TRAIN], Y[TRAIN], 3, batch, 0.5, 1e-2)
    np.testing.assert_allclose(got[0], w_np, atol=tol)
    assert abs(got[1] - b_np) <= tol

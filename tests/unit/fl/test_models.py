import numpy as np
import pytest

from veil.errors import ConfigError, DataError
from veil.fl.models import LinearModel, LocalTraining, LogisticModel, MLPModel, SoftmaxModel


def numeric_grad(model, p, X, y, eps=1e-6):
    g = np.zeros_like(p)
    for i in range(len(p)):
        e = np.zeros_like(p)
        e[i] = eps
        g[i] = (model.loss_grad(p + e, X, y)[0] - model.loss_grad(p - e, X, y)[0]) / (2 * eps)
    return g


@pytest.mark.parametrize(
    ("model", "classes"),
    [
        (LogisticModel(4, l2=0.1), 2),
        (LinearModel(4, l2=0.1), None),
        (SoftmaxModel(4, 3, l2=0.1), 3),
        (MLPModel(4, (5,), 1, l2=0.01), 2),
        (MLPModel(4, (6, 3), 3), 3),
    ],
)
def test_gradients_match_finite_differences(model, classes):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(9, 4))
    y = rng.integers(0, classes, 9).astype(float) if classes else rng.normal(size=9)
    p = rng.normal(scale=0.5, size=model.n_params)
    _, g = model.loss_grad(p, X, y)
    np.testing.assert_allclose(g, numeric_grad(model, p, X, y), atol=1e-7)


def test_logistic_full_batch_gd_converges_to_sklearn():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 3))
    y = (rng.random(400) < 1 / (1 + np.exp(-(X @ [1.0, -2.0, 0.5] + 0.3)))).astype(float)
    C = 1.0
    model = LogisticModel(3, l2=1.0 / (C * len(y)))
    opts = LocalTraining(epochs=3000, batch_size=400, lr=1.0)
    w, _ = model.fit_local(np.zeros(4), X, y, opts, rng)
    sk = LogisticRegression(C=C, tol=1e-10, max_iter=10_000).fit(X, y)
    np.testing.assert_allclose(w[:-1], sk.coef_[0], atol=1e-4)
    assert w[-1] == pytest.approx(sk.intercept_[0], abs=1e-4)


def test_bad_inputs():
    with pytest.raises(DataError, match="labels 0/1"):
        LogisticModel(2).fit_local(
            np.zeros(3),
            np.zeros((2, 2)),
            np.array([0, 2.0]),
            LocalTraining(),
            np.random.default_rng(),
        )
    with pytest.raises(DataError, match="expected 2 features"):
        LogisticModel(2).check_data(np.zeros((2, 3)), np.zeros(2))
    with pytest.raises(ConfigError):
        LocalTraining(lr=0)
    with pytest.raises(ConfigError):
        SoftmaxModel(2, 1)

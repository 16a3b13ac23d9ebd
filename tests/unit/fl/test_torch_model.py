"""torch modules as federated models: same training as a plain torch loop; DP-SGD accounted."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch models need the torch extra")

import veil  # noqa: E402
from veil.fl.aggregation import Aggregation  # noqa: E402
from veil.fl.loop import ClientData, FLConfig, federated_fit  # noqa: E402
from veil.fl.models import LocalTraining, MLPModel  # noqa: E402
from veil.fl.torch_model import TorchModel  # noqa: E402

CLIENTS = ["c1", "c2", "c3"]


def mlp():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))


def data(name):
    rng = np.random.default_rng([3, *name.encode()])
    X = rng.normal(size=(120, 4))
    y = (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0.5).astype(np.int64)
    return ClientData(X[:90], y[:90].astype(np.float64), X[90:], y[90:].astype(np.float64))


def test_gradient_matches_numpy_mlp():
    tm = TorchModel(mlp, task="multiclass")
    nm = MLPModel(4, (8,), 3)
    p = tm.init_params(np.random.default_rng())
    # torch Linear stores W as (out, in); veil's MLP as (in, out): reorder
    sd = tm.module.state_dict()
    flat = np.concatenate(
        [
            sd["0.weight"].numpy().T.ravel(),
            sd["0.bias"].numpy(),
            sd["2.weight"].numpy().T.ravel(),
            sd["2.bias"].numpy(),
        ]
    )
    d = data("c1")
    lt, _ = tm.loss_grad(p, d.X_train, d.y_train)
    ln, _ = nm.loss_grad(flat.astype(np.float64), d.X_train, d.y_train)
    assert lt == pytest.approx(ln, rel=1e-5)


def torch_job(ctx, dp=None):
    model = TorchModel(mlp, task="multiclass", dp_sgd=dp)
    cfg = FLConfig(
        rounds=5,
        local=LocalTraining(epochs=1, batch_size=16, lr=0.1),
        aggregation=Aggregation.SECURE,
        eval_bins=10,
    )
    d = None if ctx.party == "server" else data(ctx.party)
    res = federated_fit(ctx, model, server="server", clients=CLIENTS, data=d, config=cfg)
    return {"acc": res.final_metrics["accuracy"], "eps": model.dp_epsilon(1e-5)}


def plain_torch_fedavg(rounds=5):
    """The same FedAvg in one process with plain torch (same init, shuffles and SGD)."""
    model = TorchModel(mlp, task="multiclass")
    g = model.init_params(np.random.default_rng())
    opts = LocalTraining(epochs=1, batch_size=16, lr=0.1)
    for r in range(1, rounds + 1):
        total = np.zeros_like(g)
        for c in CLIENTS:
            d = data(c)
            new, _ = model.fit_local(
                g, d.X_train, d.y_train, opts, np.random.default_rng([0, r, *c.encode()])
            )
            total += len(d.y_train) * (new - g)
        g = g + total / (90 * len(CLIENTS))
    X = np.concatenate([data(c).X_val for c in CLIENTS])
    y = np.concatenate([data(c).y_val for c in CLIENTS])
    return float((model.predict(g, X).argmax(1) == y).mean())


def test_federated_torch_mlp_equals_plain_torch_fedavg():
    out = veil.simulate(torch_job, ["server", *CLIENTS])
    # secure aggregation rounds to 2^-24: at most one of the 90 held-out rows may flip
    assert out["c1"]["acc"] == pytest.approx(plain_torch_fedavg(), abs=1.5 / 90)
    assert out["c1"]["acc"] > 0.6 and out["c1"]["eps"] is None


def test_dp_sgd_inside_clients_is_accounted():
    out = veil.simulate(torch_job, ["server", *CLIENTS], params={"dp": (1.0, 1.0)})
    assert out["c2"]["eps"] is not None and 0 < out["c2"]["eps"] < 50
    assert out["server"]["eps"] is None  # the server trains nothing

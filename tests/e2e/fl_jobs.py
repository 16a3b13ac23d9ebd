"""FL jobs the e2e tests run as separate processes."""

import os
import signal

import numpy as np

from veil.fl.aggregation import Aggregation
from veil.fl.loop import ClientData, FLConfig, federated_fit
from veil.fl.models import LocalTraining, LogisticModel


def client_data(name: str) -> ClientData:
    rng = np.random.default_rng([7, *name.encode()])
    w = np.array([1.5, -1.0, 0.5, 0.0, 2.0])
    X = rng.normal(size=(200, 5))
    y = (rng.random(200) < 1 / (1 + np.exp(-(X @ w)))).astype(np.float64)
    return ClientData(X[:150], y[:150], X[150:], y[150:])


class DyingModel(LogisticModel):
    """A client model whose process dies (SIGKILL) when it starts training round `die_at`."""

    def __init__(self, die_at: int | None) -> None:
        super().__init__(5)
        self.die_at, self.calls = die_at, 0

    def fit_local(self, *args, **kwargs):
        self.calls += 1
        if self.die_at is not None and self.calls == self.die_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return super().fit_local(*args, **kwargs)


def fl_job(ctx, clients, rounds=4, die=(), die_at=2, checkpoint=None, resume=False):
    data = None if ctx.party == "server" else client_data(ctx.party)
    model = DyingModel(die_at if ctx.party in die else None)
    cfg = FLConfig(
        rounds=rounds,
        local=LocalTraining(epochs=1, batch_size=16, lr=0.2),
        aggregation=Aggregation.SECURE,
        eval_bins=100,
        round_timeout=10.0,
        checkpoint_dir=None if checkpoint is None else __import__("pathlib").Path(checkpoint),
        resume=resume,
    )
    res = federated_fit(ctx, model, server="server", clients=clients, data=data, config=cfg)
    return {
        "history": res.history,
        "final": res.final_metrics,
        "dropped": res.dropped,
        "params": res.params,
    }

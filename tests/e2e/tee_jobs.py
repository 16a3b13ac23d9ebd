"""TEE jobs the e2e tests run as separate processes over gRPC (importable as ``tee_jobs``)."""

from __future__ import annotations

from typing import Any

import numpy as np

import veil
from veil.devices.tee import ReleasePolicy, sim_policy
from veil.tee import ProgramBundle


def train_lr(x_bank: Any, x_ext: Any, y: Any, epochs: int, lr: float, batch: int) -> Any:
    import numpy

    x = numpy.hstack([x_bank, x_ext])
    w, b = numpy.zeros(x.shape[1]), 0.0
    for _ in range(epochs):
        for s in range(0, len(x), batch):
            xb, yb = x[s : s + batch], y[s : s + batch]
            g = 1.0 / (1.0 + numpy.exp(-(xb @ w + b))) - yb
            w = w - lr * (xb.T @ g) / len(xb)
            b = b - lr * float(g.mean())
    return numpy.append(w, b)


PROGRAM = [train_lr]


def lr_data(rows: int = 2000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vertically split: bank holds 3 features and the label, ext1 holds 2 features."""
    rng = np.random.default_rng(11)
    x = rng.normal(size=(rows, 5))
    y = (rng.random(rows) < 1 / (1 + np.exp(-(x @ np.array([1.0, -2.0, 0.5, 1.5, -1.0]))))).astype(
        np.float64
    )
    return x[:, :3], x[:, 3:], y


def tee_lr_job(ctx: veil.Context, sim_root: bytes, opt_in: list[str]) -> Any:
    """Train LR inside the simulated enclave hosted by ``bank``; weights go to ``bank`` only."""
    bank, ext1, _ = ctx.parties("bank", "ext1", "carol")
    bundle = ProgramBundle.from_functions(PROGRAM, dependencies=["numpy"])
    policies = {p: sim_policy(bundle) for p in opt_in}
    x_bank, x_ext, y = lr_data()
    with ctx.tee(
        bank,
        program=bundle,
        owners=[bank, ext1],
        release=ReleasePolicy(recipients=frozenset({"bank"})),
        policy=policies,
        sim_root=sim_root,
    ) as tee:
        xb = bank(lambda: x_bank)().to(tee)
        xe = ext1(lambda: x_ext)().to(tee)
        yb = bank(lambda: y)().to(tee)
        w = tee(train_lr)(xb, xe, yb, 3, 0.5, 256)
        return ctx.reveal(w, to=bank, tag="model.weights")

"""The joint risk model trained inside a TEE instead of under MPC (``veil risk --engine tee``).

After the same PSI alignment and owner-side encoding as the MPC job, every data owner seals its
encoded block to an enclave hosted by the bank, after verifying the enclave's attestation under
its own policy; the enclave runs :func:`enclave_logistic_regression` — standardisation and the
same mini-batch SGD as :class:`veil.ml.SSLogisticRegression`, in float64 at native speed — and
its output (weights and test scores) is released to the bank only, under the release policy the
owners agreed. Here the enclave is **simulated** (a local process signing with a per-run
development root): as trusted as a third party, and every ledger entry says so. The trade-off
with MPC is in ``docs/tee.md`` (threat-model table): TEE trusts the hardware vendor and the
enclave's code; MPC trusts that parties do not collude.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from veil.runtime.context import Context


def enclave_logistic_regression(
    y: Any, train: Any, test: Any, epochs: int, batch_size: int, lr: float, l2: float,
    seed: int, *blocks: Any,
) -> Any:  # fmt: skip
    """Runs inside the enclave: standardise on the training rows, mini-batch SGD with L2 (per
    epoch a seeded permutation), then ``[w..., b, test scores...]``."""
    import numpy

    x = numpy.hstack([numpy.asarray(b, dtype=numpy.float64) for b in blocks])
    y = numpy.asarray(y, dtype=numpy.float64)
    train, test = numpy.asarray(train), numpy.asarray(test)
    mu, sd = x[train].mean(axis=0), x[train].std(axis=0)
    sd[sd == 0] = 1.0
    z = (x - mu) / sd
    xt, yt = z[train], y[train]
    w, b = numpy.zeros(z.shape[1]), 0.0
    for epoch in range(epochs):
        order = numpy.random.default_rng([seed, epoch]).permutation(len(yt))
        for s in range(0, len(yt), batch_size):
            rows = order[s : s + batch_size]
            g = 1.0 / (1.0 + numpy.exp(-(xt[rows] @ w + b))) - yt[rows]
            w = w - lr * (xt[rows].T @ g / len(rows) + l2 * w)
            b = b - lr * g.mean()
    scores = 1.0 / (1.0 + numpy.exp(-(z[test] @ w + b)))
    return numpy.concatenate([w, [b], scores])


def train_in_tee(
    ctx: Context,
    *,
    bank: str,
    owners: list[str],
    block: np.ndarray | None,
    y: Any,
    train: np.ndarray,
    test: np.ndarray,
    sim_root: bytes,
    epochs: int,
    batch_size: int,
    lr: float,
    l2: float,
) -> tuple[Any, Any]:
    """SPMD: seal every owner's block (and the bank's labels) into the bank's simulated enclave,
    train there, release weights and test scores to the bank. Returns ``(weights, scores)`` at
    the bank, ``(None, None)`` elsewhere."""
    from veil.devices.tee import ReleasePolicy, sim_policy
    from veil.tee import ProgramBundle

    bank_p = ctx.parties(bank)[0]
    bundle = ProgramBundle.from_functions([enclave_logistic_regression], dependencies=["numpy"])
    with ctx.tee(bank_p, program=bundle, owners=list(ctx.parties(*owners)),
                 release=ReleasePolicy(recipients=frozenset({bank})),
                 policy=sim_policy(bundle), sim_root=sim_root) as tee:  # fmt: skip
        sealed = [p(lambda: block)().to(tee) for p in ctx.parties(*owners)]
        labels = bank_p(lambda: y)().to(tee)
        out = tee(enclave_logistic_regression)(
            labels, train, test, epochs, batch_size, lr, l2, ctx.seed, *sealed
        )
        result = ctx.reveal(out, to=bank_p, tag="model.enclave_output")
    if result is None:
        return None, None
    d = len(result) - len(test) - 1
    return np.asarray(result[: d + 1]), np.asarray(result[d + 1 :])

"""``veil bench fl.round``: federated averaging with secure aggregation on the anchors' inputs.

Same job as ``../shared/anchors/run.sh fl.round`` (``inputs.FL_CONFIG``): sklearn digits, MLP
64-32-10, SGD lr 0.05 momentum 0.9, batch 32, one local epoch, all clients every round, FedAvg
weighted by example count, the same client partitions. veil runs it as an SPMD job — a server and
``clients`` parties, threads over memory or processes over gRPC with mutual TLS — with **secure
aggregation on** (SecAgg+). Start from the anchors' initial weights with ``--init FILE.npz``
(``run.sh fl.round --dump-init FILE.npz``); local shuffles use numpy, not ``torch.randperm``, so
compare ``final_acc`` (not weights) with the plain loop.

``seconds`` is the median wall time of rounds 2..R at the server (plan broadcast, local training,
secure aggregation, update); ``total_seconds`` runs from the process start to the end of the job;
``max_abs_err`` is the largest difference between the secure run's final weights and the same
algorithm summed in plaintext in this process (the fixed-point cost of secure aggregation).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from veil.bench.common import anchor_inputs, emit, median, record
from veil.fl.loop import ClientData, FLConfig, federated_fit
from veil.fl.models import LocalTraining, MLPModel
from veil.runtime.context import Context
from veil.runtime.simulate import Transport

SERVER = "server"


def _model() -> MLPModel:
    return MLPModel(64, (32,), 10)


def _local() -> LocalTraining:
    return LocalTraining(epochs=1, batch_size=32, lr=0.05, momentum=0.9)


def load_init(path: Path) -> np.ndarray:
    """Flatten the anchors' torch ``state_dict`` dump into veil's MLP parameter layout."""
    with np.load(path, allow_pickle=False) as z:
        parts = [z["fc1.weight"].T.ravel(), z["fc1.bias"], z["fc2.weight"].T.ravel(), z["fc2.bias"]]
    return np.concatenate(parts).astype(np.float64)


def client_partition(
    index: int, clients: int, partition: str, alpha: float, seed: int
) -> ClientData:
    """One client's rows of the anchors' split (each client loads only its own part)."""
    inputs = anchor_inputs()
    Xtr, ytr, _, _ = inputs.fl_dataset(seed)
    idx = inputs.fl_partitions(clients, partition, alpha, seed, y_train=ytr)[index]
    empty = np.zeros((0, Xtr.shape[1]))
    return ClientData(Xtr[idx].astype(np.float64), ytr[idx].astype(np.float64), empty, np.zeros(0))


def fl_round_job(
    ctx: Context, clients: int, rounds: int, partition: str, alpha: float,
    init: list[float] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """SPMD job: ``server`` coordinates, ``c0..c{n-1}`` train on their partition."""
    names = [f"c{i}" for i in range(clients)]
    data = None
    if ctx.party != SERVER:
        data = client_partition(names.index(ctx.party), clients, partition, alpha, ctx.seed)
    model = _model()
    if init is not None:
        model_init = np.asarray(init, dtype=np.float64)
        model.init_params = lambda rng: model_init.copy()  # type: ignore[method-assign]
    cfg = FLConfig(rounds=rounds, local=_local(), eval_bins=1)
    res = federated_fit(ctx, model, server=SERVER, clients=names, data=data, config=cfg)
    return {"params": res.params, "rounds_log": res.rounds_log}


def plain_reference(
    clients: int, rounds: int, partition: str, alpha: float, seed: int, init: np.ndarray | None
) -> np.ndarray:
    """The same FedAvg summed in plaintext in one process (same shuffles as the job)."""
    model, opts = _model(), _local()
    g = init.copy() if init is not None else model.init_params(np.random.default_rng([seed, 0xF1]))
    parts = [client_partition(i, clients, partition, alpha, seed) for i in range(clients)]
    for r in range(1, rounds + 1):
        total, weight = np.zeros_like(g), 0.0
        for i, d in enumerate(parts):
            rng = np.random.default_rng([seed, r, *f"c{i}".encode()])
            new, _ = model.fit_local(g, d.X_train, d.y_train, opts, rng)
            total += len(d.y_train) * (new - g)
            weight += len(d.y_train)
        g = g + total / weight
    return g


def run(
    *, clients: int = 10, rounds: int = 20, partition: str = "iid", alpha: float = 0.5,
    seed: int = 0, transport: Transport = "memory", init_file: Path | None = None,
) -> Iterator[dict[str, Any]]:  # fmt: skip
    """Run the job once and yield its record."""
    import psutil

    from veil.runtime.simulate import simulate_detailed

    inputs = anchor_inputs()
    init = load_init(init_file) if init_file is not None else None
    params = {"clients": clients, "rounds": rounds, "partition": partition, "alpha": alpha,
              "init": None if init is None else init.tolist()}  # fmt: skip
    t0 = time.perf_counter()
    res = simulate_detailed(
        fl_round_job,
        [SERVER, *[f"c{i}" for i in range(clients)]],
        transport=transport,
        params=params,
        seed=seed,
    )
    job_seconds = time.perf_counter() - t0
    total_seconds = time.time() - psutil.Process().create_time()
    log = [e for e in res.results[SERVER]["rounds_log"] if e["mode"] == "train"]
    secs = [e["seconds"] for e in log]
    final = np.asarray(res.results[SERVER]["params"])
    _, _, Xte, yte = inputs.fl_dataset(seed)
    acc = float((_model().predict(final, Xte.astype(np.float64)).argmax(1) == yte).mean())
    ref = plain_reference(clients, rounds, partition, alpha, seed, init)
    yield record(
        "fl.round", f"veil-secagg-{transport}", clients, median(secs[1:] or secs),
        bytes_=int(sum(s["bytes_sent"] for s in res.stats.values())), rounds=rounds,
        max_abs_err=float(np.max(np.abs(final - ref))),
        final_acc=acc, ref_final_acc=float((_model().predict(ref, Xte.astype(np.float64))
                                            .argmax(1) == yte).mean()),
        round1_seconds=secs[0], round_seconds=secs, job_seconds=job_seconds,
        total_seconds=total_seconds, clients=clients, partition=partition, alpha=alpha,
        seed=seed, transport=transport, secure_aggregation=True, init=str(init_file),
        model_bytes=_model().n_params * 4, threads=1,
        peak_rss_mb=psutil.Process().memory_info().rss / 2**20,
        inputs_sha256=inputs.fl_fingerprint(clients, partition, alpha, seed),
    )  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    """``python -m veil.bench.fl fl.round [--clients N] ...``"""
    ap = argparse.ArgumentParser(prog="veil bench fl.round")
    ap.add_argument("bench", choices=["fl.round"])
    ap.add_argument("--clients", "--n", type=lambda s: int(float(s)), default=10)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--partition", default="iid", choices=["iid", "dirichlet"])
    ap.add_argument("--alpha", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--transport", default="memory", choices=["memory", "grpc"])
    ap.add_argument("--init", type=Path)
    a = ap.parse_args(argv)
    for rec in run(clients=a.clients, rounds=a.rounds, partition=a.partition, alpha=a.alpha,
                   seed=a.seed, transport=a.transport, init_file=a.init):  # fmt: skip
        emit(rec)


if __name__ == "__main__":
    main()

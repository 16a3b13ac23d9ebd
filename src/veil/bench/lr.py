"""``veil bench lr.train``: secret-shared logistic regression on the anchors' ``lr.train`` inputs.

Same data, schedule and update rule as ``../shared/anchors/run.sh lr.train`` (``LR_CONFIG``:
100,000 × 30, batch 1024 in fixed order, 5 epochs, lr 0.1, no penalty): the features are
imported from one party and the labels from another, as in SPU's harness. All parties are
threads of this process on the in-memory link (as SPU's simulator). ``seconds`` is the training
run; ``total_seconds_incl_compile`` adds the sharing of the inputs and the reveal of ``(w, b)``
(as SPU's total adds compile, sharing and output; veil compiles nothing). Making the data
(``lr_dataset``) is outside the timed region at both.
``max_abs_err`` is against the anchors' numpy float32 loop; ``auc`` on the 20,000 test rows.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from veil.bench.common import anchor_inputs, emit, record
from veil.ml import SSLogisticRegression
from veil.runtime.context import Context


def lr_job(
    ctx: Context, protocol: str, rows: int, epochs: int, seed: int, sigmoid: str = "cheap"
) -> dict[str, Any]:
    """alice holds X, bob holds y; semi2k adds carol as the dealer, aby3 uses all three."""
    inputs = anchor_inputs()
    cfg = inputs.LR_CONFIG
    alice, bob, carol = ctx.parties("alice", "bob", "carol")
    if protocol == "semi2k":
        mpc = ctx.mpc("semi2k", parties=(alice, bob), dealer=carol)
    else:
        mpc = ctx.mpc(protocol, parties=(alice, bob, carol))

    def load(i: int) -> np.ndarray:
        return np.asarray(inputs.lr_dataset(seed, rows=rows)[i], dtype=np.float64)

    Xp, yp = alice(load)(0), bob(load)(1)  # the parties' own data (made before timing)
    t0 = time.perf_counter()
    X = Xp.to(mpc)
    y = yp.to(mpc)
    share_s = time.perf_counter() - t0
    before = ctx.stats()["bytes_sent"]
    t1 = time.perf_counter()
    model = SSLogisticRegression(
        mpc, epochs=epochs, batch_size=cfg["batch"], lr=cfg["lr"], sigmoid=sigmoid
    )
    model.fit(X, y)
    train_s = time.perf_counter() - t1
    sent = ctx.stats()["bytes_sent"] - before
    t2 = time.perf_counter()
    w = ctx.reveal(model.coef_, to=bob, tag="model.weights")
    b = ctx.reveal(model.intercept_, to=bob, tag="model.weights")
    reveal_s = time.perf_counter() - t2  # SPU's total includes fetching the outputs too
    return {"w": w, "b": b, "train_s": train_s, "share_s": share_s, "reveal_s": reveal_s,
            "bytes": sent, "steps": model.n_steps_}  # fmt: skip


def run(
    *, protocols: tuple[str, ...] = ("semi2k", "aby3"), rows: int = 100_000, epochs: int = 5,
    seed: int | None = None, sigmoids: tuple[str, ...] = ("cheap",),
) -> Iterator[dict[str, Any]]:  # fmt: skip
    """One record per protocol and sigmoid mode (impl ``veil-P`` for SSLogisticRegression's
    default, the cheap sigmoid, ``veil-P-accurate`` for the accurate one)."""
    from veil.runtime.simulate import simulate_detailed

    inputs = anchor_inputs()
    seed = inputs.LR_SEED if seed is None else seed
    Xtr, ytr, Xte, yte = inputs.lr_dataset(seed, rows=rows)
    cfg = inputs.LR_CONFIG
    w_np, b_np = inputs.lr_train_numpy(Xtr, ytr, cfg["batch"], epochs, cfg["lr"])
    for proto, mode in ((p, m) for p in protocols for m in sigmoids):
        res = simulate_detailed(lr_job, ["alice", "bob", "carol"],
                                params={"protocol": proto, "rows": rows, "epochs": epochs,
                                        "seed": seed, "sigmoid": mode}, seed=seed)  # fmt: skip
        out = res.results["bob"]
        w, b = np.asarray(out["w"], np.float64), float(np.asarray(out["b"]).reshape(-1)[0])
        err = float(np.max(np.abs(np.append(w, b) - np.append(w_np, b_np))))
        total_bytes = sum(r["bytes"] for r in res.results.values())
        yield record(
            "lr.train", f"veil-{proto}" + ("" if mode == "cheap" else f"-{mode}"), rows,
            out["train_s"], bytes_=total_bytes, sigmoid=mode,
            rounds=None, max_abs_err=err,
            auc=inputs.auc(yte, Xte.astype(np.float64) @ w + b),
            auc_numpy_f32=inputs.auc(yte, Xte.astype(np.float64) @ w_np + float(b_np)),
            share_seconds=out["share_s"], reveal_seconds=out["reveal_s"], compile_seconds=0.0,
            total_seconds_incl_compile=out["train_s"] + out["share_s"] + out["reveal_s"],
            protocol=proto,
            features=Xtr.shape[1], test_rows=len(yte), batch=cfg["batch"], epochs=epochs,
            lr=cfg["lr"], steps=out["steps"], seed=seed,
            inputs_sha256=inputs.fingerprint(Xtr, ytr, Xte, yte),
        )  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    """``python -m veil.bench.lr lr.train [--protocol semi2k,aby3] [--rows N] [--epochs E]``"""
    ap = argparse.ArgumentParser(prog="veil bench lr.train")
    ap.add_argument("bench", choices=["lr.train"])
    ap.add_argument("--protocol", default="semi2k,aby3")
    ap.add_argument("--rows", type=lambda v: int(float(v)), default=100_000)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--sigmoid", default="cheap,accurate", help="comma list: cheap, accurate")
    a = ap.parse_args(argv)
    protos = tuple(p.strip() for p in a.protocol.split(",") if p.strip())
    modes = tuple(m.strip() for m in a.sigmoid.split(",") if m.strip())
    for rec in run(protocols=protos, rows=a.rows, epochs=a.epochs, seed=a.seed, sigmoids=modes):
        emit(rec)


if __name__ == "__main__":
    main()

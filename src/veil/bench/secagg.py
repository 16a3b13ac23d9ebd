"""Benchmark of one SecAgg+ round: seconds and bytes per client and for the aggregator.

All roles run in one process (:func:`veil.fl.secagg.inprocess.run_round`): each message is
encoded and decoded exactly as on a link, so the byte counts are the wire's, and compute time is
measured per role. ``seconds`` in a record is the round's latency if every client ran on its own
machine (median client compute + aggregator compute, network excluded); ``wall_seconds`` is the
whole round run sequentially here. Dropouts are injected after the key sharing (phase 2), the
costliest case to recover: the aggregator rebuilds each dropped client's mask key and removes its
pairwise masks from every surviving neighbour.

Run ``python -m veil.bench.secagg`` (JSON lines); ``--help`` for options. The first two records
are the size of Flower's SecAgg+ example (10 clients x 9,640 parameters): in process, then a
real :func:`~veil.fl.secagg.secure_sum` round over the in-memory link with one thread per party
(``transport: "memory"``, wall time).
"""

from __future__ import annotations

import argparse
import math
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from veil.bench.common import emit, median, record
from veil.errors import VeilError
from veil.fl.secagg import GraphKind, SecAggConfig, run_aggregator, secure_sum
from veil.fl.secagg.inprocess import run_round
from veil.transport.memory import MemoryHub

BENCH = "secagg.round"
IMPL = "veil-secagg+"
#: Parameters of the MLP in Flower's SecAgg+ example (the size its 0.78-0.87 s round refers to).
FLOWER_PARAMS = 9_640


def run(
    *,
    clients: Sequence[int] = (10, 50, 100, 200),
    params: Sequence[int] = (10_000, 1_000_000),
    dropout: Sequence[float] = (0.0, 0.2),
    repeats: int = 3,
    graph: GraphKind = GraphKind.SPARSE,
    seed: int = 0,
) -> Iterator[dict[str, Any]]:
    """Yield one record per (clients, params, dropout); medians over ``repeats`` rounds
    (one round when ``clients * params`` exceeds 5e7)."""
    rng = np.random.default_rng(seed)
    cfg = SecAggConfig(graph=graph)
    fp = cfg.fixed_point
    for d in params:
        # one shared read-only vector keeps memory at O(params) whatever the number of clients
        base = rng.normal(size=d) * (0.5 / math.sqrt(d))
        enc = fp.encode(base)
        for n in clients:
            names = [f"c{i}" for i in range(n)]
            plan = cfg.plan("bench", names)
            reps = 1 if n * d > 5e7 else repeats
            for rate in dropout:
                gone = [str(c) for c in rng.choice(names, round(rate * n), replace=False)]
                rows: list[dict[str, float]] = []
                err = 0.0
                for rep in range(reps):
                    r = run_round(
                        {c: base for c in names},
                        cfg,
                        round_id=f"bench/{n}/{d}/{rate}/{rep}",
                        drop={2: gone},
                    )
                    if r.result is None:
                        raise VeilError(f"benchmark round failed: {r.error}")
                    live = r.result.survivors
                    exact = fp.decode(enc * np.uint64(len(live)))
                    if not np.array_equal(r.result.total, exact):
                        raise VeilError("secure sum differs from the plaintext fixed-point sum")
                    err = max(err, float(np.abs(r.result.total - base * len(live)).max()))
                    cc = [r.client_costs[c] for c in live]
                    a = r.aggregator_costs
                    rows.append(
                        {
                            "client_seconds": median([c.seconds for c in cc]),
                            "client_bytes": median([c.bytes_sent + c.bytes_recv for c in cc]),
                            "aggregator_seconds": a.seconds,
                            "aggregator_bytes": a.bytes_sent + a.bytes_recv,
                            "wall_seconds": sum(c.seconds for c in r.client_costs.values())
                            + a.seconds,
                        }
                    )
                m = {k: median([row[k] for row in rows]) for k in rows[0]}
                yield record(
                    BENCH,
                    IMPL,
                    n,
                    m["client_seconds"] + m["aggregator_seconds"],
                    bytes_=int(m["client_bytes"]),
                    rounds=4,
                    max_abs_err=err,
                    params=d,
                    dropout=rate,
                    dropped=len(gone),
                    graph=graph.value,
                    degree=len(plan.neighbours[names[0]]),
                    threshold=plan.threshold,
                    client_seconds=m["client_seconds"],
                    client_bytes=int(m["client_bytes"]),
                    aggregator_seconds=m["aggregator_seconds"],
                    aggregator_bytes=int(m["aggregator_bytes"]),
                    wall_seconds=m["wall_seconds"],
                    repeats=reps,
                )


def _memory_round(
    names: list[str], base: np.ndarray, cfg: SecAggConfig, round_id: str
) -> tuple[float, int, np.ndarray]:
    """One secure_sum round over a fresh in-memory hub: (wall seconds, aggregator bytes, sum)."""
    hub = MemoryHub(["agg", *names])
    links = {p: hub.link(p) for p in ["agg", *names]}
    out: dict[str, Any] = {}

    def client(c: str) -> None:
        secure_sum(links[c], round_id, c, "agg", names, base, cfg)

    def agg() -> None:
        out["r"] = run_aggregator(links["agg"], round_id, "agg", names, cfg)

    threads = [threading.Thread(target=client, args=(c,)) for c in names]
    threads.append(threading.Thread(target=agg))
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - t0
    nbytes = sum(s.bytes_sent + s.bytes_recv for s in links["agg"].stats().values())
    return seconds, nbytes, out["r"].total


def run_memory_link(
    *, clients: int = 10, params: int = FLOWER_PARAMS, repeats: int = 7, seed: int = 0
) -> dict[str, Any]:
    """One record: a full :func:`secure_sum` round over the in-memory link, one thread per party
    (wall time from start to the aggregator's result; median of ``repeats``)."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=params) * (0.5 / math.sqrt(params))
    cfg = SecAggConfig()
    names = [f"c{i}" for i in range(clients)]
    times: list[float] = []
    sizes: list[float] = []
    err = 0.0
    for rep in range(repeats):
        seconds, nbytes, total = _memory_round(names, base, cfg, f"bench/{rep}")
        times.append(seconds)
        sizes.append(nbytes)
        err = max(err, float(np.abs(total - base * clients).max()))
    return record(
        BENCH,
        IMPL,
        clients,
        median(times),
        bytes_=int(median(sizes)),
        rounds=4,
        max_abs_err=err,
        params=params,
        dropout=0.0,
        transport="memory",
        aggregator_bytes=int(median(sizes)),
        client_bytes=int(median(sizes) / clients),
        repeats=repeats,
    )


def grpc_rounds_job(ctx: Any, params: int = FLOWER_PARAMS, rounds: int = 6) -> Any:
    """SPMD job (one process per party over gRPC/mTLS): ``rounds`` secure sums in a row; the
    aggregator returns each round's wall seconds and its bytes on the wire."""
    names = [p for p in ctx.cluster if p != "agg"]
    base = np.random.default_rng(0).normal(size=params) * (0.5 / math.sqrt(params))
    cfg = SecAggConfig()
    times: list[float] = []
    for _ in range(rounds):
        key = ctx.next_key("secagg-bench")
        t0 = time.perf_counter()
        if ctx.party == "agg":
            run_aggregator(ctx.link, key, "agg", names, cfg)
        else:
            secure_sum(ctx.link, key, ctx.party, "agg", names, base, cfg)
        times.append(time.perf_counter() - t0)
    if ctx.party != "agg":
        return None
    nbytes = sum(s.bytes_sent + s.bytes_recv for s in ctx.link.stats().values())
    return {"times": times, "bytes": nbytes}


def run_grpc(*, clients: int = 10, params: int = FLOWER_PARAMS, rounds: int = 6) -> dict[str, Any]:
    """One record: secure_sum rounds between real processes over gRPC with mutual TLS
    (``veil.simulate(transport="grpc")``); median wall time of rounds 2..R at the aggregator."""
    from veil.runtime.simulate import simulate

    parties = ["agg", *(f"c{i}" for i in range(clients))]
    out = simulate(
        grpc_rounds_job, parties, transport="grpc", params={"params": params, "rounds": rounds}
    )
    times = out["agg"]["times"]
    return record(
        BENCH,
        IMPL,
        clients,
        median(times[1:] or times),
        bytes_=int(out["agg"]["bytes"] / rounds),
        rounds=4,
        params=params,
        dropout=0.0,
        transport="grpc",
        first_round_seconds=times[0],
        repeats=len(times) - 1,
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Print JSON lines: Flower's example size first, then the scaling table."""
    ap = argparse.ArgumentParser(prog="python -m veil.bench.secagg", description=__doc__)
    ap.add_argument("--clients", type=int, nargs="+", default=[10, 50, 100, 200])
    ap.add_argument("--params", type=int, nargs="+", default=[10_000, 1_000_000])
    ap.add_argument("--dropout", type=float, nargs="+", default=[0.0, 0.2])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--graph", choices=[g.value for g in GraphKind], default="sparse")
    ap.add_argument("--no-flower-size", action="store_true", help="skip the 10 x 9,640 records")
    ap.add_argument("--grpc", action="store_true", help="also time 10 x 9,640 over gRPC processes")
    args = ap.parse_args(argv)
    graph = GraphKind(args.graph)
    if not args.no_flower_size:
        for rec in run(
            clients=(10,), params=(FLOWER_PARAMS,), dropout=(0.0,), repeats=7, graph=graph
        ):
            emit(rec)
        emit(run_memory_link())
        if args.grpc:
            emit(run_grpc())
    for rec in run(
        clients=args.clients,
        params=args.params,
        dropout=args.dropout,
        repeats=args.repeats,
        graph=graph,
    ):
        emit(rec)


if __name__ == "__main__":
    main()

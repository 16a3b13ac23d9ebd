"""MPC kernel benchmarks, side by side with SPU's (same bench names, same seeded inputs).

All parties are threads of this process on the in-memory link (as SPU's simulator runs them);
inputs are secret-shared before timing; ``seconds`` is the median of ``repeats`` warm runs
(after one warm-up), each run timed from a common start barrier to the slowest party's end.
``bytes`` (all parties) and ``rounds`` (the longest chain of waits of one party) come from the
link counters of one run; ``max_abs_err`` is against numpy float64 on the same inputs.

Usage: ``python -m veil.bench.mpc mpc.mul --protocol semi2k,aby3 --n 1e6 --repeats 3``
"""

from __future__ import annotations

import argparse
import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

import veil.mpc as vm
from veil.bench.common import anchor_inputs, emit, median, record
from veil.errors import ConfigError
from veil.mpc.engine import Engine
from veil.mpc.local import LocalParty, run_parties
from veil.mpc.tensor import SecretTensor

KERNELS: dict[str, Callable[..., SecretTensor]] = {
    "mpc.matmul": lambda a, b: a @ b,
    "mpc.mul": lambda a, b: a * b,
    "mpc.less": lambda a, b: a < b,
    "mpc.sigmoid": lambda x: vm.sigmoid(x),
    "mpc.reciprocal": lambda x: vm.reciprocal(x),
    "mpc.exp": lambda x: vm.exp(x, bound=4.0),
}

SETUPS: dict[str, tuple[tuple[str, ...], str | None]] = {
    "semi2k": (("alice", "bob"), "dealer"),
    "aby3": (("alice", "bob", "carol"), None),
    "ref": (("alice", "bob"), None),
}


@contextlib.contextmanager
def _one_blas_thread_per_party() -> Iterator[int | None]:
    """Limit BLAS to one thread per call while the party threads run.

    All parties share this process, so they already use every core in parallel; letting each
    party's GEMM spawn its own BLAS threads oversubscribes the cores (measured 2.5x slower for
    the 1000³ matmul). Needs ``threadpoolctl``; without it BLAS keeps its default (``None``).
    """
    try:
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped,unused-ignore]
    except ImportError:  # pragma: no cover - optional
        yield None
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield 1


def run(
    bench: str,
    *,
    protocol: str = "semi2k",
    n: int | None = None,
    repeats: int = 3,
    **options: Any,
) -> Iterator[dict[str, Any]]:
    """Yield one result record for ``bench`` under ``protocol`` (see module docstring).

    ``options`` go to the protocol (semi2k: ``trunc="pair"|"local"``).
    """
    if bench not in KERNELS:
        raise ConfigError(f"unknown MPC bench {bench!r}; known: {sorted(KERNELS)}")
    if protocol not in SETUPS:
        raise ConfigError(f"unknown protocol {protocol!r}; use one of {sorted(SETUPS)}")
    inputs_mod = anchor_inputs()
    size = int(n or inputs_mod.KERNELS[bench][0])
    args = inputs_mod.kernel_inputs(bench, size)
    ref = inputs_mod.kernel_reference(bench, *args)
    fp = inputs_mod.fingerprint(*args)
    parties, dealer = SETUPS[protocol]
    cluster = parties + ((dealer,) if dealer else ())
    owners = [parties[i % len(parties)] for i in range(len(args))]
    kernel = KERNELS[bench]
    barrier = threading.Barrier(len(cluster))

    def body(lp: LocalParty) -> dict[str, Any]:
        eng = Engine(lp.link, lp.next_key, protocol, parties, dealer=dealer, **options)
        ts = [
            eng.input(o, np.asarray(a, np.float64) if lp.party == o else None, a.shape, "fxp64")
            for o, a in zip(owners, args, strict=True)
        ]
        kernel(*ts)  # warm-up
        times = []
        for _ in range(repeats):
            barrier.wait()
            t0 = time.perf_counter()
            kernel(*ts)
            times.append(time.perf_counter() - t0)
        barrier.wait()
        sent0 = sum(s.bytes_sent for s in lp.link.stats().values())
        r0 = eng.comm.rounds
        out = kernel(*ts)
        sent = sum(s.bytes_sent for s in lp.link.stats().values()) - sent0
        rounds = eng.comm.rounds - r0
        value = out.reveal_to((parties[0],))
        return {"times": times, "sent": sent, "rounds": rounds, "value": value}

    with _one_blas_thread_per_party() as blas_threads:
        res = run_parties(cluster, body, timeout=600.0)
    runs = [max(res[p]["times"][i] for p in cluster) for i in range(repeats)]
    out = np.asarray(res[parties[0]]["value"], np.float64)
    err = np.abs(out - ref)
    extra: dict[str, Any] = {}
    if bench == "mpc.less":
        extra["mismatches"] = int(np.count_nonzero(err))
    else:
        extra["median_rel_err"] = float(np.median(err / np.maximum(np.abs(ref), 1e-6)))
        extra["max_rel_err"] = float(np.max(err / np.maximum(np.abs(ref), 1e-6)))
    yield record(
        bench,
        f"veil-{protocol}",
        size,
        median(runs),
        bytes_=int(sum(res[p]["sent"] for p in cluster)),
        rounds=int(max(res[p]["rounds"] for p in cluster)),
        max_abs_err=float(err.max()) if err.size else 0.0,
        protocol=protocol,
        options=options,
        parties=len(parties),
        dealer=dealer,
        field="Z_2^64",
        frac_bits=18,
        runs=runs,
        inputs_sha256=fp,
        blas_threads_per_party=blas_threads,
        **extra,
    )


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m veil.bench.mpc BENCH [--protocol P[,Q]] [--n N] [--repeats R]``."""
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("bench", choices=sorted(KERNELS))
    ap.add_argument("--protocol", default="semi2k", help="comma list of semi2k, aby3, ref")
    ap.add_argument("--n", type=lambda v: int(float(v)), default=None)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--trunc", choices=("pair", "local"), default=None, help="semi2k truncation")
    a = ap.parse_args(argv)
    for proto in a.protocol.split(","):
        opts = {"trunc": a.trunc} if a.trunc and proto == "semi2k" else {}
        for rec in run(a.bench, protocol=proto, n=a.n, repeats=a.repeats, **opts):
            emit(rec)


if __name__ == "__main__":
    main()

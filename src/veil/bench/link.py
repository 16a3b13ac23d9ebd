"""Link benchmarks: array throughput and small-message round trip, in-memory vs gRPC/mTLS.

* ``link.throughput`` — ``n`` = array bytes (uint8). One run: alice sends the array, bob receives
  it whole and answers a 0-byte ack; ``seconds`` is the median over ``repeats`` runs (after one
  warm-up) from send to ack; extra ``mb_per_s`` = ``n / seconds / 1e6``.
* ``link.rtt`` — ``n`` = message bytes. One run: alice sends ``n`` bytes, bob echoes them;
  ``seconds`` is the median round trip over ``rtt_count`` exchanges; extra ``p90``.

``veil-memory`` runs both parties as threads of this process. ``veil-grpc-mtls`` runs bob in a
separate Python process (``python -m veil.bench.link --peer ...``) with a fresh cluster CA and
mutual TLS on 127.0.0.1, so sender and receiver never share a GIL.

Usage: ``python -m veil.bench.link [--sizes 1e6,1.6e7] [--repeats 3] [--transports memory,grpc]``
prints one JSON line per record.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from veil.bench.common import emit, median, record
from veil.core import wire
from veil.errors import ConfigError
from veil.transport.base import Link
from veil.transport.certs import TlsFiles, init_cluster
from veil.transport.grpc_link import GrpcLink, GrpcOptions
from veil.transport.memory import MemoryHub
from veil.transport.ports import free_ports

IMPLS = {"memory": "veil-memory", "grpc": "veil-grpc-mtls"}
_OPTIONS = GrpcOptions(connect_timeout=60.0, recv_timeout=600.0, max_message_bytes=(4 << 30))


# --------------------------------------------------------------------------- bob's side
def _peer_loop(link: Link, boss: str) -> None:
    """Serve the commands of ``boss`` until it says stop (runs in bob's thread or process)."""
    while True:
        cmd = wire.decode_value(link.recv_bytes(boss, "cmd"))
        op, count = cmd["op"], int(cmd["count"])
        if op == "stop":
            return
        if op == "tput":
            for _ in range(count):
                link.recv_array(boss, "t")
                link.send_bytes(boss, "ack", b"")
        elif op == "rtt":
            for _ in range(count):
                link.send_bytes(boss, "pong", link.recv_bytes(boss, "ping"))
        else:
            raise ConfigError(f"unknown benchmark command {op!r}")


# ------------------------------------------------------------------------- alice's side
def _measure(
    link: Link, sizes: Sequence[int], repeats: int, rtt_bytes: int, rtt_count: int
) -> Iterator[tuple[str, int, list[float]]]:
    peer = link.peers[0]
    for size in sizes:
        arr = np.ones(size, dtype=np.uint8)
        link.send_bytes(peer, "cmd", wire.encode_value({"op": "tput", "count": repeats + 1}))
        times = []
        for i in range(repeats + 1):
            t0 = time.perf_counter()
            link.send_array(peer, "t", arr)
            link.recv_bytes(peer, "ack")
            if i:  # the first run warms up buffers and connections
                times.append(time.perf_counter() - t0)
        del arr
        yield "link.throughput", size, times
    msg = b"\x5a" * rtt_bytes
    link.send_bytes(peer, "cmd", wire.encode_value({"op": "rtt", "count": rtt_count + 20}))
    times = []
    for i in range(rtt_count + 20):
        t0 = time.perf_counter()
        link.send_bytes(peer, "ping", msg)
        link.recv_bytes(peer, "pong")
        if i >= 20:
            times.append(time.perf_counter() - t0)
    yield "link.rtt", rtt_bytes, times
    link.send_bytes(peer, "cmd", wire.encode_value({"op": "stop", "count": 0}))


def _records(
    impl: str, results: Iterator[tuple[str, int, list[float]]], extra: dict[str, Any]
) -> Iterator[dict[str, Any]]:
    for bench, n, times in results:
        sec = median(times)
        if bench == "link.throughput":
            yield record(
                bench, impl, n, sec, bytes_=n, rounds=1, mb_per_s=n / sec / 1e6,
                repeats=len(times), **extra,
            )  # fmt: skip
        else:
            p90 = float(np.percentile(times, 90))
            yield record(bench, impl, n, sec, bytes_=2 * n, rounds=1, p90=p90, **extra)


def _run_memory(
    sizes: Sequence[int], repeats: int, rtt_bytes: int, rtt_count: int
) -> Iterator[dict[str, Any]]:
    hub = MemoryHub(["alice", "bob"])
    alice, bob = hub.link("alice", timeout=600.0), hub.link("bob", timeout=600.0)
    server = threading.Thread(target=_peer_loop, args=(bob, "alice"), daemon=True)
    server.start()
    try:
        yield from _records(
            IMPLS["memory"], _measure(alice, sizes, repeats, rtt_bytes, rtt_count), {}
        )
    finally:
        server.join(60)
        alice.close()
        bob.close()


def _run_grpc(
    sizes: Sequence[int], repeats: int, rtt_bytes: int, rtt_count: int
) -> Iterator[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="veil-bench-link-") as tmp:
        tls = init_cluster(["alice", "bob"], Path(tmp))
        pa, pb = free_ports(2)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        env.setdefault("GRPC_VERBOSITY", "NONE")
        cmd = [sys.executable, "-m", "veil.bench.link", "--peer", tmp, str(pa), str(pb)]
        proc = subprocess.Popen(cmd, env=env)
        link = GrpcLink(
            "alice", {"alice": ("127.0.0.1", pa), "bob": ("127.0.0.1", pb)}, tls["alice"], _OPTIONS
        )
        try:
            link.wait_ready()
            extra = {"chunk_bytes": _OPTIONS.chunk_bytes, "processes": 2}
            yield from _records(
                IMPLS["grpc"], _measure(link, sizes, repeats, rtt_bytes, rtt_count), extra
            )
            link.close()
            proc.wait(60)
        finally:
            link.abort("benchmark stopped")
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _peer_main(tls_dir: str, port_a: int, port_b: int) -> int:
    addresses = {"alice": ("127.0.0.1", port_a), "bob": ("127.0.0.1", port_b)}
    link = GrpcLink("bob", addresses, TlsFiles.in_dir(tls_dir, "bob"), _OPTIONS)
    try:
        _peer_loop(link, "alice")
    except BaseException as exc:
        link.abort(f"{type(exc).__name__}: {exc}")
        raise
    link.close()
    return 0


def run(
    *,
    sizes: Sequence[int] = (1 << 20, 1 << 24, 1 << 27, 1 << 30),
    repeats: int = 3,
    transports: Sequence[str] = ("memory", "grpc"),
    rtt_bytes: int = 64,
    rtt_count: int = 500,
) -> Iterator[dict[str, Any]]:
    """Yield throughput records for each size, then one round-trip record, per transport."""
    for t in transports:
        if t == "memory":
            yield from _run_memory(sizes, repeats, rtt_bytes, rtt_count)
        elif t == "grpc":
            yield from _run_grpc(sizes, repeats, rtt_bytes, rtt_count)
        else:
            raise ConfigError(f"unknown transport {t!r}; use one of {sorted(IMPLS)}")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m veil.bench.link``: print one JSON line per record."""
    ap = argparse.ArgumentParser(prog="python -m veil.bench.link", description=__doc__)
    ap.add_argument("--sizes", default="1048576,16777216,134217728,1073741824")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--transports", default="memory,grpc")
    ap.add_argument("--rtt-count", type=int, default=500)
    ap.add_argument("--peer", nargs=3, metavar=("TLS_DIR", "PORT_A", "PORT_B"), help="internal")
    args = ap.parse_args(argv)
    if args.peer:
        return _peer_main(args.peer[0], int(args.peer[1]), int(args.peer[2]))
    sizes = [int(float(s)) for s in args.sizes.split(",") if s]
    for rec in run(
        sizes=sizes,
        repeats=args.repeats,
        transports=[t for t in args.transports.split(",") if t],
        rtt_count=args.rtt_count,
    ):
        emit(rec)
    return 0


if __name__ == "__main__":
    sys.exit(main())

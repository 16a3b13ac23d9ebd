"""Benchmark ``psi.intersect``: veil's ECDH-PSI (X25519) against SecretFlow's on the same inputs.

Inputs are the anchors' ``psi_sets(n, overlap)``: 16-char hex ids, written to ``in0.csv`` and
``in1.csv`` (header ``id``) in a temp folder, exactly like ``run.sh psi.intersect``. Both parties
run :func:`veil.psi.align_file` — CSV in, PSI, aligned CSV out — each as its own process (spawned)
talking over a pipe, each with its own worker processes for the scalar multiplications
(``--workers``, default one per core); ``--threads`` runs them as two threads of this process on
the in-memory link instead. ``seconds`` is the slower party's time for the whole call, the
competitor's definition. Both parties learn the intersection (SecretFlow: broadcast_result).
``peak_rss_mb`` is each party process's peak RSS (``VmHWM``: ``ru_maxrss`` would count the
parent's memory at fork); ``peak_rss_worker_mb`` its largest worker's.

    python -m veil.bench.psi --n 1e6 [--overlap 0.5] [--workers 2] [--repeats 1] [--threads]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import tempfile
import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterator, Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from veil.bench.common import anchor_inputs, emit, median, record
from veil.core import wire
from veil.errors import PeerError
from veil.psi import PsiOptions, align_file
from veil.transport.base import Link
from veil.transport.memory import MemoryHub

BENCH = "psi.intersect"
IMPL = "veil-psi-ecdh"


def _write_ids(path: Path, ids: list[str]) -> None:
    with open(path, "w") as f:
        f.write("id\n")
        f.write("\n".join(ids))
        f.write("\n")


def _read_ids(path: Path) -> list[str]:
    with open(path) as f:
        return [line.strip().strip('"') for line in f.readlines()[1:] if line.strip()]


class _PipeLink(Link):
    """Bench-only link between two processes over a ``multiprocessing`` pipe (raw frames, no
    pickle): ``key length u16 | key | kind u8 | payload``. A reader thread drains the pipe so that
    both sides may send large streams at once. (veil's real transports live in
    :mod:`veil.transport`; this one exists so each benchmark party is its own process.)"""

    def __init__(self, party: str, parties: Sequence[str], conn: Connection) -> None:
        super().__init__(party, parties)
        (self._peer,) = self.peers
        self._conn = conn
        self._cond = threading.Condition()
        self._queues: dict[str, deque[tuple[int, bytes]]] = defaultdict(deque)
        self._gone: str | None = None
        self._send_lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            while True:
                frame = self._conn.recv_bytes()
                klen = int.from_bytes(frame[:2], "little")
                key = frame[2 : 2 + klen].decode()
                with self._cond:
                    self._queues[key].append((frame[2 + klen], frame[3 + klen :]))
                    self._cond.notify_all()
        except (EOFError, OSError):
            with self._cond:
                self._gone = "closed the pipe"
                self._cond.notify_all()

    def _send(self, to: str, key: str, kind: int, payload: bytes) -> None:
        self._check_peer(to)
        k = key.encode()
        with self._send_lock:
            self._conn.send_bytes(len(k).to_bytes(2, "little") + k + bytes([kind]) + payload)
        self._counters.sent(to, len(payload))

    def _recv(self, frm: str, key: str, kind: int, timeout: float | None) -> bytes:
        self._check_peer(frm)
        deadline = time.monotonic() + (600.0 if timeout is None else timeout)
        with self._cond:
            while not self._queues.get(key):
                if self._gone is not None:
                    raise PeerError(frm, self._gone)
                if not self._cond.wait(max(0.0, deadline - time.monotonic())):
                    raise PeerError(frm, f"no message under {key!r} (timeout)")
            got_kind, payload = self._queues[key].popleft()
        if got_kind != kind:
            raise PeerError(frm, f"wrong message kind under {key!r}")
        self._counters.received(frm, len(payload))
        return payload

    def send_bytes(self, to: str, key: str, data: bytes | bytearray | memoryview) -> None:
        self._send(to, key, 0, bytes(data))

    def recv_bytes(self, frm: str, key: str, timeout: float | None = None) -> bytes:
        return self._recv(frm, key, 0, timeout)

    def send_array(self, to: str, key: str, arr: np.ndarray[Any, Any]) -> None:
        self._send(to, key, 1, wire.encode_array(arr))

    def recv_array(self, frm: str, key: str, timeout: float | None = None) -> np.ndarray[Any, Any]:
        return wire.decode_array(self._recv(frm, key, 1, timeout))

    def close(self) -> None:
        self._conn.close()

    def abort(self, reason: str) -> None:
        self._conn.close()


def _party_process(
    rank: int, conn: Connection, wd: str, n: int, workers: int | None, out: Connection
) -> None:
    """One benchmark party (a process of its own): align its CSV, report JSON on ``out``."""
    parties = ("p0", "p1")
    link = _PipeLink(parties[rank], parties, conn)
    res = align_file(
        link,
        f"bench/{n}",
        parties[rank],
        parties,
        Path(wd) / f"in{rank}.csv",
        "id",
        Path(wd) / f"out{rank}.csv",
        PsiOptions(workers=workers),
    )
    t = os.times()
    cpu = t.user + t.system + t.children_user + t.children_system
    info = dict(res.summary(), cpu_seconds=cpu)
    out.send_bytes(json.dumps(info).encode())
    link.close()


def run_once(
    wd: Path, n: int, expected: list[str], workers: int | None
) -> tuple[float, list[dict[str, Any]], bool, int]:
    """One two-party run, each party a process; returns seconds, per-party info, correctness."""
    ctx = multiprocessing.get_context("spawn")
    c0, c1 = ctx.Pipe(duplex=True)
    reports = [ctx.Pipe(duplex=False) for _ in range(2)]
    procs = [
        ctx.Process(target=_party_process, args=(r, c, str(wd), n, workers, reports[r][1]))
        for r, c in enumerate((c0, c1))
    ]
    for p in procs:
        p.start()
    infos = []
    for r, p in enumerate(procs):
        try:
            infos.append(json.loads(reports[r][0].recv_bytes()))
        except EOFError:
            raise RuntimeError(f"benchmark party p{r} failed (see its traceback above)") from None
        p.join()
    out0, out1 = _read_ids(wd / "out0.csv"), _read_ids(wd / "out1.csv")
    correct = out0 == out1 and sorted(out0) == expected
    return max(i["seconds"] for i in infos), infos, correct, len(out0)


def run_threads(
    wd: Path, n: int, expected: list[str], workers: int | None
) -> tuple[float, list[dict[str, Any]], bool, int]:
    """As :func:`run_once`, both parties as threads of this process on the in-memory link."""
    parties = ("p0", "p1")
    hub = MemoryHub(parties)
    infos: dict[int, dict[str, Any]] = {}
    errors: list[BaseException] = []

    def party(rank: int) -> None:
        link = hub.link(parties[rank], timeout=600)
        try:
            res = align_file(
                link,
                f"bench/{n}",
                parties[rank],
                parties,
                wd / f"in{rank}.csv",
                "id",
                wd / f"out{rank}.csv",
                PsiOptions(workers=workers),
            )
            infos[rank] = res.summary()
        except BaseException as exc:  # re-raised below; the peer is woken by abort
            errors.append(exc)
            link.abort(repr(exc))

    threads = [threading.Thread(target=party, args=(r,)) for r in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    out0, out1 = _read_ids(wd / "out0.csv"), _read_ids(wd / "out1.csv")
    correct = out0 == out1 and sorted(out0) == expected
    return max(i["seconds"] for i in infos.values()), [infos[0], infos[1]], correct, len(out0)


def run(
    *,
    n: int = 1_000_000,
    overlap: float = 0.5,
    workers: int | None = None,
    repeats: int = 1,
    threads: bool = False,
) -> Iterator[dict[str, Any]]:
    """Yield one record (median over ``repeats``) for ``n`` ids per party."""
    inputs = anchor_inputs()
    ids_a, ids_b, _ = inputs.psi_sets(n, overlap)
    fp = inputs.bench_fingerprint(BENCH, n) if overlap == 0.5 else None
    common = inputs.psi_ids(n, overlap)[2]
    expected = [f"{x:016x}" for x in common.tolist()]
    with tempfile.TemporaryDirectory(prefix="veil-bench-psi-") as tmp:
        wd = Path(tmp)
        _write_ids(wd / "in0.csv", ids_a)
        _write_ids(wd / "in1.csv", ids_b)
        del ids_a, ids_b
        once = run_threads if threads else run_once
        runs = [once(wd, n, expected, workers) for _ in range(max(1, repeats))]
    seconds = [r[0] for r in runs]
    last = runs[-1][1]
    yield record(
        BENCH,
        IMPL,
        n,
        median(seconds),
        bytes_=sum(i["bytes_sent"] for i in last),
        rounds=None,
        correct=all(r[2] for r in runs),
        intersection=runs[-1][3],
        expected=len(expected),
        overlap=overlap,
        per_party_seconds=[round(i["seconds"], 3) for i in last],
        stage_seconds=[i["stage_seconds"] for i in last],
        cpu_seconds=(round(sum(i["cpu_seconds"] for i in last), 2) if not threads else None),
        runs_seconds=[round(s, 3) for s in seconds],
        peak_rss_mb=[round(i["peak_rss_mb"]) for i in last],
        peak_rss_worker_mb=[round(i["worker_peak_rss_mb"]) for i in last],
        workers=PsiOptions(workers=workers).n_workers(),
        parties_as=(
            "threads of one process on the memory link (peak_rss_mb: the whole process)"
            if threads
            else "two processes over a pipe link"
        ),
        curve="X25519",
        backend=sorted({i["backend"] for i in last}),
        inputs_sha256=fp,
    )


def main(argv: list[str] | None = None) -> None:
    """``python -m veil.bench.psi --n N``: print one JSON line."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=lambda v: int(float(v)), default=1_000_000)
    ap.add_argument("--overlap", type=float, default=0.5)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--threads", action="store_true", help="parties as threads, memory link")
    a = ap.parse_args(argv)
    kw = dict(n=a.n, overlap=a.overlap, workers=a.workers, repeats=a.repeats, threads=a.threads)
    for rec in run(**kw):
        emit(rec)


if __name__ == "__main__":
    main()

"""Run every party of a job on this machine: threads over memory, or processes over gRPC/mTLS.

``simulate(job, parties)`` runs each party in a thread of this process, linked in memory.
``simulate(job, parties, transport="grpc")`` runs each party as its own process — exactly what
``veil node`` runs at an institution — with a fresh cluster CA and per-party certificates, over
gRPC with mutual TLS on 127.0.0.1. The job code is the same in both.

If any party fails, the others are stopped promptly (the failing party's link tells its peers at
once) and :class:`veil.errors.PartyFailed` is raised naming the party whose failure started it,
with its traceback.

Output of the grpc workers: their stdout goes to the terminal (a job's ``print`` shows, as with
threads); their stderr (each node's own error line, warnings, logging, a crash's last words) goes
to ``<party>.log`` in the run's temporary folder, so a failure is reported once, by the caller.
A worker that dies without a result has the tail of its log in the error. ``VEIL_DEBUG=1``
leaves the workers' stderr on the terminal, live.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from veil.core import wire
from veil.errors import ConfigError, PartyFailed
from veil.runtime.config import write_config
from veil.runtime.context import Context
from veil.runtime.jobs import JobFn, PartyOutcome, ref_of, root_cause, run_party
from veil.runtime.ledger import AuditLedger
from veil.runtime.node import decode_outcome, make_budget
from veil.runtime.policy import RevealPolicy
from veil.transport.memory import MemoryHub
from veil.transport.ports import free_ports

Transport = Literal["memory", "grpc"]


@dataclass
class SimulationResult:
    """Everything a simulated job produced, per party."""

    results: dict[str, Any]
    stats: dict[str, dict[str, Any]] = field(default_factory=dict)
    ledgers: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    seconds: float = 0.0
    #: Parties outside ``required`` that failed, with their error (their result is ``None``).
    failed: dict[str, str] = field(default_factory=dict)


def simulate(
    job: JobFn,
    parties: Sequence[str],
    *,
    transport: Transport = "memory",
    params: Mapping[str, Any] | Mapping[str, Mapping[str, Any]] | None = None,
    per_party_params: bool = False,
    policy: RevealPolicy | None = None,
    seed: int = 0,
    timeout: float = 300.0,
    connect_timeout: float = 30.0,
    ledger_dir: Path | None = None,
    privacy_budget: tuple[float, float] | None = None,
    required: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Run ``job(ctx, **params)`` at every party and return ``{party: its return value}``.

    Parameters
    ----------
    job:
        ``job(ctx, **params)``. For ``transport="grpc"`` it must be a top-level function of an
        importable module or a file (it is re-imported in each party's process).
    parties:
        Party names (at least two).
    transport:
        ``"memory"`` (threads, in-memory links) or ``"grpc"`` (processes, mTLS on 127.0.0.1).
    params:
        Keyword arguments for the job: the same for every party, or, with
        ``per_party_params=True``, a mapping party → its own keyword arguments (e.g. its own
        input file). Values must be plain data (they travel with the safe codec).
    policy:
        Reveal policy every party enforces (default: allow what the job asks, record it).
    seed:
        Job seed for ``ctx.rng``.
    timeout:
        Longest wait for one message; a silent peer fails the job after this.
    connect_timeout:
        How long processes may take to find each other (grpc only).
    ledger_dir:
        If given, each party appends its audit ledger to ``ledger_dir/<party>.jsonl``.
    privacy_budget:
        ``(epsilon, delta)``: each party gets its own :class:`veil.dp.PrivacyBudget` capping
        the DP releases of its data (``ctx.reveal(..., dp=...)``).
    required:
        Parties whose failure fails the run (default: all). Others may fail — e.g. federated
        clients that drop out — and are listed in ``SimulationResult.failed``.
    """
    return simulate_detailed(
        job,
        parties,
        transport=transport,
        params=params,
        per_party_params=per_party_params,
        policy=policy,
        seed=seed,
        timeout=timeout,
        connect_timeout=connect_timeout,
        ledger_dir=ledger_dir,
        privacy_budget=privacy_budget,
        required=required,
    ).results


def simulate_detailed(
    job: JobFn,
    parties: Sequence[str],
    *,
    transport: Transport = "memory",
    params: Mapping[str, Any] | Mapping[str, Mapping[str, Any]] | None = None,
    per_party_params: bool = False,
    policy: RevealPolicy | None = None,
    seed: int = 0,
    timeout: float = 300.0,
    connect_timeout: float = 30.0,
    ledger_dir: Path | None = None,
    privacy_budget: tuple[float, float] | None = None,
    required: Sequence[str] | None = None,
) -> SimulationResult:
    """Like :func:`simulate`, also returning per-party link statistics and ledgers."""
    names = list(parties)
    if len(names) < 2 or len(set(names)) != len(names):
        raise ConfigError(f"simulate needs at least two distinct parties, got {names}")
    must = frozenset(names if required is None else required)
    if not must <= set(names):
        raise ConfigError(f"required parties {sorted(must - set(names))} are not in {names}")
    run = _Run(job, tuple(names), _split_params(names, params, per_party_params), policy, seed,
               timeout, connect_timeout, ledger_dir, privacy_budget, must)  # fmt: skip
    start = time.perf_counter()
    if transport == "memory":
        res = _run_threads(run)
    elif transport == "grpc":
        res = _run_processes(run)
    else:
        raise ConfigError(f"unknown transport {transport!r}: use 'memory' or 'grpc'")
    res.seconds = time.perf_counter() - start
    return res


@dataclass(frozen=True)
class _Run:
    """The settings of one simulated run, shared by both transports."""

    job: JobFn
    names: tuple[str, ...]
    params: dict[str, dict[str, Any]]
    policy: RevealPolicy | None
    seed: int
    timeout: float
    connect_timeout: float
    ledger_dir: Path | None
    privacy_budget: tuple[float, float] | None
    must: frozenset[str]

    def ledger_path(self, party: str) -> Path | None:
        return self.ledger_dir / f"{party}.jsonl" if self.ledger_dir is not None else None


def _split_params(
    names: list[str], params: Mapping[str, Any] | None, per_party: bool
) -> dict[str, dict[str, Any]]:
    if params is None:
        return {n: {} for n in names}
    if not per_party:
        return {n: dict(params) for n in names}
    unknown = set(params) - set(names)
    if unknown:
        raise ConfigError(f"params given for unknown parties {sorted(unknown)}")
    return {n: dict(params.get(n, {})) for n in names}


def _raise_on_failure(outcomes: Mapping[str, PartyOutcome], must: frozenset[str]) -> dict[str, str]:
    """Raise if a required party failed; return the tolerated failures."""
    if all(o.ok for n, o in outcomes.items() if n in must):
        return {n: f"{o.error_type}: {o.error}" for n, o in outcomes.items() if not o.ok}
    cause = root_cause(outcomes)
    if cause is not None:
        text = cause.traceback or f"{cause.error_type}: {cause.error}"
        others = [o.party for o in outcomes.values() if not o.ok and o.party != cause.party]
        if others:
            text += f"\n(then stopped: {', '.join(others)})"
        raise PartyFailed(cause.party, text, error_type=cause.error_type, error=cause.error)
    return {}


def _run_threads(run: _Run) -> SimulationResult:
    hub = MemoryHub(run.names)
    contexts = {
        n: Context(
            n,
            hub.link(n, timeout=run.timeout),
            policy=run.policy,
            ledger=AuditLedger(n, run.ledger_path(n)),
            seed=run.seed,
            budget=make_budget(run.privacy_budget),
        )
        for n in run.names
    }
    outcomes: dict[str, PartyOutcome] = {}

    def target(n: str) -> None:
        outcomes[n] = run_party(run.job, contexts[n], run.params[n])

    threads = [
        threading.Thread(target=target, args=(n,), name=f"veil-{n}", daemon=True) for n in run.names
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ordered = {n: outcomes[n] for n in run.names}
    failed = _raise_on_failure(ordered, run.must)
    return SimulationResult(
        results={n: o.result for n, o in ordered.items()},
        stats={n: c.stats() for n, c in contexts.items()},
        ledgers={n: c.ledger.entries() for n, c in contexts.items()},
        failed=failed,
    )


def local_cluster(
    names: Sequence[str],
    folder: Path,
    *,
    connect_timeout: float = 30.0,
    recv_timeout: float = 300.0,
    policy: RevealPolicy | None = None,
) -> Path:
    """Create certificates and a cluster config for ``names`` on 127.0.0.1 in ``folder``."""
    from veil.transport.certs import init_cluster

    tls = init_cluster(list(names), folder / "certs")
    ports = free_ports(len(names))
    config = folder / "cluster.toml"
    write_config(
        config,
        name="local",
        ca=tls[names[0]].ca_cert,
        parties=[
            (n, f"127.0.0.1:{port}", tls[n].cert, tls[n].key)
            for n, port in zip(names, ports, strict=True)
        ],
        connect_timeout=connect_timeout,
        recv_timeout=recv_timeout,
        policy=policy,
    )
    return config


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    paths = [p for p in sys.path if p and Path(p).exists()]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.setdefault("GRPC_VERBOSITY", "NONE")  # errors reach the user through veil's messages
    return env


def _run_processes(run: _Run) -> SimulationResult:
    ref = ref_of(run.job)
    with tempfile.TemporaryDirectory(prefix="veil-sim-") as tmp:
        folder = Path(tmp)
        config = local_cluster(run.names, folder, connect_timeout=run.connect_timeout,
                               recv_timeout=run.timeout, policy=run.policy)  # fmt: skip
        procs: dict[str, subprocess.Popen[bytes]] = {}
        env = _child_env()
        debug = bool(os.environ.get("VEIL_DEBUG"))
        for n in run.names:
            pfile = folder / f"{n}.params"
            pfile.write_bytes(wire.encode_value(run.params[n]))
            cmd = [
                sys.executable, "-m", "veil.runtime.worker",
                "--config", str(config), "--party", n, "--job", ref.spec(),
                "--params-file", str(pfile), "--result-file", str(folder / f"{n}.result"),
                "--seed", str(run.seed),
            ]  # fmt: skip
            if run.ledger_dir is not None:
                cmd += ["--ledger", str(run.ledger_path(n))]
            if run.privacy_budget is not None:
                eps, delta = run.privacy_budget
                cmd += ["--dp-epsilon", str(eps), "--dp-delta", str(delta)]
            procs[n] = _start_worker(cmd, env, None if debug else _log_path(folder, n))
        first, stopped = _wait_all(procs, run.must, grace=15.0)
        outcomes: dict[str, PartyOutcome] = {}
        stats: dict[str, dict[str, Any]] = {}
        ledgers: dict[str, list[dict[str, Any]]] = {}
        for n, p in procs.items():
            rfile = folder / f"{n}.result"
            if rfile.exists():
                outcomes[n], stats[n], ledgers[n] = decode_outcome(rfile.read_bytes())
            elif n in stopped:
                outcomes[n] = PartyOutcome(
                    n,
                    False,
                    error_type="Stopped",
                    error=f"stopped by the runner after {first!r} failed",
                    caused_by_peer=first,
                )
            else:
                outcomes[n] = PartyOutcome(
                    n,
                    False,
                    error_type="ProcessDied",
                    error=_died_message(p.returncode, None if debug else _log_path(folder, n)),
                )
    failed = _raise_on_failure(outcomes, run.must)
    return SimulationResult(
        results={n: o.result for n, o in outcomes.items()},
        stats=stats,
        ledgers=ledgers,
        failed=failed,
    )


def _log_path(folder: Path, party: str) -> Path:
    return folder / f"{party}.log"


def _start_worker(cmd: list[str], env: dict[str, str], log: Path | None) -> subprocess.Popen[bytes]:
    """Start one party's process; its stderr goes to ``log`` (a file: never blocks the worker,
    however much it writes), or to the terminal if ``log`` is None. Stdout is the terminal's."""
    if log is None:
        return subprocess.Popen(cmd, env=env)
    with log.open("wb") as err:  # the child holds its own copy of the descriptor
        return subprocess.Popen(cmd, env=env, stderr=err)


def _died_message(returncode: int | None, log: Path | None) -> str:
    """Why a worker left no result: its exit code or signal, and the tail of its stderr."""
    if returncode is not None and returncode < 0:
        try:
            how = f"process killed by {signal.Signals(-returncode).name}"
        except ValueError:
            how = f"process killed by signal {-returncode}"
    else:
        how = f"process exited with code {returncode}"
    text = f"{how} without a result"
    if log is None:
        return text + " (VEIL_DEBUG is set: its output is above)"
    tail = _log_tail(log)
    return f"{text}; the end of its output:\n{tail}" if tail else f"{text} (it printed nothing)"


def _log_tail(path: Path, *, lines: int = 20, max_bytes: int = 8192) -> str:
    """The last ``lines`` lines (at most ``max_bytes`` bytes) of a worker's log, "" if none."""
    try:
        with path.open("rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - max_bytes))
            data = f.read()
    except OSError:
        return ""
    text = data.decode("utf-8", errors="replace")
    kept = text.splitlines()
    if size > max_bytes and kept:
        kept = kept[1:]  # the first line was cut by the byte limit
    return "\n".join(kept[-lines:]).strip("\n")


def _wait_all(
    procs: Mapping[str, subprocess.Popen[bytes]], must: frozenset[str], *, grace: float
) -> tuple[str | None, set[str]]:
    """Wait for every process; once a required one fails, give the rest ``grace`` seconds,
    then kill them. Returns the first required party seen failing and the parties killed."""
    deadline: float | None = None
    first: str | None = None
    while True:
        running = {n: p for n, p in procs.items() if p.poll() is None}
        if first is None:
            first = next(
                (n for n, p in procs.items() if n in must and p.returncode not in (None, 0)), None
            )
            if first is not None:
                deadline = time.monotonic() + grace
        if not running:
            return first, set()
        if deadline is not None and time.monotonic() > deadline:
            for p in running.values():
                p.kill()
            for p in running.values():
                p.wait()
            return first, set(running)
        time.sleep(0.02)

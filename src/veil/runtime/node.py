"""One party's process: what ``veil node`` runs at each institution.

:func:`run_node` connects this party to its peers over gRPC with mutual TLS (addresses and
certificates from the cluster config), runs the job and returns its outcome. ``python -m
veil.runtime.node`` is the process entry point used by ``veil.simulate(..., transport="grpc")``;
it writes the outcome to a result file atomically so a crashed party never leaves a result that
looks complete.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from veil.core import wire
from veil.errors import PeerError, ProtocolError, VeilError
from veil.runtime.config import ClusterConfig, load_config
from veil.runtime.context import Context
from veil.runtime.jobs import JobFn, PartyOutcome, load_job, parse_job_ref, run_party
from veil.runtime.ledger import AuditLedger
from veil.runtime.policy import RevealPolicy


def make_budget(limit: tuple[float, float] | None) -> Any:
    """A :class:`veil.dp.PrivacyBudget` for ``(epsilon, delta)``, or ``None``."""
    if limit is None:
        return None
    from veil.dp import PrivacyBudget  # dp sits above the runtime

    return PrivacyBudget(epsilon=limit[0], delta=limit[1])


def connect(config: ClusterConfig, party: str) -> Any:
    """Open ``party``'s gRPC/mTLS link to the cluster (binds its server, dials its peers) and
    wait until every stream is open: a start barrier, so a party that dies once the job has begun
    is noticed by the others at once rather than after the connect timeout."""
    from veil.transport.certs import TlsFiles
    from veil.transport.grpc_link import GrpcLink, GrpcOptions

    config.check_files(party)
    me = config.party(party)
    assert me.key is not None
    addresses = {p.name: (p.host, p.port) for p in config.parties.values()}
    link = GrpcLink(
        party,
        addresses,
        TlsFiles(ca_cert=config.ca, cert=me.cert, key=me.key),
        GrpcOptions(
            connect_timeout=config.connect_timeout,
            recv_timeout=config.recv_timeout,
            keepalive_seconds=config.keepalive,
            keepalive_timeout=config.keepalive_timeout,
            dead_after=config.dead_after,
        ),
    )
    try:
        link.wait_ready()
    except BaseException as exc:
        link.abort(f"{type(exc).__name__}: {exc}")
        raise
    return link


def run_node(
    config: ClusterConfig,
    party: str,
    job: JobFn,
    params: Mapping[str, Any] | None = None,
    *,
    seed: int = 0,
    ledger_path: Path | None = None,
    policy: RevealPolicy | None = None,
    job_id: str = "job",
    privacy_budget: tuple[float, float] | None = None,
) -> tuple[PartyOutcome, dict[str, Any], list[dict[str, Any]]]:
    """Run one party of ``job``; return its outcome, its link statistics and its ledger."""
    link = connect(config, party)
    ctx = Context(
        party,
        link,
        policy=policy or config.policy,
        ledger=AuditLedger(party, ledger_path),
        seed=seed,
        job_id=job_id,
        budget=make_budget(privacy_budget),
    )
    outcome = run_party(job, ctx, params)
    return outcome, ctx.stats(), ctx.ledger.entries()


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and a rename (all or nothing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def encode_outcome(
    outcome: PartyOutcome, stats: Mapping[str, Any], ledger: list[dict[str, Any]]
) -> bytes:
    """Serialise an outcome with the safe codec; a result that cannot travel becomes an error."""
    body = {"outcome": asdict(outcome), "stats": dict(stats), "ledger": ledger}
    try:
        return wire.encode_value(body)
    except ProtocolError as exc:
        failed = PartyOutcome(
            outcome.party,
            False,
            error_type="ProtocolError",
            error=f"the job's return value cannot be sent back to the caller: {exc}",
        )
        return wire.encode_value({"outcome": asdict(failed), "stats": dict(stats), "ledger": []})


def decode_outcome(data: bytes) -> tuple[PartyOutcome, dict[str, Any], list[dict[str, Any]]]:
    """Inverse of :func:`encode_outcome`."""
    body = wire.decode_value(data)
    return PartyOutcome(**body["outcome"]), body["stats"], body["ledger"]


def main(argv: list[str] | None = None) -> int:
    """Process entry point (internal; users run ``veil node``)."""
    ap = argparse.ArgumentParser(prog="python -m veil.runtime.worker")
    ap.add_argument("--config", required=True, type=Path)
    ap.add_argument("--party", required=True)
    ap.add_argument("--job", required=True)
    ap.add_argument("--params-file", type=Path)
    ap.add_argument("--result-file", required=True, type=Path)
    ap.add_argument("--ledger", type=Path)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--job-id", default="job")
    ap.add_argument("--dp-epsilon", type=float)
    ap.add_argument("--dp-delta", type=float, default=0.0)
    args = ap.parse_args(argv)
    try:
        config = load_config(args.config)
        config.party(args.party)
        params = wire.decode_value(args.params_file.read_bytes()) if args.params_file else {}
        job = load_job(parse_job_ref(args.job))
        outcome, stats, ledger = run_node(
            config,
            args.party,
            job,
            params,
            seed=args.seed,
            ledger_path=args.ledger,
            job_id=args.job_id,
            privacy_budget=None if args.dp_epsilon is None else (args.dp_epsilon, args.dp_delta),
        )
    except VeilError as exc:
        outcome = PartyOutcome(
            args.party,
            False,
            error_type=type(exc).__name__,
            error=str(exc),
            caused_by_peer=exc.party if isinstance(exc, PeerError) else None,  # e.g. at start
        )
        stats, ledger = {}, []
    except Exception as exc:  # a broken job file: report it like a job failure
        import traceback

        outcome = PartyOutcome(
            args.party,
            False,
            error_type=type(exc).__name__,
            error=str(exc),
            traceback="".join(traceback.format_exception(exc)),
        )
        stats, ledger = {}, []
    write_atomic(args.result_file, encode_outcome(outcome, stats, ledger))
    if not outcome.ok:
        print(f"veil node {args.party}: {outcome.error_type}: {outcome.error}", file=sys.stderr)
        if os.environ.get("VEIL_DEBUG") and outcome.traceback:
            print(outcome.traceback, file=sys.stderr)
    return 0 if outcome.ok else 1


__all__ = ["connect", "main", "run_node", "write_atomic"]

"""SPMD jobs the gRPC end-to-end test runs as separate processes (importable by path)."""

from __future__ import annotations

from typing import Any

import numpy as np

from veil.fl.secagg import GraphKind, SecAggClient, SecAggConfig, run_aggregator, secure_sum
from veil.fl.secagg.messages import ForwardedShares, KeyDirectory, decode_message, encode_message

CFG = SecAggConfig(graph=GraphKind.COMPLETE, phase_timeout=30, client_timeout=90)


def vector_of(party: str, dim: int) -> np.ndarray:
    """Each client's deterministic update (the test recomputes it as the oracle)."""
    seed = int.from_bytes(party.encode(), "little") % 2**32
    return np.random.default_rng(seed).normal(size=dim) * 0.01


def _leave_after_shares(ctx: Any, key: str, clients: list[str], v: np.ndarray) -> str:
    """Advertise keys and share them, then leave the job (the process ends, its link closes)."""
    sm = SecAggClient(ctx.party, clients, CFG, round_id=key, vector=v)
    ctx.link.send_bytes("agg", f"{key}/secagg/0/up", encode_message(sm.advertise_keys()))
    raw = ctx.link.recv_bytes("agg", f"{key}/secagg/0/down")
    d = decode_message(raw, KeyDirectory, max_bytes=1 << 20)
    assert isinstance(d, KeyDirectory)
    ctx.link.send_bytes("agg", f"{key}/secagg/1/up", encode_message(sm.share_keys(d)))
    raw = ctx.link.recv_bytes("agg", f"{key}/secagg/1/down")
    assert isinstance(decode_message(raw, ForwardedShares, max_bytes=1 << 20), ForwardedShares)
    return "left"


def secure_sum_job(
    ctx: Any,
    dim: int = 64,
    leave_early: tuple[str, ...] = (),
    leave_after_shares: tuple[str, ...] = (),
) -> Any:
    clients = [p for p in ctx.cluster if p != "agg"]
    key = ctx.next_key("secagg")
    if ctx.party == "agg":
        r = run_aggregator(ctx.link, key, "agg", clients, CFG)
        return {
            "total": r.total.tolist(),
            "survivors": list(r.survivors),
            "dropped": sorted(r.dropped),
        }
    v = vector_of(ctx.party, dim)
    if ctx.party in leave_early:
        return "left"
    if ctx.party in leave_after_shares:
        return _leave_after_shares(ctx, key, clients, v)
    out = secure_sum(ctx.link, key, ctx.party, "agg", clients, v, CFG)
    return out

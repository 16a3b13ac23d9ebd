"""Run a whole SecAgg+ round in one process by piping the state machines into each other.

Used by the benchmark and the tests. Every message goes through :func:`encode_message` and
:func:`decode_message` exactly as on a link, so byte counts are those of the wire, and time is
measured per role. Dropouts are injected per phase: a client listed in ``drop[p]`` sends nothing
from phase ``p`` on (0 keys, 1 shares, 2 masked input, 3 unmasking shares).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from veil.errors import VeilError
from veil.fl.secagg.aggregator import SecAggAggregator, SecAggResult
from veil.fl.secagg.client import SHARE_LEN, SecAggClient
from veil.fl.secagg.config import SecAggConfig
from veil.fl.secagg.messages import (
    Abort,
    AdvertiseKeys,
    EncryptedShares,
    ForwardedShares,
    KeyDirectory,
    MaskedInput,
    Message,
    RoundOutcome,
    UnmaskRequest,
    UnmaskResponse,
    decode_message,
    encode_message,
)


@dataclass
class Costs:
    """Seconds of compute and bytes on the wire of one role in one round."""

    seconds: float = 0.0
    bytes_sent: int = 0
    bytes_recv: int = 0


@dataclass
class LocalRound:
    """Outcome of :func:`run_round`: the result (or the error) and each role's costs."""

    result: SecAggResult | None
    error: VeilError | None
    clients: dict[str, SecAggClient]
    client_costs: dict[str, Costs] = field(default_factory=dict)
    aggregator_costs: Costs = field(default_factory=Costs)
    client_errors: dict[str, VeilError] = field(default_factory=dict)


def run_round(
    vectors: Mapping[str, np.ndarray[Any, Any]],
    config: SecAggConfig,
    *,
    round_id: str = "round-0",
    weights: Mapping[str, float] | None = None,
    drop: Mapping[int, Sequence[str]] | None = None,
    randbytes: Callable[[int], bytes] = os.urandom,
    tamper: Callable[[int, str, Message], Message] | None = None,
) -> LocalRound:
    """Run one round for ``vectors`` (client name -> float vector), in the given client order.

    ``tamper(phase, client, msg)`` may replace an upward message (tests of a misbehaving client).
    A client whose state machine raises sends an :class:`Abort` and leaves, as over a link.
    """
    names = list(vectors)
    drops = {p: set(v) for p, v in (drop or {}).items()}
    out = LocalRound(None, None, {}, {c: Costs() for c in names}, Costs())
    costs, agg = out.client_costs, out.aggregator_costs
    active = set(names)
    for c in names:
        t0 = time.perf_counter()
        try:
            out.clients[c] = SecAggClient(
                c,
                names,
                config,
                round_id=round_id,
                vector=vectors[c],
                weight=None if weights is None else weights[c],
                randbytes=randbytes,
            )
        except VeilError as exc:
            out.client_errors[c] = exc
        costs[c].seconds += time.perf_counter() - t0
    t0 = time.perf_counter()
    aggregator = SecAggAggregator(names, config, round_id=round_id)
    agg.seconds += time.perf_counter() - t0

    inner = [0.0]  # client seconds spent while an aggregator step pulls from a generator

    def run_client(c: str, fn: Callable[[], Message]) -> Message:
        t0 = time.perf_counter()
        try:
            return fn()
        except VeilError as exc:  # the client gives up and tells the aggregator why
            out.client_errors[c] = exc
            active.discard(c)
            return Abort(str(exc))
        finally:
            dt = time.perf_counter() - t0
            costs[c].seconds += dt
            inner[0] += dt

    def up(
        phase: int, make: Callable[[SecAggClient], Message], kind: type
    ) -> Iterator[tuple[str, Any]]:
        """Each live client's message, encoded and decoded as on the wire (lazily)."""
        active.difference_update(drops.get(phase, ()))
        for c in names:
            if c not in active:
                continue
            if c not in out.clients:  # construction failed: report it and leave
                active.discard(c)
                msg: Message = Abort(str(out.client_errors[c]))
            else:
                msg = run_client(c, lambda c=c: make(out.clients[c]))  # type: ignore[misc]
            if tamper is not None:
                msg = tamper(phase, c, msg)
            t0 = time.perf_counter()
            raw = encode_message(msg)  # the client's serialisation: its cost, not the aggregator's
            del msg
            dt = time.perf_counter() - t0
            costs[c].seconds += dt
            inner[0] += dt
            costs[c].bytes_sent += len(raw)
            agg.bytes_recv += len(raw)
            try:
                got = decode_message(
                    raw, kind, max_bytes=aggregator.message_limit(phase), share_len=SHARE_LEN
                )
            except VeilError as exc:
                aggregator.exclude(c, f"malformed message in phase {phase}: {exc}")
                continue
            yield c, got

    def down(replies: Mapping[str, Message], kind: type) -> dict[str, Any]:
        got: dict[str, Any] = {}
        for c, msg in replies.items():
            t0 = time.perf_counter()
            raw = encode_message(msg)
            agg.seconds += time.perf_counter() - t0
            agg.bytes_sent += len(raw)
            if c not in active:
                continue
            costs[c].bytes_recv += len(raw)
            t0 = time.perf_counter()
            got[c] = decode_message(raw, kind, max_bytes=1 << 31, share_len=SHARE_LEN)
            costs[c].seconds += time.perf_counter() - t0
        active.intersection_update(got)
        return got

    def step(fn: Callable[[], Any]) -> Any:
        t0, before = time.perf_counter(), inner[0]
        try:
            return fn()
        finally:
            agg.seconds += time.perf_counter() - t0 - (inner[0] - before)

    try:
        # the generators run inside step(): decoding counts for the aggregator, client work not
        keys = up(0, lambda cl: cl.advertise_keys(), AdvertiseKeys)
        dirs = down(step(lambda: aggregator.receive_keys(dict(keys))), KeyDirectory)
        shares = up(1, lambda cl: cl.share_keys(dirs[cl.party]), EncryptedShares)
        fwd = down(step(lambda: aggregator.receive_shares(dict(shares))), ForwardedShares)
        masked = up(2, lambda cl: cl.masked_input(fwd[cl.party]), MaskedInput)  # streamed
        reqs = down(step(lambda: aggregator.receive_masked(masked)), UnmaskRequest)
        resp = up(3, lambda cl: cl.unmask(reqs[cl.party]), UnmaskResponse)
        result, outcomes = step(lambda: aggregator.receive_unmask(dict(resp)))
        for c, o in down(outcomes, RoundOutcome).items():
            t0 = time.perf_counter()
            out.clients[c].finish(o)
            costs[c].seconds += time.perf_counter() - t0
    except VeilError as exc:
        out.error = exc
        return out
    out.result = result
    return out

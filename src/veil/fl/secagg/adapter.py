"""Run the SecAgg+ state machines over a :class:`~veil.transport.base.Link`.

The aggregator is one party of the cluster; the clients talk only to it (a star), under the
keys ``{key_prefix}/secagg/{phase}/up`` (client -> aggregator) and ``.../down``. In each phase
the aggregator waits at most ``config.phase_timeout`` seconds in total; a client that has not
sent by then, whose link reports it gone (:class:`~veil.errors.PeerError`), or whose message is
malformed or oversized is dropped from the round (and named in the result). Clients that the
aggregator no longer needs, and every client when the round fails, receive an ``Abort`` so they
stop waiting at once.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from veil.errors import ConfigError, PeerError, ProtocolError, VeilError
from veil.fl.secagg.aggregator import SecAggAborted, SecAggAggregator, SecAggResult
from veil.fl.secagg.client import SHARE_LEN, SecAggClient
from veil.fl.secagg.config import SecAggConfig
from veil.fl.secagg.messages import (
    Abort,
    AdvertiseKeys,
    EncryptedShares,
    ForwardedShares,
    KeyDirectory,
    M,
    MaskedInput,
    Message,
    RoundOutcome,
    UnmaskRequest,
    UnmaskResponse,
    decode_message,
    encode_message,
)
from veil.transport.base import Link


def _key(prefix: str, phase: int, direction: str) -> str:
    return f"{prefix}/secagg/{phase}/{direction}"


def secure_sum(
    link: Link,
    key_prefix: str,
    party: str,
    aggregator: str,
    clients: Sequence[str],
    vector: np.ndarray[Any, Any] | None,
    config: SecAggConfig,
    *,
    weight: float | None = None,
) -> np.ndarray | None:
    """Securely sum the clients' vectors at ``aggregator`` (every party calls this).

    Parameters
    ----------
    link, key_prefix:
        This party's link and a prefix unique to this round (same at every party).
    party, aggregator, clients:
        This party, the aggregating party, and the clients in one agreed order.
    vector:
        A client's float update (clipped to ``config.clip``); ``None`` at the aggregator.
    weight:
        A client's weight when ``config.max_weight`` is set.

    Returns
    -------
    At the aggregator, the decoded sum of the surviving clients' (weighted) clipped vectors (use
    :func:`run_aggregator` for the survivors, dropouts and the weights' sum). At a client,
    ``None``, or the same sum when ``config.broadcast_sum`` is set.

    Raises
    ------
    SecAggAborted
        Too few clients remained to finish; nothing was revealed.
    """
    if party == aggregator:
        if vector is not None:
            raise ConfigError(f"the aggregator {aggregator!r} must pass vector=None")
        return run_aggregator(link, key_prefix, aggregator, clients, config).total
    if vector is None:
        raise ConfigError(f"client {party!r} must pass its vector to secure_sum")
    return run_client(link, key_prefix, party, aggregator, clients, vector, config, weight=weight)


def run_aggregator(
    link: Link,
    key_prefix: str,
    aggregator: str,
    clients: Sequence[str],
    config: SecAggConfig,
    *,
    dim: int | None = None,
) -> SecAggResult:
    """The aggregator's side of :func:`secure_sum`; returns the full :class:`SecAggResult`."""
    if link.party != aggregator or aggregator in clients:
        raise ConfigError(
            f"run_aggregator must run at the aggregator {aggregator!r} (this is {link.party!r}), "
            "which must not be one of the clients"
        )
    sm = SecAggAggregator(clients, config, round_id=key_prefix, dim=dim)
    told: set[str] = set()

    def gather(phase: int, kind: type[M], who: Sequence[str]) -> Iterator[tuple[str, M | Abort]]:
        key = _key(key_prefix, phase, "up")
        deadline = time.monotonic() + config.phase_timeout
        room = sm.message_limit(phase)
        for c in who:
            try:
                raw = link.recv_bytes(c, key, timeout=max(deadline - time.monotonic(), 1e-3))
            except PeerError as exc:
                sm.dropped.setdefault(c, f"dropped out in phase {phase}: {exc}")
                continue
            try:
                msg = decode_message(raw, kind, max_bytes=room, share_len=SHARE_LEN)
            except ProtocolError as exc:
                sm.exclude(c, f"malformed message in phase {phase}: {exc}")
                continue
            yield c, msg

    def send(phase: int, replies: dict[str, Message], before: Sequence[str], why: str) -> None:
        key = _key(key_prefix, phase, "down")
        for c in before:
            msg = replies.get(c)
            if msg is None:
                told.add(c)
                msg = Abort(f"{c!r} is out of the round: {sm.dropped.get(c, why)}")
            try:
                link.send_bytes(c, key, encode_message(msg))
            except VeilError:
                sm.dropped.setdefault(c, f"unreachable in phase {phase}")

    phase = 0
    try:
        before = sm.expected
        dirs = sm.receive_keys(dict(gather(0, AdvertiseKeys, before)))
        send(0, dict(dirs), before, "dropped")
        phase, before = 1, sm.expected
        fwd = sm.receive_shares(dict(gather(1, EncryptedShares, before)))
        send(1, dict(fwd), before, "dropped")
        phase, before = 2, sm.expected
        reqs = sm.receive_masked(gather(2, MaskedInput, before))
        send(2, dict(reqs), before, "dropped")
        phase, before = 3, sm.expected
        result, outcomes = sm.receive_unmask(dict(gather(3, UnmaskResponse, before)))
        send(3, dict(outcomes), before, "dropped")
        return result
    except VeilError as exc:
        abort = encode_message(Abort(f"the aggregator aborted the round: {exc}"))
        for c in sm.plan.clients:
            if c not in told:
                with contextlib.suppress(VeilError):
                    link.send_bytes(c, _key(key_prefix, phase, "down"), abort)
        raise


def run_client(
    link: Link,
    key_prefix: str,
    party: str,
    aggregator: str,
    clients: Sequence[str],
    vector: np.ndarray[Any, Any],
    config: SecAggConfig,
    *,
    weight: float | None = None,
    randbytes: Callable[[int], bytes] = os.urandom,
) -> np.ndarray | None:
    """A client's side of :func:`secure_sum`.

    Raises the client's own error (e.g. :class:`~veil.errors.DataError` for NaN/Inf) after
    telling the aggregator, :class:`SecAggAborted` if the aggregator aborted, and
    :class:`~veil.errors.PeerError` if the aggregator went silent.
    """
    if link.party != party:
        raise ConfigError(f"run_client for {party!r} called on the link of {link.party!r}")
    phase = 0

    def tell(exc: VeilError) -> None:
        with contextlib.suppress(VeilError):
            link.send_bytes(
                aggregator, _key(key_prefix, phase, "up"), encode_message(Abort(str(exc)))
            )

    def exchange(msg: Message, kind: type[M]) -> M:
        link.send_bytes(aggregator, _key(key_prefix, phase, "up"), encode_message(msg))
        raw = link.recv_bytes(
            aggregator, _key(key_prefix, phase, "down"), timeout=config.client_timeout
        )
        reply = decode_message(raw, kind, max_bytes=1 << 31, share_len=SHARE_LEN)
        if isinstance(reply, Abort):
            raise SecAggAborted(f"client {party!r}: {reply.reason}")
        return reply

    try:
        sm = SecAggClient(
            party,
            clients,
            config,
            round_id=key_prefix,
            vector=vector,
            weight=weight,
            randbytes=randbytes,
        )
    except VeilError as exc:
        tell(exc)
        raise
    try:
        d = exchange(sm.advertise_keys(), KeyDirectory)
        phase = 1
        f = exchange(sm.share_keys(d), ForwardedShares)
        phase = 2
        r = exchange(sm.masked_input(f), UnmaskRequest)
        phase = 3
        o = exchange(sm.unmask(r), RoundOutcome)
        return sm.finish(o)
    except SecAggAborted:
        raise
    except VeilError as exc:
        if not isinstance(exc, PeerError) or exc.party != aggregator:
            tell(exc)
        raise

"""One party's inbox on a networked link: messages received, by (sender, key), and peer states.

The gRPC server threads :meth:`Inbox.put` complete messages here; the party's own threads
:meth:`Inbox.get` them. The inbox also remembers, per peer, whether its stream has connected and
why it is gone (closed cleanly, failed, died, sent garbage) so every blocked and future receive
from a dead peer fails at once with that reason, after the messages that did arrive are drained.
It also keeps, per peer, when the peer was last seen up (its connection check or stream reached
our server, or our side reached its server): the outbound stream uses that to tell a peer that
died from one that is still starting (see :mod:`veil.transport.grpc_client`).

Memory is bounded per peer: bytes of messages received but not yet taken (plus a message being
reassembled) may not exceed ``max_pending_bytes``; :meth:`Inbox.reserve` refuses beyond that.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from collections.abc import Sequence
from typing import Any

from veil.errors import PeerError
from veil.transport.frames import FrameError

#: Why a peer that ended its stream with GOODBYE is gone.
CLOSED = "closed its link (finished its job)"


class Inbox:
    """Thread-safe mailbox of one party (see module docstring).

    Parameters
    ----------
    peers:
        Names of the peers that may deliver here.
    default_timeout:
        Seconds :meth:`get` waits when called with ``timeout=None``.
    max_pending_bytes:
        Per-peer cap on bytes received but not yet taken.
    connect_deadline:
        ``time.monotonic()`` instant by which every peer must have connected; a receive from a
        peer that has not connected by then fails with "did not connect".
    connect_timeout:
        The timeout that deadline came from (for messages).
    """

    def __init__(
        self,
        peers: Sequence[str],
        *,
        default_timeout: float,
        max_pending_bytes: int,
        connect_deadline: float,
        connect_timeout: float,
    ) -> None:
        self._cond = threading.Condition()
        self._queues: dict[tuple[str, str], deque[tuple[Any, int]]] = defaultdict(deque)
        self._gone: dict[str, str] = {}
        self._connected: set[str] = set()
        self._seen: dict[str, float] = {}
        self._pending = dict.fromkeys(peers, 0)
        self._aborted: str | None = None
        self._peers = tuple(peers)
        self.default_timeout = default_timeout
        self.max_pending_bytes = max_pending_bytes
        self.connect_deadline = connect_deadline
        self.connect_timeout = connect_timeout

    # ------------------------------------------------------------------ server side
    def connect(self, peer: str) -> str | None:
        """Register ``peer``'s inbound stream; return why it is refused, or ``None`` if accepted."""
        with self._cond:
            if peer in self._gone:
                return f"{peer!r} is already disconnected ({self._gone[peer]}); restart the job"
            if peer in self._connected:
                return f"a stream from {peer!r} is already open; a party connects only once"
            self._connected.add(peer)
            self._seen[peer] = time.monotonic()
            self._cond.notify_all()
            return None

    def seen_alive(self, peer: str, at: float | None = None) -> None:
        """Record evidence that ``peer``'s process was up at ``at`` (default: now)."""
        when = time.monotonic() if at is None else at
        with self._cond:
            if when > self._seen.get(peer, float("-inf")):
                self._seen[peer] = when

    def last_seen(self, peer: str) -> float | None:
        """``time.monotonic()`` instant ``peer`` was last seen up, or ``None`` if never."""
        with self._cond:
            return self._seen.get(peer)

    def reserve(self, peer: str, nbytes: int) -> None:
        """Count ``nbytes`` more pending bytes from ``peer``; raise :class:`FrameError` if over."""
        with self._cond:
            now = self._pending[peer]
            if now + nbytes > self.max_pending_bytes:
                raise FrameError(
                    f"message of {nbytes} bytes would exceed the receive buffer of "
                    f"{self.max_pending_bytes} bytes ({now} bytes already waiting to be read; "
                    "raise max_pending_bytes or read messages sooner)"
                )
            self._pending[peer] = now + nbytes

    def release(self, peer: str, nbytes: int) -> None:
        """Give back ``nbytes`` reserved for a message that will never be delivered."""
        with self._cond:
            self._pending[peer] -= nbytes

    def put(self, peer: str, key: str, item: Any, nbytes: int) -> None:
        """Deliver a complete message (its bytes were reserved already)."""
        with self._cond:
            self._queues[(peer, key)].append((item, nbytes))
            self._cond.notify_all()

    def mark_gone(self, peer: str, reason: str) -> bool:
        """Record why ``peer`` is gone (the first reason wins); return whether this one was new."""
        with self._cond:
            if peer in self._gone:
                return False
            self._gone[peer] = reason
            self._cond.notify_all()
            return True

    def abort(self, reason: str) -> None:
        """Wake every local receiver with an error (this party is failing)."""
        with self._cond:
            if self._aborted is None:
                self._aborted = reason
            self._cond.notify_all()

    # ------------------------------------------------------------------- party side
    def gone_reason(self, peer: str) -> str | None:
        """Why ``peer`` is gone, or ``None`` while it is (or may still become) connected."""
        with self._cond:
            return self._gone.get(peer)

    def is_connected(self, peer: str) -> bool:
        """Whether ``peer``'s stream has connected (it may have gone since)."""
        with self._cond:
            return peer in self._connected

    def get(self, peer: str, key: str, timeout: float | None) -> tuple[Any, int]:
        """Take the next message from ``peer`` under ``key``; return ``(item, nbytes)``.

        Raises
        ------
        PeerError
            On timeout (naming the key), when ``peer`` is gone and nothing is left under
            ``key``, when it never connected within the connect timeout, or on local abort.
        """
        wait = self.default_timeout if timeout is None else timeout
        deadline = time.monotonic() + wait
        with self._cond:
            while True:
                q = self._queues.get((peer, key))
                if q:
                    item, nbytes = q.popleft()
                    if not q:
                        del self._queues[(peer, key)]
                    self._pending[peer] -= nbytes
                    return item, nbytes
                if self._aborted is not None:
                    raise PeerError(peer, f"receive aborted: {self._aborted}")
                if peer in self._gone:
                    raise PeerError(peer, self._gone[peer])
                now = time.monotonic()
                if peer not in self._connected and now >= self.connect_deadline:
                    reason = (
                        f"did not connect to us within {self.connect_timeout:g} s (is it "
                        "running, with this cluster's certificates and addresses?)"
                    )
                    self._gone[peer] = reason
                    raise PeerError(peer, reason)
                left = deadline - now
                if left <= 0:
                    why = f"no message under key {key!r} within {wait:g} s (timeout)"
                    if peer not in self._connected:
                        why += (
                            "; it has not connected to us yet (still starting, or it died "
                            "before we ever saw it up)"
                        )
                    raise PeerError(peer, why)
                if peer not in self._connected:
                    left = min(left, max(self.connect_deadline - now, 0.0) + 1e-3)
                self._cond.wait(left)

    def has_connected(self, peer: str) -> bool:
        """Whether ``peer`` has reached us (it started; it may have finished or failed since)."""
        with self._cond:
            return peer in self._connected

    def wait_connected(self, deadline: float) -> tuple[str, str] | None:
        """Block until every peer has connected; return ``(peer, why)`` of a failure, else ``None``.

        A failure is a peer that is gone without ever having connected, or one still missing
        when ``deadline`` passes. A peer that connected and has since finished or failed counts
        as connected: it started its job, and this party starts its own (a later exchange with
        that peer fails at once with the recorded reason, so nothing waits for it).
        """
        with self._cond:
            while True:
                for p in self._peers:
                    if p in self._gone and p not in self._connected:
                        return p, self._gone[p]
                missing = [p for p in self._peers if p not in self._connected]
                if not missing:
                    return None
                left = deadline - time.monotonic()
                if left <= 0:
                    return missing[0], "has not connected to us yet"
                self._cond.wait(left)


__all__ = ["CLOSED", "Inbox"]

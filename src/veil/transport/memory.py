"""In-memory links between threads of one process: the test twin of the gRPC link.

A :class:`MemoryHub` holds one mailbox per party; :meth:`MemoryHub.link` gives each party its
:class:`MemoryLink`. Arrays are copied on send (the receiver can never alias the sender's
memory) and counted as header + payload bytes, exactly what the gRPC link puts on the wire, so
cost accounting is the same on both transports.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from collections.abc import Sequence
from typing import Any

import numpy as np

from veil.core import wire
from veil.errors import ConfigError, PeerError
from veil.transport.base import Link

DEFAULT_TIMEOUT = 60.0


class _Mailbox:
    """Messages waiting for one party, by (sender, key)."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.queues: dict[tuple[str, str], deque[Any]] = defaultdict(deque)
        self.gone: dict[str, str] = {}  # peer -> why it is gone
        self.aborted: str | None = None


class MemoryHub:
    """Shared state of one in-memory cluster (create one per simulated job)."""

    def __init__(self, parties: Sequence[str]) -> None:
        self.parties = tuple(parties)
        self._boxes = {p: _Mailbox() for p in self.parties}

    def link(self, party: str, *, timeout: float = DEFAULT_TIMEOUT) -> MemoryLink:
        """The link of ``party`` into this hub."""
        if party not in self._boxes:
            raise ConfigError(f"party {party!r} is not in the cluster {list(self.parties)}")
        return MemoryLink(self, party, timeout=timeout)

    def _box(self, party: str) -> _Mailbox:
        return self._boxes[party]


class MemoryLink(Link):
    """One party's view of a :class:`MemoryHub`."""

    def __init__(self, hub: MemoryHub, party: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        super().__init__(party, hub.parties)
        self._hub = hub
        self.timeout = timeout
        self._closed = False

    def _put(self, to: str, key: str, item: Any, nbytes: int) -> None:
        self._check_peer(to)
        self._check_key(key)
        box = self._hub._box(to)
        with box.cond:
            box.queues[(self.party, key)].append((item, nbytes))
            box.cond.notify_all()
        self._counters.sent(to, nbytes)

    def _get(self, frm: str, key: str, timeout: float | None) -> Any:
        self._check_peer(frm)
        box = self._hub._box(self.party)
        wait = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + wait
        with box.cond:
            while True:
                q = box.queues.get((frm, key))
                if q:
                    item, nbytes = q.popleft()
                    if not q:
                        del box.queues[(frm, key)]
                    break
                if box.aborted is not None:
                    raise PeerError(frm, f"receive aborted: {box.aborted}")
                if frm in box.gone:
                    raise PeerError(frm, box.gone[frm])
                left = deadline - time.monotonic()
                if left <= 0:
                    raise PeerError(
                        frm, f"no message under key {key!r} within {wait:g} s (timeout)"
                    )
                box.cond.wait(left)
        self._counters.received(frm, nbytes)
        return item

    def send_bytes(self, to: str, key: str, data: bytes | bytearray | memoryview) -> None:
        payload = bytes(data)
        self._put(to, key, payload, len(payload))

    def recv_bytes(self, frm: str, key: str, timeout: float | None = None) -> bytes:
        item = self._get(frm, key, timeout)
        if not isinstance(item, bytes):
            raise PeerError(frm, f"expected bytes under key {key!r}, got an array")
        return item

    def send_array(self, to: str, key: str, arr: np.ndarray[Any, Any]) -> None:
        a = wire.as_wire_array(arr)
        header = wire.array_header(a)  # validates dtype: same refusals as on the wire
        self._put(to, key, a.copy(), len(header) + a.nbytes)

    def recv_array(self, frm: str, key: str, timeout: float | None = None) -> np.ndarray[Any, Any]:
        item = self._get(frm, key, timeout)
        if not isinstance(item, np.ndarray):
            raise PeerError(frm, f"expected an array under key {key!r}, got bytes")
        return item

    def _tell_peers(self, why: str) -> None:
        for p in self.peers:
            box = self._hub._box(p)
            with box.cond:
                box.gone.setdefault(self.party, why)
                box.cond.notify_all()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._tell_peers("closed its link (finished its job)")

    def abort(self, reason: str) -> None:
        box = self._hub._box(self.party)
        with box.cond:
            box.aborted = reason
            box.cond.notify_all()
        self._closed = True
        self._tell_peers(f"failed: {reason}")

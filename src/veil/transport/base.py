"""The ``Link`` ABC: how one party exchanges bytes and arrays with the others.

Protocol code sees only this interface. A message is addressed by ``(peer, key)``: ``key`` is a
string chosen by the caller (the runtime derives it from a per-job counter that every party
advances identically, so concurrent operations use distinct keys and never mix up messages).
Messages with the same ``(sender, key)`` are delivered in the order sent; messages with other keys
are buffered until someone asks for them.

Every link counts, per peer, bytes and messages in both directions (payload plus frame header, as
put on the wire); :meth:`Link.stats` returns a snapshot.

Nothing received is ever unpickled: payloads are raw bytes or array frames
(:mod:`veil.core.wire`).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from veil.errors import ConfigError

#: Longest key accepted, in UTF-8 bytes.
MAX_KEY_BYTES = 512


@dataclass(frozen=True)
class LinkStats:
    """Traffic with one peer since the link opened."""

    bytes_sent: int = 0
    bytes_recv: int = 0
    messages_sent: int = 0
    messages_recv: int = 0


class _Counters:
    """Thread-safe mutable counters behind :class:`LinkStats`."""

    def __init__(self, peers: Sequence[str]) -> None:
        self._lock = threading.Lock()
        self._c = {p: [0, 0, 0, 0] for p in peers}

    def sent(self, peer: str, nbytes: int) -> None:
        with self._lock:
            c = self._c[peer]
            c[0] += nbytes
            c[2] += 1

    def received(self, peer: str, nbytes: int) -> None:
        with self._lock:
            c = self._c[peer]
            c[1] += nbytes
            c[3] += 1

    def snapshot(self) -> dict[str, LinkStats]:
        with self._lock:
            return {p: LinkStats(*c) for p, c in self._c.items()}


class Link(ABC):
    """Authenticated, ordered, keyed message exchange between one party and its peers.

    Parameters
    ----------
    party:
        This party's name.
    parties:
        All parties of the cluster, this one included.
    """

    def __init__(self, party: str, parties: Sequence[str]) -> None:
        if party not in parties:
            raise ConfigError(f"party {party!r} is not in the cluster {list(parties)}")
        if len(set(parties)) != len(parties):
            raise ConfigError(f"duplicate party names in {list(parties)}")
        self.party = party
        self.parties: tuple[str, ...] = tuple(parties)
        self.peers: tuple[str, ...] = tuple(p for p in parties if p != party)
        self._counters = _Counters(self.peers)

    # ------------------------------------------------------------------ bytes
    @abstractmethod
    def send_bytes(self, to: str, key: str, data: bytes | bytearray | memoryview) -> None:
        """Send ``data`` to peer ``to`` under ``key``. May return before the peer has it."""

    @abstractmethod
    def recv_bytes(self, frm: str, key: str, timeout: float | None = None) -> bytes:
        """Block until the next message from ``frm`` under ``key`` arrives and return it.

        Raises :class:`veil.errors.PeerError` naming ``frm`` if it does not arrive within
        ``timeout`` seconds (the link's default when ``None``), or if the peer is gone.
        """

    # ----------------------------------------------------------------- arrays
    @abstractmethod
    def send_array(self, to: str, key: str, arr: np.ndarray[Any, Any]) -> None:
        """Send a numeric numpy array to ``to`` under ``key`` (streamed in chunks if large)."""

    @abstractmethod
    def recv_array(self, frm: str, key: str, timeout: float | None = None) -> np.ndarray[Any, Any]:
        """Receive the next array from ``frm`` under ``key`` (see :meth:`recv_bytes`)."""

    # -------------------------------------------------------------- lifecycle
    @abstractmethod
    def close(self) -> None:
        """Tell peers this party is done and release resources. Idempotent."""

    @abstractmethod
    def abort(self, reason: str) -> None:
        """Fail fast: wake every blocked ``recv`` with an error and tell peers this party failed."""

    def stats(self) -> dict[str, LinkStats]:
        """Bytes and messages exchanged with each peer so far."""
        return self._counters.snapshot()

    # ---------------------------------------------------------------- helpers
    def _check_peer(self, peer: str) -> None:
        if peer not in self.peers:
            raise ConfigError(
                f"{self.party!r} has no link to {peer!r}; peers are {list(self.peers)}"
            )

    @staticmethod
    def _check_key(key: str) -> None:
        if len(key.encode()) > MAX_KEY_BYTES:
            raise ConfigError(f"message key longer than {MAX_KEY_BYTES} bytes: {key[:40]!r}...")

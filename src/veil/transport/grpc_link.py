"""The networked link: gRPC over mutual TLS between the parties of a cluster.

Each party runs one gRPC server on its own address (:class:`~veil.transport.grpc_server.LinkServer`)
and opens one long-lived client stream to every peer
(:class:`~veil.transport.grpc_client.Outbound`). Messages travel as frames
(:mod:`veil.transport.frames`): a versioned binary header, then raw bytes; arrays as
:mod:`veil.core.wire` frames, streamed in chunks of ``chunk_bytes`` and reassembled at the receiver
straight into the final array. Nothing received is ever unpickled.

Liveness: a peer that dies is failed within seconds, not after the receive timeout: at once when
its process dies with a stream open (TCP reset), after ``keepalive_seconds + keepalive_timeout``
when it goes silent (HTTP/2 keepalive), after ``dead_after`` when it was seen up but dies before
opening its stream (see :mod:`veil.transport.grpc_client`). A peer never seen up may still be
starting and is waited for until ``connect_timeout``; a peer busy computing is never failed (gRPC
answers keepalive pings in its own threads). Calling :meth:`GrpcLink.wait_ready` before the job
makes every later death a broken stream.

Threat model: the network is hostile, the parties are the cluster members holding certificates
from the cluster CA. TLS (from gRPC/BoringSSL) gives confidentiality and integrity on the wire;
mutual authentication binds every stream to a party name: a receiver learns who sent a message
only from the sender's verified certificate, and a sender only talks to a server whose certificate
names the intended party. An authenticated but misbehaving member can send malformed frames (they
are refused and it is marked failed) or try to exhaust memory (bounded by ``max_message_bytes``
and ``max_pending_bytes`` per peer). What the link reveals to a network observer: who talks to
whom, when, and how many bytes (message sizes are not padded).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from veil.core import wire
from veil.errors import ConfigError, PeerError
from veil.transport.base import Link
from veil.transport.certs import TlsFiles, check_party_names
from veil.transport.frames import MIN_CHUNK_BYTES, Kind, encode_message
from veil.transport.grpc_client import Outbound
from veil.transport.grpc_server import LinkServer
from veil.transport.inbox import Inbox


@dataclass(frozen=True)
class GrpcOptions:
    """Timeouts and limits of a :class:`GrpcLink` (use the same values at every party).

    Attributes
    ----------
    connect_timeout:
        Seconds peers may take to come up: connections are retried until then, so parties may
        start in any order within it. Then ``PeerError("could not reach ...")``.
    recv_timeout:
        Default seconds a ``recv_*`` waits for a message.
    retry_interval:
        Seconds between connection attempts.
    chunk_bytes:
        Payload bytes per frame; larger messages are streamed in chunks of this size. Receivers
        refuse gRPC messages larger than ``chunk_bytes`` + frame overhead, so every party of a
        cluster must use the same value.
    max_message_bytes:
        Largest message a receiver accepts (declared size; checked before allocating).
    max_pending_bytes:
        Per-peer cap on bytes received but not yet taken by ``recv_*`` (including a message
        being reassembled); a message beyond it is refused and the peer marked failed.
    max_queued_chunks:
        Chunks a sender may queue per peer before ``send_*`` blocks (bounds sender memory).
    close_timeout:
        Seconds :meth:`GrpcLink.close` waits for queued messages to be flushed.
    keepalive_seconds:
        Interval of the HTTP/2 keepalive pings both ends send on every connection, busy or idle.
        Pings are answered by gRPC's own threads, so a peer busy computing (even holding the
        GIL) still answers them; only a peer whose process is gone, frozen or cut off does not.
    keepalive_timeout:
        Seconds to wait for the answer to a keepalive ping before the connection is declared
        dead; a peer lost without a TCP reset (network cut, host down, process stopped) is
        detected within ``keepalive_seconds + keepalive_timeout``.
    dead_after:
        Seconds a peer that was seen up (it reached our server, or we reached its) may refuse
        connections before it is declared dead, when our stream to it is not open yet. A peer
        never seen up is waited for until ``connect_timeout`` (it may still be starting).
    """

    connect_timeout: float = 30.0
    recv_timeout: float = 60.0
    retry_interval: float = 0.2
    chunk_bytes: int = 4 << 20
    max_message_bytes: int = 4 << 30
    max_pending_bytes: int = 8 << 30
    max_queued_chunks: int = 4
    close_timeout: float = 10.0
    keepalive_seconds: float = 5.0
    keepalive_timeout: float = 5.0
    dead_after: float = 1.0

    def __post_init__(self) -> None:
        for name in ("connect_timeout", "recv_timeout", "retry_interval", "close_timeout"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"GrpcOptions.{name} must be > 0, got {getattr(self, name)}")
        if self.keepalive_seconds < 1:
            raise ConfigError(
                f"GrpcOptions.keepalive_seconds must be at least 1, got {self.keepalive_seconds}"
            )
        if self.keepalive_timeout < 0.5:
            raise ConfigError(
                f"GrpcOptions.keepalive_timeout must be at least 0.5, got {self.keepalive_timeout}"
            )
        if not self.dead_after > 0:
            raise ConfigError(f"GrpcOptions.dead_after must be > 0, got {self.dead_after}")
        if not MIN_CHUNK_BYTES <= self.chunk_bytes <= 1 << 30:
            raise ConfigError(
                f"GrpcOptions.chunk_bytes must be in [{MIN_CHUNK_BYTES}, 2^30], "
                f"got {self.chunk_bytes}"
            )
        if self.max_message_bytes < 1:
            raise ConfigError("GrpcOptions.max_message_bytes must be positive")
        if self.max_pending_bytes < self.max_message_bytes:
            raise ConfigError("GrpcOptions.max_pending_bytes must be >= max_message_bytes")
        if self.max_queued_chunks < 1:
            raise ConfigError("GrpcOptions.max_queued_chunks must be at least 1")


class GrpcLink(Link):
    """One party's mutual-TLS gRPC link to the other parties of a cluster.

    The constructor binds this party's server and starts connecting to every peer in the
    background; it does not wait for them. Call :meth:`wait_ready` to block until all streams
    are up (and fail early with the reason otherwise). Always end with :meth:`close` (clean:
    flushes queued messages and says goodbye) or :meth:`abort` (failure: tells peers why).

    Parameters
    ----------
    party:
        This party's name (must be a key of ``addresses``).
    addresses:
        ``{party: (host, port)}`` for every party, this one included. This party listens on its
        own entry unless ``listen_host`` is given.
    tls:
        This party's certificate files (see :func:`veil.transport.certs.init_cluster`).
    options:
        Timeouts and limits.
    listen_host:
        Host to bind instead of this party's own address (e.g. ``"0.0.0.0"``).

    Raises
    ------
    ConfigError
        Bad party names, missing or mismatched certificate files, or the port cannot be bound.
    """

    def __init__(
        self,
        party: str,
        addresses: Mapping[str, tuple[str, int]],
        tls: TlsFiles,
        options: GrpcOptions = GrpcOptions(),
        *,
        listen_host: str | None = None,
    ) -> None:
        parties = check_party_names(list(addresses))
        super().__init__(party, parties)
        self.options = options
        self.addresses = {p: _check_address(p, a) for p, a in addresses.items()}
        material = tls.load()
        material.verify_for(party)
        self._closed = False
        start = time.monotonic()
        self._inbox = Inbox(
            self.peers,
            default_timeout=options.recv_timeout,
            max_pending_bytes=options.max_pending_bytes,
            # slack: a peer we cannot reach is reported by our outbound stream, with a diagnosis
            connect_deadline=start + options.connect_timeout + 2.5,
            connect_timeout=options.connect_timeout,
        )
        host, port = self.addresses[party]
        bind = f"{listen_host or host}:{port}"
        if ":" in (listen_host or host):
            bind = f"[{listen_host or host}]:{port}"
        self._server = LinkServer(
            party,
            self.peers,
            bind,
            material,
            self._inbox,
            chunk_bytes=options.chunk_bytes,
            max_message_bytes=options.max_message_bytes,
            keepalive_seconds=options.keepalive_seconds,
            keepalive_timeout=options.keepalive_timeout,
        )
        self._out: dict[str, Outbound] = {}
        for p in self.peers:
            h, pt = self.addresses[p]
            self._out[p] = Outbound(
                party,
                p,
                h,
                pt,
                material,
                options,
                on_fail=self._outbound_failed(p),
                liveness=_PeerLiveness(self._inbox, p),
            )
        for ob in self._out.values():
            ob.start()

    def _outbound_failed(self, peer: str) -> Callable[[str], None]:
        def fail(reason: str) -> None:
            self._inbox.mark_gone(peer, reason)

        return fail

    # ---------------------------------------------------------------------- readiness
    def wait_ready(self, timeout: float | None = None) -> None:
        """Block until the streams to and from every peer are open.

        Call it right after construction. A peer that connected and has since finished, failed
        or died counts as ready (it started its job; exchanges with it then fail at once with
        the recorded reason); one that never connected and is refused or unreachable does not.
        Calling it before the job starts is a start barrier: every stream is open when it
        returns, so a peer that dies afterwards is noticed at once (see the liveness section of
        ``docs/transport.md``).

        Parameters
        ----------
        timeout:
            Seconds to wait; default ``connect_timeout`` plus 3 s of slack.

        Raises
        ------
        PeerError
            Naming the first peer that cannot be reached, was refused, or did not connect in time.
        """
        wait = self.options.connect_timeout + 3.0 if timeout is None else timeout
        deadline = time.monotonic() + wait
        for p, ob in self._out.items():
            why = ob.wait_open(deadline)
            if why is not None and not self._inbox.has_connected(p):
                raise PeerError(p, why)
        problem = self._inbox.wait_connected(deadline)
        if problem is not None:
            raise PeerError(*problem)

    # -------------------------------------------------------------------------- bytes
    def _outbound(self, to: str) -> Outbound:
        self._check_peer(to)
        if self._closed:
            raise PeerError(to, f"cannot send: the link of {self.party!r} is closed")
        return self._out[to]

    def _send(self, ob: Outbound, frames: Iterator[bytes]) -> None:
        try:
            ob.send(frames)
        except PeerError as exc:
            told = self._inbox.gone_reason(ob.peer)  # what the peer itself said, if it did
            if told is not None and told not in str(exc):
                raise PeerError(ob.peer, told) from exc
            raise

    def send_bytes(self, to: str, key: str, data: bytes | bytearray | memoryview) -> None:
        ob = self._outbound(to)
        self._check_key(key)
        payload = memoryview(data).cast("B")
        self._send(ob, encode_message(Kind.BYTES, key, b"", payload, self.options.chunk_bytes))
        self._counters.sent(to, len(payload))

    def recv_bytes(self, frm: str, key: str, timeout: float | None = None) -> bytes:
        self._check_peer(frm)
        item, nbytes = self._inbox.get(frm, key, timeout)
        self._counters.received(frm, nbytes)
        if not isinstance(item, bytes):
            raise PeerError(frm, f"expected bytes under key {key!r}, got an array")
        return item

    # ------------------------------------------------------------------------- arrays
    def send_array(self, to: str, key: str, arr: np.ndarray[Any, Any]) -> None:
        ob = self._outbound(to)
        self._check_key(key)
        a = wire.as_wire_array(arr)
        header = wire.array_header(a)  # refuses object and other non-wire dtypes
        body = a.reshape(-1).view(np.uint8).data
        self._send(ob, encode_message(Kind.ARRAY, key, header, body, self.options.chunk_bytes))
        self._counters.sent(to, len(header) + a.nbytes)

    def recv_array(self, frm: str, key: str, timeout: float | None = None) -> np.ndarray[Any, Any]:
        self._check_peer(frm)
        item, nbytes = self._inbox.get(frm, key, timeout)
        self._counters.received(frm, nbytes)
        if not isinstance(item, np.ndarray):
            raise PeerError(frm, f"expected an array under key {key!r}, got bytes")
        return item

    # ---------------------------------------------------------------------- lifecycle
    def close(self) -> None:
        """Flush queued messages, say goodbye to every peer, stop the server. Idempotent.

        Waits up to ``close_timeout`` for the peers to take the queued frames. Messages already
        received stay readable by ``recv_*`` after close.
        """
        if self._closed:
            return
        self._closed = True
        deadline = time.monotonic() + self.options.close_timeout
        for ob in self._out.values():
            ob.finish(max(deadline - time.monotonic(), 0.0))
        for ob in self._out.values():
            ob.join(max(deadline - time.monotonic(), 0.0))
        self._shutdown(grace=0.2)

    def abort(self, reason: str) -> None:
        """Fail fast: wake local receivers, send ``reason`` to every peer, stop. Idempotent."""
        self._inbox.abort(reason)
        if self._closed:
            return
        self._closed = True
        for ob in self._out.values():
            ob.abort(reason)
        deadline = time.monotonic() + min(self.options.close_timeout, 2.0)
        for ob in self._out.values():
            ob.join(max(deadline - time.monotonic(), 0.0))
        self._shutdown(grace=0.0)

    def _shutdown(self, grace: float) -> None:
        for ob in self._out.values():
            ob.shutdown()
        self._server.stop(grace)

    def __enter__(self) -> GrpcLink:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort(f"{exc_type.__name__}: {exc}")


class _PeerLiveness:
    """One peer's view of the inbox's liveness evidence, for its :class:`Outbound`."""

    def __init__(self, inbox: Inbox, peer: str) -> None:
        self._inbox = inbox
        self._peer = peer

    def saw(self, at: float | None = None) -> None:
        self._inbox.seen_alive(self._peer, at)

    def last_seen(self) -> float | None:
        return self._inbox.last_seen(self._peer)


def _check_address(party: str, addr: Any) -> tuple[str, int]:
    try:
        host, port = addr
        port = int(port)
    except (TypeError, ValueError):
        raise ConfigError(
            f"address of party {party!r} must be (host, port), got {addr!r}"
        ) from None
    if not isinstance(host, str) or not host or not 0 < port < 65536:
        raise ConfigError(f"address of party {party!r} is invalid: {host!r}:{port}")
    return host, port


__all__ = ["GrpcLink", "GrpcOptions"]

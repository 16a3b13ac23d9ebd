"""The receiving half of the gRPC link: one mutual-TLS gRPC server per party.

Each peer opens exactly one long-lived client stream (``/veil.Link/Stream``, raw bytes, no
protobuf) to this server and writes frames (:mod:`veil.transport.frames`) into it. The server

* identifies the sender **only** from its verified client certificate (``auth_context``: the
  certificate's common name, which must also be a DNS subject-alternative name); the TLS layer has
  already checked the certificate is signed by the cluster CA. A name that is not a peer of this
  cluster, a second simultaneous stream for the same name, or a HELLO frame that disagrees with
  the certificate is refused;
* reassembles frames into messages under the limits and delivers them to the :class:`Inbox`;
* on any malformed frame logs an error naming the peer (logger ``veil.transport``), marks the
  peer failed, aborts that stream and keeps serving the others. It never unpickles anything;
* sends HTTP/2 keepalive pings every ``keepalive_seconds`` and drops a connection whose pings go
  unanswered for ``keepalive_timeout`` (a peer frozen or cut off without a TCP reset); it accepts
  the peers' own keepalive pings at that rate, even on connections without calls;
* records every authenticated connection check (``Ping``) as evidence that the caller is up
  (:meth:`Inbox.seen_alive`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from concurrent import futures
from typing import Any

import grpc

from veil.errors import ConfigError
from veil.transport.certs import TlsMaterial
from veil.transport.frames import FRAME_OVERHEAD, FrameError, Kind, Reassembler
from veil.transport.inbox import CLOSED, Inbox

SERVICE = "veil.Link"
METHOD = "Stream"
#: Full method path of the message stream.
METHOD_PATH = f"/{SERVICE}/{METHOD}"
#: Full method path of the connection check (answers the server's party name).
PING_PATH = f"/{SERVICE}/Ping"
#: Initial-metadata key the server sends once it has accepted a stream.
ACCEPTED_KEY = "veil-accepted"

_log = logging.getLogger("veil.transport")


class _Refused(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class _DaemonExecutor(futures.Executor):
    """Runs each RPC handler in its own daemon thread.

    A ``ThreadPoolExecutor``'s workers are joined at interpreter exit, so a process that ends
    without closing its link would hang in a handler still reading a peer's stream. Daemon threads
    let it exit (peers then see the connection drop). Concurrency is bounded by the server's
    ``maximum_concurrent_rpcs``.
    """

    def __init__(self, name: str) -> None:
        self._name = name

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> futures.Future[Any]:
        fut: futures.Future[Any] = futures.Future()

        def run() -> None:
            if not fut.set_running_or_notify_cancel():
                return
            try:
                fut.set_result(fn(*args, **kwargs))
            except BaseException as exc:
                fut.set_exception(exc)

        threading.Thread(target=run, name=self._name, daemon=True).start()
        return fut


class LinkServer:
    """The gRPC server receiving this party's inbound streams.

    Parameters
    ----------
    party:
        This party's name.
    peers:
        The peers allowed to connect.
    bind:
        ``host:port`` to listen on.
    material:
        TLS material of this party (server certificate, CA to verify clients).
    inbox:
        Where complete messages and peer states go.
    chunk_bytes, max_message_bytes, keepalive_seconds, keepalive_timeout:
        Limits (see :class:`veil.transport.grpc_link.GrpcOptions`).

    Raises
    ------
    ConfigError
        The address cannot be bound (in use, not a local address).
    """

    def __init__(
        self,
        party: str,
        peers: Sequence[str],
        bind: str,
        material: TlsMaterial,
        inbox: Inbox,
        *,
        chunk_bytes: int,
        max_message_bytes: int,
        keepalive_seconds: float,
        keepalive_timeout: float,
    ) -> None:
        self.party = party
        self._peers = frozenset(peers)
        self._inbox = inbox
        self._max_message = max_message_bytes
        self._max_frame = chunk_bytes + FRAME_OVERHEAD
        self.closing = False
        slots = len(self._peers) + 4
        ka_ms = int(keepalive_seconds * 1000)
        options = [
            ("grpc.so_reuseport", 0),  # a second server on the same port must fail, not share
            ("grpc.max_receive_message_length", self._max_frame),
            ("grpc.max_send_message_length", 1 << 16),
            ("grpc.keepalive_time_ms", ka_ms),
            ("grpc.keepalive_timeout_ms", int(keepalive_timeout * 1000)),
            ("grpc.http2.ping_timeout_ms", int(keepalive_timeout * 1000)),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.max_pings_without_data", 0),
            # peers ping every keepalive_seconds, with or without calls: never GOAWAY them for it
            ("grpc.http2.min_recv_ping_interval_without_data_ms", max(ka_ms // 2, 500)),
            ("grpc.http2.max_ping_strikes", 0),
        ]
        self._server = grpc.server(
            _DaemonExecutor(f"veil-{party}-in"),
            handlers=[
                grpc.method_handlers_generic_handler(
                    SERVICE,
                    {
                        METHOD: grpc.stream_unary_rpc_method_handler(self._serve),
                        "Ping": grpc.unary_unary_rpc_method_handler(self._ping),
                    },
                )
            ],
            options=options,
            maximum_concurrent_rpcs=slots,
        )
        creds = grpc.ssl_server_credentials(
            [(material.key_pem, material.cert_pem)],
            root_certificates=material.ca_pem,
            require_client_auth=True,
        )
        try:
            port = self._server.add_secure_port(bind, creds)
        except RuntimeError as exc:
            port = 0
            detail = str(exc)
        else:
            detail = ""
        if port == 0:
            raise ConfigError(
                f"party {party!r} cannot listen on {bind}: the port is in use or the address is "
                f"not local{' (' + detail + ')' if detail else ''}; stop the other process or "
                "change the address in the cluster config"
            )
        self._server.start()

    def stop(self, grace: float) -> None:
        """Stop serving; in-flight streams are cancelled after ``grace`` seconds."""
        self.closing = True
        self._server.stop(grace).wait(grace + 5.0)

    # ------------------------------------------------------------------ one stream
    def _identify(self, context: Any) -> str:
        auth = context.auth_context() or {}
        cns = [v.decode("utf-8", "replace") for v in auth.get("x509_common_name", [])]
        sans = {v.decode("utf-8", "replace") for v in auth.get("x509_subject_alternative_name", [])}
        if len(cns) != 1:
            raise _Refused(grpc.StatusCode.UNAUTHENTICATED, "client certificate has no single CN")
        name: str = cns[0]
        if name not in sans:
            raise _Refused(
                grpc.StatusCode.PERMISSION_DENIED,
                f"client certificate CN {name!r} is not among its DNS names {sorted(sans)}",
            )
        if name == self.party:
            raise _Refused(
                grpc.StatusCode.PERMISSION_DENIED,
                f"client certificate is for {name!r}, the receiving party itself",
            )
        if name not in self._peers:
            raise _Refused(
                grpc.StatusCode.PERMISSION_DENIED,
                f"certificate names {name!r}, who is not a party of this cluster "
                f"({', '.join(sorted(self._peers | {self.party}))})",
            )
        return name

    def _ping(self, request: bytes, context: Any) -> bytes:
        """Answer a connecting peer with this party's name (after checking who it is)."""
        try:
            peer = self._identify(context)
        except _Refused as r:
            _log.error(
                "party %r refused a connection from %s: %s", self.party, context.peer(), r.message
            )
            context.abort(r.code, f"party {self.party!r} refused the connection: {r.message}")
            return b""  # not reached: abort raises
        self._inbox.seen_alive(peer)
        return self.party.encode()

    def _serve(self, requests: Iterator[bytes], context: Any) -> bytes:
        """Handle one inbound stream until GOODBYE, ABORT, a bad frame or a broken connection."""
        try:
            peer = self._identify(context)
        except _Refused as r:
            _log.error(
                "party %r refused a connection from %s: %s", self.party, context.peer(), r.message
            )
            context.abort(r.code, f"party {self.party!r} refused the connection: {r.message}")
            return b""  # not reached: abort raises
        refusal = self._inbox.connect(peer)
        if refusal is not None:
            _log.error("party %r refused a stream from %r: %s", self.party, peer, refusal)
            context.abort(
                grpc.StatusCode.ALREADY_EXISTS, f"party {self.party!r} refused: {refusal}"
            )
            return b""  # not reached: abort raises
        asm = Reassembler(self._max_message, reserve=lambda n: self._inbox.reserve(peer, n))
        failure: tuple[grpc.StatusCode, str] | None = None
        try:
            self._pump(peer, requests, asm, context)
        except FrameError as exc:
            why = f"sent a malformed frame and was disconnected: {exc}"
            failure = (grpc.StatusCode.INVALID_ARGUMENT, why)
            self._inbox.mark_gone(peer, why)
            _log.error("party %r: stream from %r refused: %s", self.party, peer, exc)
        except grpc.RpcError:
            self._cut(peer)
        except Exception as exc:  # never let a peer crash the server
            why = f"stream failed: {type(exc).__name__}: {exc}"
            failure = (grpc.StatusCode.INTERNAL, why)
            if self._inbox.mark_gone(peer, why):
                _log.exception("party %r: unexpected error on the stream from %r", self.party, peer)
        finally:
            if asm.in_progress:
                self._inbox.release(peer, asm.in_progress)
        if failure is not None:
            context.abort(failure[0], f"party {self.party!r}: {failure[1]}")
        return b""

    def _cut(self, peer: str) -> None:
        """The stream from ``peer`` ended without GOODBYE/ABORT (causes look alike from here)."""
        why = (
            "connection lost without a goodbye (the process died, the network failed or it "
            "stopped answering keepalive pings; or a frame over the "
            f"{self._max_frame}-byte gRPC limit: same chunk_bytes everywhere?)"
        )
        if self._inbox.mark_gone(peer, why) and not self.closing:
            _log.error("party %r: stream from %r broke: %s", self.party, peer, why)

    def _pump(self, peer: str, requests: Iterator[bytes], asm: Reassembler, context: Any) -> None:
        hello = asm.feed(next(requests, b""))
        if hello is None or hello.kind is not Kind.HELLO:
            raise FrameError("stream does not start with a HELLO frame")
        if hello.key != self.party or hello.item != peer:
            why = (
                f"HELLO says {hello.item!r} -> {hello.key!r} but the certificate says "
                f"{peer!r} -> {self.party!r}"
            )
            raise FrameError(why)
        context.send_initial_metadata(((ACCEPTED_KEY, self.party),))
        for frame in requests:
            msg = asm.feed(frame)
            if msg is None:
                continue
            if msg.kind is Kind.BYTES or msg.kind is Kind.ARRAY:
                self._inbox.put(peer, msg.key, msg.item, msg.nbytes)
            elif msg.kind is Kind.GOODBYE:
                self._inbox.mark_gone(peer, CLOSED)
                return
            elif msg.kind is Kind.ABORT:
                self._inbox.mark_gone(peer, f"failed: {msg.item}")
                return
            else:
                raise FrameError(f"unexpected {msg.kind.name} frame in the middle of a stream")
        self._cut(peer)  # veil always ends a stream with GOODBYE or ABORT: this one was cut


__all__ = ["ACCEPTED_KEY", "METHOD_PATH", "PING_PATH", "LinkServer"]

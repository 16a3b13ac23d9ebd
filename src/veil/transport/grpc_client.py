"""The sending half of the gRPC link: one long-lived mutual-TLS stream to one peer.

An :class:`Outbound` owns a gRPC channel to the peer and a background thread that

1. waits until the channel is ready, retrying every ``retry_interval`` until ``connect_timeout``
   (peers may start in any order). While it waits it probes the peer with
   :func:`veil.transport.diagnose.diagnose`; a certificate problem fails at once with the reason;
2. opens the stream, sends HELLO and waits for the server to accept it (initial metadata);
3. feeds the stream from a bounded queue of frames (at most ``max_queued_chunks``), so a sender
   of a huge array holds only a few chunks in memory and blocks while the peer catches up;
4. ends with GOODBYE (:meth:`finish`) or ABORT (:meth:`abort`); a stream that breaks otherwise
   fails the peer with the reason, and every blocked and later :meth:`send` raises ``PeerError``.

Liveness. A peer whose process dies while this stream is open is noticed at once (the TCP
connection is reset and the stream fails); one lost without a reset (network cut, host down,
process frozen) when HTTP/2 keepalive pings (every ``keepalive_seconds``, both directions, with or
without calls) go unanswered for ``keepalive_timeout``. Pings are answered by gRPC's own threads,
so a peer that is alive but busy computing is never declared dead. Before the stream is open, a
peer that is not listening may simply not have started yet, so it is waited for until
``connect_timeout`` -- unless it was already seen up: its connection check or stream reached our
server, our channel to it was READY (watched with ``grpc.Channel.subscribe``), or a probe found its
port open. A peer seen up whose port then refuses connections for ``dead_after`` seconds (or stays
silent for ``max(dead_after, keepalive_timeout)``) has died before opening its stream; the stream
fails with what was observed, which wakes every ``recv`` waiting for that peer.

The server checks this party's certificate; the channel checks the server's certificate names the
expected party (``grpc.ssl_target_name_override``), so a party cannot be impersonated by another
cluster member.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

import grpc

from veil.errors import PeerError
from veil.transport.certs import TlsMaterial
from veil.transport.diagnose import Diagnosis, diagnose
from veil.transport.frames import FRAME_OVERHEAD, Kind, abort_frame, control_frame
from veil.transport.grpc_server import ACCEPTED_KEY, METHOD_PATH, PING_PATH

if TYPE_CHECKING:
    from veil.transport.grpc_link import GrpcOptions


class Liveness(Protocol):
    """Where an :class:`Outbound` reads and records evidence that its peer is up."""

    def saw(self, at: float | None = None) -> None:
        """The peer was up at ``at`` (``time.monotonic()``; default now)."""

    def last_seen(self) -> float | None:
        """When the peer was last seen up (by anyone on this party's side), or ``None``."""


class Outbound:
    """The stream from this party to one peer (see module docstring).

    Parameters
    ----------
    party, peer:
        This party and the peer.
    host, port:
        The peer's address.
    material:
        This party's TLS material.
    options:
        A :class:`veil.transport.grpc_link.GrpcOptions`.
    on_fail:
        Called once with a reason when the stream fails (not on a clean finish).
    liveness:
        Evidence that the peer is up, shared with this party's server.
    """

    def __init__(
        self,
        party: str,
        peer: str,
        host: str,
        port: int,
        material: TlsMaterial,
        options: GrpcOptions,
        on_fail: Callable[[str], None],
        liveness: Liveness,
    ) -> None:
        self.party = party
        self.peer = peer
        self.host = host
        self.port = port
        self._material = material
        self._opt = options
        self._on_fail = on_fail
        self._live = liveness
        self._reached = False  # our own channel or probe found the peer's server up
        self._watching = False
        self._unwatched_at = float("-inf")
        self._cond = threading.Condition()
        self._frames: deque[bytes | None] = deque()  # None: end of stream
        self._abort: bytes | None = None
        self._state = "connecting"  # -> open -> done | failed
        self._error: str | None = None
        self._send_lock = threading.Lock()
        self._channel: Any = None
        self._thread = threading.Thread(
            target=self._run, name=f"veil-{party}-to-{peer}", daemon=True
        )

    def start(self) -> None:
        """Start connecting in the background."""
        self._thread.start()

    # ------------------------------------------------------------------ party side
    @property
    def error(self) -> str | None:
        """Why the stream failed, or ``None``."""
        with self._cond:
            return self._error

    def send(self, frames: Iterable[bytes]) -> None:
        """Queue the frames of one message, in order, blocking while the queue is full.

        Raises
        ------
        PeerError
            The stream failed or was finished (before or while sending).
        """
        with self._send_lock:  # the chunks of one message are never interleaved with another's
            for f in frames:
                self._put(f)

    def _put(self, frame: bytes) -> None:
        limit = self._opt.max_queued_chunks
        with self._cond:
            while True:
                if self._error is not None:
                    raise PeerError(self.peer, self._error)
                if self._state == "done" or self._abort is not None:
                    raise PeerError(self.peer, "link already closed; cannot send")
                if len(self._frames) < limit:
                    break
                self._cond.wait()
            self._frames.append(frame)
            self._cond.notify_all()

    def wait_open(self, deadline: float) -> str | None:
        """Block until the stream is accepted; return the failure reason, if any."""
        with self._cond:
            while self._state == "connecting":
                left = deadline - time.monotonic()
                if left <= 0:
                    return "our stream to it is not open yet"
                self._cond.wait(left)
            return self._error

    def finish(self, timeout: float) -> None:
        """Queue GOODBYE and the end of the stream after everything already queued.

        Waits up to ``timeout`` for a send in progress to finish queueing its message; if it
        does not, the stream is failed instead (the peer then sees it end without goodbye).
        """
        if not self._send_lock.acquire(timeout=timeout):
            self._fail("link closed while a send to this peer was still blocked", notify=False)
            return
        try:
            self._finish_locked()
        finally:
            self._send_lock.release()

    def _finish_locked(self) -> None:
        with self._cond:
            if self._state in ("done", "failed") or self._abort is not None:
                return
            if self._state == "connecting" and not self._frames:
                self._state = "done"  # nothing to deliver: stop dialling a peer never reached
                self._cond.notify_all()
                return
            self._frames.append(control_frame(Kind.GOODBYE))
            self._frames.append(None)
            self._cond.notify_all()

    def abort(self, reason: str) -> None:
        """Drop queued frames, send ABORT with ``reason`` next, then end the stream."""
        with self._cond:
            self._frames.clear()
            self._abort = abort_frame(reason)
            self._cond.notify_all()

    def join(self, timeout: float) -> bool:
        """Wait for the stream to end; ``False`` if it is still running after ``timeout``."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def shutdown(self) -> None:
        """Fail anything still pending and close the channel (after :meth:`join`)."""
        self._fail("link closed before the stream ended", notify=False)
        ch = self._channel
        if ch is not None:
            self._unwatch()
            # gRPC's connectivity poller wakes every 0.2 s; closing the channel under a poller
            # that has not yet seen the unsubscription makes it raise in its own thread
            time.sleep(max(0.0, self._unwatched_at + _POLLER_WAKE - time.monotonic()))
            ch.close()

    # ------------------------------------------------------------------ background
    def _fail(self, reason: str, *, notify: bool = True) -> None:
        with self._cond:
            if self._error is not None or self._state == "done":
                return
            self._error = reason
            self._state = "failed"
            self._cond.notify_all()
        if notify:
            self._on_fail(reason)

    def _requests(self) -> Iterator[bytes]:
        yield control_frame(Kind.HELLO, self.peer, self.party.encode())
        while True:
            with self._cond:  # never yield while holding the lock
                while (
                    not self._frames
                    and self._abort is None
                    and self._error is None
                    and self._state != "done"
                ):
                    self._cond.wait()
                last = self._abort
                if last is not None:
                    self._frames.clear()
                    frame: bytes | None = last
                elif self._error is not None or not self._frames:
                    return
                else:
                    frame = self._frames.popleft()
                    self._cond.notify_all()
            if frame is None:
                return
            yield frame
            if last is not None:
                return

    def _channel_options(self) -> list[tuple[str, Any]]:
        back_ms = max(int(self._opt.retry_interval * 1000), 10)
        ka_ms = int(self._opt.keepalive_seconds * 1000)
        return [
            ("grpc.ssl_target_name_override", self.peer),
            ("grpc.default_authority", self.peer),
            ("grpc.max_send_message_length", self._opt.chunk_bytes + FRAME_OVERHEAD),
            ("grpc.max_receive_message_length", 1 << 16),
            ("grpc.initial_reconnect_backoff_ms", back_ms),
            ("grpc.min_reconnect_backoff_ms", back_ms),
            ("grpc.max_reconnect_backoff_ms", back_ms),
            ("grpc.keepalive_time_ms", ka_ms),
            ("grpc.keepalive_timeout_ms", int(self._opt.keepalive_timeout * 1000)),
            ("grpc.http2.ping_timeout_ms", int(self._opt.keepalive_timeout * 1000)),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.max_pings_without_data", 0),
            ("grpc.use_local_subchannel_pool", 1),
            ("grpc.enable_retries", 0),
        ]

    def _on_connectivity(self, state: grpc.ChannelConnectivity) -> None:
        """Channel state callback (gRPC's thread): READY means the peer's server is up."""
        if state is grpc.ChannelConnectivity.READY:
            self._reached = True
            self._live.saw()

    def _connect(self) -> bool:
        """Wait for the channel to be ready; on failure record why and return ``False``."""
        creds = grpc.ssl_channel_credentials(
            root_certificates=self._material.ca_pem,
            private_key=self._material.key_pem,
            certificate_chain=self._material.cert_pem,
        )
        host = f"[{self.host}]" if ":" in self.host else self.host  # IPv6 literal
        self._channel = grpc.secure_channel(
            f"{host}:{self.port}", creds, options=self._channel_options()
        )
        self._channel.subscribe(self._on_connectivity, try_to_connect=False)
        self._watching = True
        try:
            return self._dial()
        finally:
            self._unwatch()  # needed while connecting only: an open stream fails by itself

    def _unwatch(self) -> None:
        with self._cond:
            if not self._watching:
                return
            self._watching = False
            self._unwatched_at = time.monotonic()
        self._channel.unsubscribe(self._on_connectivity)

    def _dial(self) -> bool:
        """Ping the peer until it answers, the connect timeout passes or it is seen dead."""
        ping = self._channel.unary_unary(
            PING_PATH, request_serializer=None, response_deserializer=None
        )
        timeout = self._opt.connect_timeout
        deadline = time.monotonic() + timeout
        step = max(self._opt.retry_interval, 0.05)
        probe_at = time.monotonic()
        last = "no answer yet"
        down_since: float | None = None  # first failed probe since the peer was last seen up
        while True:
            if self._abort is not None or self._state != "connecting":
                return False
            # once the peer was seen up, check on it every step: it may have died meanwhile
            seen = self._live.last_seen()
            wait = min(step if seen is not None else max(step, 1.0), deadline - time.monotonic())
            started = time.monotonic()
            try:
                answer = ping(b"", timeout=max(wait, 0.01), wait_for_ready=True)
            except grpc.RpcError as exc:
                code = exc.code()
                if code in _REFUSALS:
                    self._fail(_describe(exc, self._opt.keepalive_timeout))
                    return False
            else:
                if answer == self.peer.encode():
                    self._reached = True
                    self._live.saw()
                    return True
                self._fail(f"answered as {answer[:64]!r} at {self.host}:{self.port}, not as itself")
                return False
            now = time.monotonic()
            if seen is not None or now >= probe_at or now >= deadline:
                probed = time.monotonic()
                verdict = diagnose(
                    self.peer, self.host, self.port, self._material, timeout=min(2.0, timeout)
                )
                last = verdict.message
                if verdict.permanent:
                    self._fail(last)
                    return False
                down_since, dead = self._judge(verdict, probed, down_since)
                if dead is not None:
                    self._fail(dead)
                    return False
                probe_at = time.monotonic() + 1.0
            if time.monotonic() >= deadline:
                self._fail(
                    f"could not reach it at {self.host}:{self.port} within {timeout:g} s: {last}"
                )
                return False
            time.sleep(max(0.0, min(step - (time.monotonic() - started), deadline - now)))

    def _judge(
        self, verdict: Diagnosis, probed: float, down_since: float | None
    ) -> tuple[float | None, str | None]:
        """Weigh one probe started at ``probed``: return the new ``down_since`` and, if the peer
        was seen up and has been unreachable since for longer than the grace, why it is dead."""
        if verdict.reach == "up":
            self._reached = True
            self._live.saw(probed)
            return None, None
        seen = self._live.last_seen()
        if seen is None:
            return None, None  # never seen up: it may still be starting (connect_timeout rules)
        if seen >= probed:
            return None, None  # seen up after this probe began: not dead
        if down_since is None or seen > down_since:
            down_since = probed
        refused = verdict.reach == "refused"
        grace = self._opt.dead_after
        if not refused:
            grace = max(grace, self._opt.keepalive_timeout)
        if time.monotonic() - down_since < grace:
            return down_since, None
        observed = f"connection refused at {self.host}:{self.port}" if refused else verdict.message
        where = ""
        if not self._reached:  # only its side of the evidence: our address for it may be wrong
            where = " (if it is still running, the address of it in our cluster config is wrong)"
        return down_since, (
            f"died before opening its stream to us: it was up {time.monotonic() - seen:.1f} s "
            f"ago, then {observed} for {time.monotonic() - down_since:.1f} s{where}; check its "
            "log (killed? out of memory?) and restart the job"
        )

    def _run(self) -> None:
        try:
            if not self._connect():
                return
            with self._cond:
                if self._state != "connecting":  # finished before the peer was reached
                    return
            call = self._channel.stream_unary(
                METHOD_PATH, request_serializer=None, response_deserializer=None
            ).future(self._requests(), wait_for_ready=False)  # READY a moment ago: fail fast
            try:
                metadata = dict(call.initial_metadata() or ())
            except grpc.RpcError as exc:
                self._fail(_describe(exc, self._opt.keepalive_timeout))
                return
            if metadata.get(ACCEPTED_KEY) != self.peer:
                try:  # the call ended before it was accepted: say how
                    ended = call.exception(timeout=1.0)
                except grpc.FutureTimeoutError:
                    ended = None
                if ended is not None:
                    self._fail(_describe(ended, self._opt.keepalive_timeout))
                    return
                call.cancel()
                self._fail(f"did not accept our stream ({_describe_call(call)})")
                return
            with self._cond:
                if self._state == "connecting":
                    self._state = "open"
                self._cond.notify_all()
            try:
                call.result()
            except grpc.RpcError as exc:
                self._fail(_describe(exc, self._opt.keepalive_timeout))
                return
            with self._cond:
                if self._error is None:
                    self._state = "done"
                self._cond.notify_all()
        except Exception as exc:  # the background thread must report, never die silently
            self._fail(f"sending failed: {type(exc).__name__}: {exc}")


#: Seconds after which gRPC's connectivity poller has surely seen an unsubscription.
_POLLER_WAKE = 0.3

_REFUSALS = (
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.UNIMPLEMENTED,
)


def _describe(exc: Any, keepalive_timeout: float) -> str:
    try:
        code, details = exc.code(), exc.details()
    except Exception:
        return f"stream failed: {exc}"
    if code in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED):
        return f"refused our connection: {details}"
    if code is grpc.StatusCode.UNIMPLEMENTED:
        return f"does not speak veil's link protocol ({details}); is the address right?"
    if code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.ALREADY_EXISTS):
        return f"rejected our stream: {details}"
    if code is grpc.StatusCode.CANCELLED:
        return "connection lost (its link closed or the process died)"
    if code is grpc.StatusCode.UNAVAILABLE:
        if "keepalive" in str(details).lower():
            return (
                f"connection lost: no answer to keepalive pings within {keepalive_timeout:g} s "
                f"(host down, network cut, or its process frozen): {details}"
            )
        return f"connection lost (the process died or the network failed): {details}"
    return f"stream failed with {code.name}: {details}"


def _describe_call(call: Any) -> str:
    try:
        return f"{call.code().name}: {call.details()}"
    except Exception:
        return "no reason given"


__all__ = ["Outbound"]

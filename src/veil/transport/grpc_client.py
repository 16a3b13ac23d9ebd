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

The server checks this party's certificate; the channel checks the server's certificate names the
expected party (``grpc.ssl_target_name_override``), so a party cannot be impersonated by another
cluster member.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import grpc

from veil.errors import PeerError
from veil.transport.certs import TlsMaterial
from veil.transport.diagnose import diagnose
from veil.transport.frames import FRAME_OVERHEAD, Kind, abort_frame, control_frame
from veil.transport.grpc_server import ACCEPTED_KEY, METHOD_PATH, PING_PATH

if TYPE_CHECKING:
    from veil.transport.grpc_link import GrpcOptions


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
    ) -> None:
        self.party = party
        self.peer = peer
        self.host = host
        self.port = port
        self._material = material
        self._opt = options
        self._on_fail = on_fail
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
            ("grpc.keepalive_timeout_ms", ka_ms),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.max_pings_without_data", 0),
            ("grpc.use_local_subchannel_pool", 1),
            ("grpc.enable_retries", 0),
        ]

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
        ping = self._channel.unary_unary(
            PING_PATH, request_serializer=None, response_deserializer=None
        )
        timeout = self._opt.connect_timeout
        deadline = time.monotonic() + timeout
        step = max(self._opt.retry_interval, 0.05)
        probe_at = time.monotonic()
        last = "no answer yet"
        while True:
            if self._abort is not None or self._state != "connecting":
                return False
            wait = min(max(step, 1.0), max(deadline - time.monotonic(), 0.01))
            started = time.monotonic()
            try:
                answer = ping(b"", timeout=wait, wait_for_ready=True)
            except grpc.RpcError as exc:
                code = exc.code()
                if code in _REFUSALS:
                    self._fail(_describe(exc))
                    return False
            else:
                if answer == self.peer.encode():
                    return True
                self._fail(f"answered as {answer[:64]!r} at {self.host}:{self.port}, not as itself")
                return False
            now = time.monotonic()
            if now >= probe_at or now >= deadline:
                verdict = diagnose(
                    self.peer, self.host, self.port, self._material, timeout=min(2.0, timeout)
                )
                last = verdict.message
                if verdict.permanent:
                    self._fail(last)
                    return False
                probe_at = time.monotonic() + 1.0
            if time.monotonic() >= deadline:
                self._fail(
                    f"could not reach it at {self.host}:{self.port} within {timeout:g} s: {last}"
                )
                return False
            time.sleep(max(0.0, min(step - (time.monotonic() - started), deadline - now)))

    def _run(self) -> None:
        try:
            if not self._connect():
                return
            with self._cond:
                if self._state != "connecting":  # finished before the peer was reached
                    return
            call = self._channel.stream_unary(
                METHOD_PATH, request_serializer=None, response_deserializer=None
            ).future(self._requests(), wait_for_ready=True)
            try:
                metadata = dict(call.initial_metadata() or ())
            except grpc.RpcError as exc:
                self._fail(_describe(exc))
                return
            if metadata.get(ACCEPTED_KEY) != self.peer:
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
                self._fail(_describe(exc))
                return
            with self._cond:
                if self._error is None:
                    self._state = "done"
                self._cond.notify_all()
        except Exception as exc:  # the background thread must report, never die silently
            self._fail(f"sending failed: {type(exc).__name__}: {exc}")


_REFUSALS = (
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.UNIMPLEMENTED,
)


def _describe(exc: Any) -> str:
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
        return f"connection lost (the process died or the network failed): {details}"
    return f"stream failed with {code.name}: {details}"


def _describe_call(call: Any) -> str:
    try:
        return f"{call.code().name}: {call.details()}"
    except Exception:
        return "no reason given"


__all__ = ["Outbound"]

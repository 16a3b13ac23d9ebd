"""Liveness of the gRPC link: a peer seen up that then dies before opening its stream is named
within a few seconds; a peer never seen up, or up but stuck, is not declared dead.

Parties are GrpcLinks and hand-made gRPC servers in this process on 127.0.0.1 (killed processes,
frozen processes and busy peers: ``tests/e2e/test_link_processes.py``).
"""

from __future__ import annotations

import threading
import time
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest

from veil.errors import ConfigError, PeerError
from veil.runtime.config import parse_config
from veil.transport.certs import TlsFiles, init_cluster
from veil.transport.diagnose import diagnose
from veil.transport.grpc_link import GrpcLink, GrpcOptions
from veil.transport.grpc_server import PING_PATH, SERVICE
from veil.transport.inbox import Inbox
from veil.transport.ports import free_ports

LIVE = GrpcOptions(
    connect_timeout=30.0, recv_timeout=10.0, close_timeout=2.0, retry_interval=0.1, dead_after=0.5
)
NAMES = ["alice", "bob"]


@pytest.fixture
def tls(tmp_path: Path) -> dict[str, TlsFiles]:
    return init_cluster(NAMES, tmp_path / "certs")


def _addresses() -> dict[str, tuple[str, int]]:
    return {n: ("127.0.0.1", p) for n, p in zip(NAMES, free_ports(2), strict=True)}


def _ping_as(tls: TlsFiles, target: str, port: int) -> bytes:
    """One authenticated connection check, as a starting peer's link makes it."""
    creds = grpc.ssl_channel_credentials(
        tls.ca_cert.read_bytes(), tls.key.read_bytes(), tls.cert.read_bytes()
    )
    options = [("grpc.ssl_target_name_override", target), ("grpc.use_local_subchannel_pool", 1)]
    with grpc.secure_channel(f"127.0.0.1:{port}", creds, options=options) as channel:
        ping = channel.unary_unary(PING_PATH, request_serializer=None, response_deserializer=None)
        answer: bytes = ping(b"", timeout=10.0, wait_for_ready=True)
        return answer


class _StuckServer:
    """Holds a party's port with its valid certificate but never answers the connection check."""

    def __init__(self, tls: TlsFiles, port: int) -> None:
        material = tls.load()
        self.release = threading.Event()

        def ping(request: bytes, context: Any) -> bytes:
            self.release.wait(30)
            return b""

        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=4),
            handlers=[
                grpc.method_handlers_generic_handler(
                    SERVICE, {"Ping": grpc.unary_unary_rpc_method_handler(ping)}
                )
            ],
        )
        creds = grpc.ssl_server_credentials(
            [(material.key_pem, material.cert_pem)],
            root_certificates=material.ca_pem,
            require_client_auth=True,
        )
        assert self.server.add_secure_port(f"127.0.0.1:{port}", creds) == port
        self.server.start()

    def kill(self) -> None:
        self.server.stop(0).wait(10)
        self.release.set()  # only now: a check answered before the port closed is not a death


# ------------------------------------------------------------------------------ knobs
@pytest.mark.parametrize(
    ("kwargs", "what"),
    [
        ({"keepalive_seconds": 0.5}, "keepalive_seconds"),
        ({"keepalive_timeout": 0.1}, "keepalive_timeout"),
        ({"dead_after": 0}, "dead_after"),
    ],
)
def test_liveness_options_are_checked(kwargs: dict[str, Any], what: str) -> None:
    with pytest.raises(ConfigError, match=f"GrpcOptions.{what}"):
        GrpcOptions(**kwargs)


def test_cluster_config_carries_the_liveness_knobs(tmp_path: Path) -> None:
    base: dict[str, Any] = {
        "cluster": {"ca": "ca.pem"},
        "parties": {
            "alice": {"address": "127.0.0.1:7001", "cert": "a.pem"},
            "bob": {"address": "127.0.0.1:7002", "cert": "b.pem"},
        },
    }
    default = parse_config(base, base=tmp_path)
    assert (default.keepalive, default.keepalive_timeout, default.dead_after) == (5.0, 5.0, 1.0)
    assert GrpcOptions().keepalive_seconds == default.keepalive
    assert GrpcOptions().keepalive_timeout == default.keepalive_timeout
    assert GrpcOptions().dead_after == default.dead_after
    timeouts = {"keepalive": 2, "keepalive_timeout": 3.5, "dead_after": 0.5}
    cfg = parse_config({**base, "timeouts": timeouts}, base=tmp_path)
    assert (cfg.keepalive, cfg.keepalive_timeout, cfg.dead_after) == (2.0, 3.5, 0.5)
    for bad in (
        {"keepalive": 0.2},
        {"keepalive_timeout": 0},
        {"dead_after": -1},
        {"dead_after": "x"},
    ):
        with pytest.raises(ConfigError, match=r"cluster.toml: \[timeouts\]"):
            parse_config({**base, "timeouts": bad}, base=tmp_path, source=Path("cluster.toml"))


# ----------------------------------------------------------------------------- evidence
def test_diagnose_tells_refused_from_up(tls: dict[str, TlsFiles]) -> None:
    addresses = _addresses()
    port = addresses["alice"][1]
    mine = tls["bob"].load()
    assert diagnose("alice", "127.0.0.1", port, mine).reach == "refused"
    link = GrpcLink("alice", addresses, tls["alice"], LIVE)
    try:
        assert diagnose("alice", "127.0.0.1", port, mine).reach == "up"
    finally:
        link.abort("test over")


def test_inbox_keeps_the_latest_sign_of_life() -> None:
    inbox = Inbox(
        ["bob"], default_timeout=1.0, max_pending_bytes=10, connect_deadline=0.0, connect_timeout=1
    )
    assert inbox.last_seen("bob") is None
    inbox.seen_alive("bob", 5.0)
    inbox.seen_alive("bob", 3.0)  # older evidence never hides newer
    assert inbox.last_seen("bob") == 5.0
    before = time.monotonic()
    assert inbox.connect("bob") is None
    seen = inbox.last_seen("bob")
    assert seen is not None and seen >= before


# ------------------------------------------------------------------------------ verdicts
def test_peer_seen_through_its_ping_then_refusing_is_declared_dead(
    tls: dict[str, TlsFiles],
) -> None:
    """bob reached alice (its connection check), but nothing listens at bob's address."""
    addresses = _addresses()
    alice = GrpcLink("alice", addresses, tls["alice"], LIVE)
    try:
        # never seen up: it may still be starting, so only the plain timeout applies
        with pytest.raises(PeerError, match="has not connected to us yet") as info:
            alice.recv_bytes("bob", "k", timeout=1.5)
        assert "timeout" in str(info.value)
        assert _ping_as(tls["bob"], "alice", addresses["alice"][1]) == b"alice"
        t0 = time.monotonic()
        with pytest.raises(PeerError) as info:
            alice.recv_bytes("bob", "k", timeout=20.0)
        elapsed = time.monotonic() - t0
        msg = str(info.value)
        assert info.value.party == "bob"
        assert "died before opening its stream to us" in msg
        assert f"connection refused at 127.0.0.1:{addresses['bob'][1]}" in msg
        assert "address of it in our cluster config is wrong" in msg  # we never reached it
        assert elapsed < 5.0, f"{elapsed:.1f} s"
    finally:
        alice.abort("test over")


def test_stuck_peer_is_not_dead_until_its_port_closes(tls: dict[str, TlsFiles]) -> None:
    addresses = _addresses()
    stuck = _StuckServer(tls["bob"], addresses["bob"][1])
    alice = GrpcLink("alice", addresses, tls["alice"], LIVE)
    try:
        # TLS handshakes with bob's certificate succeed: bob is up, merely slow to start
        with pytest.raises(PeerError, match="timeout"):
            alice.recv_bytes("bob", "k", timeout=2.0)
        assert alice._inbox.last_seen("bob") is not None
        stuck.kill()
        t0 = time.monotonic()
        with pytest.raises(PeerError) as info:
            alice.recv_bytes("bob", "k", timeout=20.0)
        elapsed = time.monotonic() - t0
        msg = str(info.value)
        assert "died before opening its stream to us" in msg and "connection refused" in msg
        assert "address" not in msg.split("connection refused")[1]  # we reached it ourselves
        assert elapsed < 5.0, f"{elapsed:.1f} s"
    finally:
        stuck.kill()
        alice.abort("test over")


def test_start_barrier_accepts_a_peer_that_already_finished(tmp_path: Path) -> None:
    """wait_ready as a start barrier: a peer that connected and already closed cleanly (a party
    with little to do) counts as ready; its messages are still delivered."""
    names = ["alice", "bob", "carol"]
    tls3 = init_cluster(names, tmp_path / "c3")
    addresses = {n: ("127.0.0.1", p) for n, p in zip(names, free_ports(3), strict=True)}
    links = {n: GrpcLink(n, addresses, tls3[n], LIVE) for n in names}
    try:
        links["alice"].wait_ready(10.0)
        links["alice"].send_bytes("carol", "k", b"from alice")
        links["alice"].close()
        links["carol"].wait_ready(10.0)
        assert links["carol"].recv_bytes("alice", "k") == b"from alice"
        with pytest.raises(PeerError, match="closed its link"):
            links["carol"].recv_bytes("alice", "k", timeout=5.0)
    finally:
        for link in links.values():
            link.abort("test over")


def test_start_barrier_accepts_a_peer_that_already_failed(tmp_path: Path) -> None:
    """A peer that connected and then failed (e.g. its policy refused a reveal at once) started
    its job: the barrier lets this party start its own, and the next exchange with the failed
    peer raises at once with its reason instead of waiting."""
    names = ["alice", "bob", "carol"]
    tls3 = init_cluster(names, tmp_path / "c3")
    addresses = {n: ("127.0.0.1", p) for n, p in zip(names, free_ports(3), strict=True)}
    links = {n: GrpcLink(n, addresses, tls3[n], LIVE) for n in names}
    try:
        links["alice"].wait_ready(10.0)
        links["alice"].abort("RevealDenied: refused by alice's policy")
        links["carol"].wait_ready(10.0)
        t = time.monotonic()
        with pytest.raises(PeerError, match="alice"):
            links["carol"].recv_bytes("alice", "k", timeout=20.0)
        assert time.monotonic() - t < 5.0
    finally:
        for link in links.values():
            link.abort("test over")

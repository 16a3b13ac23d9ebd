"""gRPC/mTLS link behaviour beyond the shared conformance suite: identity, refusals, limits.

Parties are GrpcLinks in threads of this process on 127.0.0.1; rogue clients write raw frames
with valid cluster certificates (see ``link_rogue.py``). Real processes: ``tests/e2e``.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from link_rogue import hello, send_raw

from veil.errors import ConfigError, PeerError
from veil.transport import frames as fr
from veil.transport.certs import TlsFiles, init_cluster
from veil.transport.diagnose import diagnose
from veil.transport.grpc_link import GrpcLink, GrpcOptions
from veil.transport.ports import free_ports

FAST = GrpcOptions(connect_timeout=3.0, recv_timeout=10.0, close_timeout=3.0, retry_interval=0.1)
LOG = "veil.transport"


class Cluster:
    """Certificates + addresses for a set of names; links are started on demand."""

    def __init__(self, names: list[str], folder: Path, options: GrpcOptions = FAST) -> None:
        self.tls = init_cluster(names, folder)
        self.ports = dict(zip(names, free_ports(len(names)), strict=True))
        self.options = options
        self.links: list[GrpcLink] = []

    def addresses(self, names: list[str]) -> dict[str, tuple[str, int]]:
        return {n: ("127.0.0.1", self.ports[n]) for n in names}

    def link(self, party: str, names: list[str], tls: TlsFiles | None = None) -> GrpcLink:
        link = GrpcLink(party, self.addresses(names), tls or self.tls[party], self.options)
        self.links.append(link)
        return link

    def close(self) -> None:
        threads = [threading.Thread(target=lk.close) for lk in self.links]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)


MakeCluster = Callable[..., Cluster]


@pytest.fixture
def make(tmp_path: Path) -> Iterator[MakeCluster]:
    made: list[Cluster] = []

    def factory(names: list[str], options: GrpcOptions = FAST, sub: str = "c") -> Cluster:
        c = Cluster(names, tmp_path / sub, options)
        made.append(c)
        return c

    yield factory
    for c in made:
        c.close()


# ------------------------------------------------------------------------------- options
@pytest.mark.parametrize(
    "kwargs",
    [
        {"connect_timeout": 0},
        {"recv_timeout": -1},
        {"chunk_bytes": 100},
        {"max_message_bytes": 0},
        {"max_pending_bytes": 10, "max_message_bytes": 100},
        {"max_queued_chunks": 0},
        {"keepalive_seconds": 0.5},
    ],
)
def test_bad_options(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError, match="GrpcOptions"):
        GrpcOptions(**kwargs)


def test_bad_addresses(tmp_path: Path) -> None:
    tls = init_cluster(["alice", "bob"], tmp_path)
    with pytest.raises(ConfigError, match="'bob'"):
        GrpcLink("alice", {"alice": ("127.0.0.1", 1), "bob": ("127.0.0.1", 0)}, tls["alice"])
    with pytest.raises(ConfigError, match="'bob'"):
        GrpcLink("alice", {"alice": ("127.0.0.1", 1), "bob": "nowhere"}, tls["alice"])  # type: ignore[dict-item]
    with pytest.raises(ConfigError, match="not in the cluster"):
        GrpcLink("carol", {"alice": ("127.0.0.1", 1), "bob": ("127.0.0.1", 2)}, tls["alice"])
    with pytest.raises(ConfigError, match="not for party 'alice'"):
        GrpcLink("alice", {"alice": ("127.0.0.1", 1), "bob": ("127.0.0.1", 2)}, tls["bob"])


def test_port_in_use_is_a_one_line_config_error(make: MakeCluster) -> None:
    c = make(["alice", "bob"])
    with socket.socket() as s:
        s.bind(("127.0.0.1", c.ports["alice"]))
        s.listen()
        with pytest.raises(ConfigError) as info:
            c.link("alice", ["alice", "bob"])
    msg = str(info.value)
    assert "\n" not in msg and "'alice'" in msg and f"127.0.0.1:{c.ports['alice']}" in msg
    c.link("alice", ["alice", "bob"])  # a link holds its port: a second one cannot share it
    with pytest.raises(ConfigError, match="in use"):
        c.link("alice", ["alice", "bob"])


# ---------------------------------------------------------------------------- connecting
def test_unreachable_peer(make: MakeCluster) -> None:
    c = make(["alice", "bob"], GrpcOptions(connect_timeout=1.0, retry_interval=0.1))
    alice = c.link("alice", ["alice", "bob"])
    t0 = time.monotonic()
    with pytest.raises(PeerError) as info:
        alice.recv_bytes("bob", "k", timeout=30.0)
    assert time.monotonic() - t0 < 5.0
    msg = str(info.value)
    assert info.value.party == "bob"
    assert f"could not reach it at 127.0.0.1:{c.ports['bob']} within 1 s" in msg
    assert "nothing listens" in msg
    with pytest.raises(PeerError, match="could not reach"):
        alice.send_bytes("bob", "k", b"x")
    with pytest.raises(PeerError, match="bob"):
        alice.wait_ready(1.0)


def test_peers_start_in_any_order(make: MakeCluster) -> None:
    c = make(["alice", "bob"])
    bob = c.link("bob", ["alice", "bob"])
    bob.send_bytes("alice", "early", b"queued before alice exists")
    time.sleep(1.0)
    alice = c.link("alice", ["alice", "bob"])
    assert alice.recv_bytes("bob", "early") == b"queued before alice exists"
    alice.wait_ready(5.0)
    bob.wait_ready(5.0)


def test_peer_with_another_cas_certificate(make: MakeCluster) -> None:
    c = make(["alice", "bob"])
    other = init_cluster(["alice", "bob"], c.tls["alice"].ca_cert.parent.parent / "other")
    alice = c.link("alice", ["alice", "bob"])
    bob = c.link("bob", ["alice", "bob"], tls=other["bob"])
    t0 = time.monotonic()
    with pytest.raises(PeerError) as info:
        alice.wait_ready()
    assert time.monotonic() - t0 < FAST.connect_timeout  # diagnosed, not timed out
    assert info.value.party == "bob"
    assert "not signed by this cluster's CA" in str(info.value)
    with pytest.raises(PeerError) as info2:
        bob.wait_ready()
    assert info2.value.party == "alice"
    assert "not signed by this cluster's CA" in str(info2.value) or "refused" in str(info2.value)


def test_valid_certificate_for_the_wrong_party(make: MakeCluster) -> None:
    names = ["alice", "bob", "carol"]
    c = make(names)
    alice = c.link("alice", names)
    # carol listens where alice's config says bob is
    wrong = {**c.addresses(names), "carol": ("127.0.0.1", c.ports["bob"])}
    wrong["bob"] = ("127.0.0.1", free_ports(1)[0])
    c.links.append(GrpcLink("carol", wrong, c.tls["carol"], FAST))
    with pytest.raises(PeerError) as info:
        alice.recv_bytes("bob", "k")
    assert info.value.party == "bob"
    assert "valid certificate for 'carol', not 'bob'" in str(info.value)


# ----------------------------------------------------------------------- rogue streams
ROGUE_CASES = {
    "garbage": ([b"\x00garbage bytes\xff" * 20], "bad magic"),
    "truncated": ([fr.control_frame(fr.Kind.BYTES, "k", b"x" * 100)[:30]], "truncated"),
    "oversized": (
        [fr.HEADER.pack(fr.MAGIC, fr.VERSION, fr.Kind.BYTES, 1, 0, 1, 1 << 40) + b"k"],
        "oversized message",
    ),
    "version": ([fr.HEADER.pack(fr.MAGIC, 9, fr.Kind.BYTES, 0, 0, 1, 0)], "version 9"),
    "pickle": ([b"\x80\x05\x95" + b"cos\nsystem\n(S'echo pwned'\ntR." * 3], "bad magic"),
}


@pytest.mark.parametrize("case", sorted(ROGUE_CASES))
def test_rogue_stream_refused_and_node_keeps_serving(
    make: MakeCluster,
    case: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    names = ["alice", "bob", "rogue"]
    c = make(names)
    alice = c.link("alice", names)
    bob = c.link("bob", names)
    frames, reason = ROGUE_CASES[case]
    with caplog.at_level(logging.ERROR, logger=LOG):
        code, details = send_raw(
            c.ports["alice"], c.tls["rogue"], "alice", [hello("rogue", "alice"), *frames]
        )
    assert code is grpc.StatusCode.INVALID_ARGUMENT and reason in details
    logged = [r.getMessage() for r in caplog.records if r.name == LOG]
    assert any("'rogue'" in m and reason in m for m in logged), logged
    with pytest.raises(PeerError, match="malformed frame"):
        alice.recv_bytes("rogue", "k", timeout=1.0)
    bob.send_array("alice", "after", np.arange(5))  # legitimate peers are still served
    np.testing.assert_array_equal(alice.recv_array("bob", "after"), np.arange(5))


def test_frame_over_the_grpc_limit(make: MakeCluster, caplog: pytest.LogCaptureFixture) -> None:
    names = ["alice", "bob", "rogue"]
    opts = GrpcOptions(connect_timeout=3.0, recv_timeout=5.0, chunk_bytes=1 << 16)
    c = make(names, opts)
    alice = c.link("alice", names)
    bob = c.link("bob", names)
    big = fr.control_frame(fr.Kind.BYTES, "k", b"x" * (1 << 20))
    with caplog.at_level(logging.ERROR, logger=LOG):
        code, _ = send_raw(
            c.ports["alice"], c.tls["rogue"], "alice", [hello("rogue", "alice"), big]
        )
        assert code is grpc.StatusCode.RESOURCE_EXHAUSTED
        with pytest.raises(PeerError, match="gRPC limit"):
            alice.recv_bytes("rogue", "k", timeout=5.0)
    assert any("'rogue'" in r.getMessage() for r in caplog.records if r.name == LOG)
    bob.send_bytes("alice", "k", b"x" * 200_000)  # chunked below the limit: fine
    assert alice.recv_bytes("bob", "k") == b"x" * 200_000


def test_stream_without_hello_or_with_a_lying_hello(
    make: MakeCluster, caplog: pytest.LogCaptureFixture
) -> None:
    names = ["alice", "r1", "r2"]
    c = make(names)
    c.link("alice", names)
    with caplog.at_level(logging.ERROR, logger=LOG):
        code, details = send_raw(
            c.ports["alice"], c.tls["r1"], "alice", [fr.control_frame(fr.Kind.BYTES, "k", b"x")]
        )
        assert code is grpc.StatusCode.INVALID_ARGUMENT and "HELLO" in details
        code, details = send_raw(c.ports["alice"], c.tls["r2"], "alice", [hello("bob", "alice")])
        assert code is grpc.StatusCode.INVALID_ARGUMENT
        assert "HELLO says 'bob'" in details and "certificate says 'r2'" in details


def test_identity_comes_from_the_certificate(
    make: MakeCluster, caplog: pytest.LogCaptureFixture
) -> None:
    c = make(["alice", "bob", "mallory"])
    c.link("alice", ["alice", "bob"])  # mallory's cert is from the CA, but not in this cluster
    with caplog.at_level(logging.ERROR, logger=LOG):
        code, details = send_raw(
            c.ports["alice"], c.tls["mallory"], "alice", [hello("bob", "alice")]
        )
    assert code is grpc.StatusCode.PERMISSION_DENIED
    assert "'mallory', who is not a party of this cluster" in details
    assert any("mallory" in r.getMessage() for r in caplog.records)


def test_second_stream_from_the_same_party_refused(make: MakeCluster) -> None:
    names = ["alice", "bob"]
    c = make(names)
    alice = c.link("alice", names)
    bob = c.link("bob", names)
    bob.wait_ready()
    code, details = send_raw(c.ports["alice"], c.tls["bob"], "alice", [hello("bob", "alice")])
    assert code is grpc.StatusCode.ALREADY_EXISTS and "already open" in details
    bob.send_bytes("alice", "k", b"still fine")
    assert alice.recv_bytes("bob", "k") == b"still fine"


def test_stream_ending_without_goodbye_fails_the_peer(make: MakeCluster) -> None:
    names = ["alice", "bob"]
    c = make(names)
    alice = c.link("alice", names)
    msg = fr.control_frame(fr.Kind.BYTES, "k", b"delivered")
    code, _ = send_raw(c.ports["alice"], c.tls["bob"], "alice", [hello("bob", "alice"), msg])
    assert code is grpc.StatusCode.OK
    assert alice.recv_bytes("bob", "k") == b"delivered"
    with pytest.raises(PeerError, match="connection lost without a goodbye"):
        alice.recv_bytes("bob", "k", timeout=5.0)


def test_pending_buffer_cap(make: MakeCluster) -> None:
    opts = GrpcOptions(
        connect_timeout=3.0, recv_timeout=5.0, max_message_bytes=1 << 20, max_pending_bytes=1 << 20
    )
    names = ["alice", "bob"]
    c = make(names, opts)
    alice = c.link("alice", names)
    bob = c.link("bob", names)
    alice.send_bytes("bob", "a", b"x" * 700_000)
    alice.send_bytes("bob", "b", b"y" * 700_000)  # "a" not read yet: over the 1 MiB buffer
    with pytest.raises(PeerError, match="receive buffer"):
        bob.recv_bytes("alice", "b")
    assert bob.recv_bytes("alice", "a") == b"x" * 700_000  # what arrived is still delivered
    with pytest.raises(PeerError):
        for _ in range(50):  # the sender learns its stream was refused
            alice.send_bytes("bob", "c", b"z")
            time.sleep(0.05)


def test_send_after_close_and_context_manager(make: MakeCluster) -> None:
    names = ["alice", "bob"]
    c = make(names)
    bob = c.link("bob", names)
    with GrpcLink("alice", c.addresses(names), c.tls["alice"], FAST) as alice:
        alice.send_bytes("bob", "k", b"v")
    assert bob.recv_bytes("alice", "k") == b"v"
    with pytest.raises(PeerError, match="closed"):
        alice.send_bytes("bob", "k", b"v")


# ------------------------------------------------------------------------------ diagnose
def test_diagnose_verdicts(make: MakeCluster, tmp_path: Path) -> None:
    c = make(["alice", "bob"])
    mine = c.tls["bob"].load()
    port = c.ports["alice"]
    verdict = diagnose("alice", "127.0.0.1", port, mine)
    assert not verdict.permanent and "nothing listens" in verdict.message
    c.link("alice", ["alice", "bob"])
    verdict = diagnose("alice", "127.0.0.1", port, mine)
    assert not verdict.permanent and "look right" in verdict.message
    # our CA trusts alice, but our own certificate comes from another CA: alice refuses it
    other = init_cluster(["bob"], tmp_path / "other")["bob"]
    mixed = TlsFiles(c.tls["bob"].ca_cert, other.cert, other.key).load()
    verdict = diagnose("alice", "127.0.0.1", port, mixed)
    assert verdict.permanent and "refused our certificate" in verdict.message
    verdict = diagnose("carol", "127.0.0.1", port, mine)
    assert verdict.permanent and "valid certificate for 'alice', not 'carol'" in verdict.message

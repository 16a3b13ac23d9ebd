"""One conformance suite for every ``Link``: in-memory and gRPC/mTLS, 2 and 3 parties.

Parties run as threads of this process; gRPC links listen on 127.0.0.1 with fresh certificates
from a per-test cluster CA. Every test asserts exact values against what was sent.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from veil.core import wire
from veil.errors import ConfigError, PeerError, ProtocolError
from veil.transport.base import Link
from veil.transport.certs import init_cluster
from veil.transport.grpc_link import GrpcLink, GrpcOptions
from veil.transport.memory import MemoryHub
from veil.transport.ports import free_ports

NAMES = ("alice", "bob", "carol")
OPTIONS = GrpcOptions(connect_timeout=15.0, recv_timeout=20.0, close_timeout=5.0)


def _grpc_cluster(names: tuple[str, ...], folder: Path, options: GrpcOptions) -> dict[str, Link]:
    tls = init_cluster(names, folder)
    for attempt in range(3):
        ports = free_ports(len(names))
        addresses = {n: ("127.0.0.1", p) for n, p in zip(names, ports, strict=True)}
        links: dict[str, Link] = {}
        try:
            for n in names:
                links[n] = GrpcLink(n, addresses, tls[n], options)
        except ConfigError:  # a free port was taken meanwhile: try other ports
            for link in links.values():
                link.abort("setup retry")
            if attempt == 2:
                raise
            continue
        for link in links.values():
            assert isinstance(link, GrpcLink)
            link.wait_ready(10.0)
        return links
    raise AssertionError("unreachable")


def make_cluster(transport: str, n: int, folder: Path, **opts: Any) -> dict[str, Link]:
    """Links of ``n`` parties over ``transport``."""
    names = NAMES[:n]
    if transport == "memory":
        hub = MemoryHub(names)
        timeout = opts.get("recv_timeout", OPTIONS.recv_timeout)
        return {p: hub.link(p, timeout=timeout) for p in names}
    options = GrpcOptions(**{**OPTIONS.__dict__, **opts})
    return _grpc_cluster(names, folder, options)


def _close_all(links: dict[str, Link]) -> None:
    threads = [threading.Thread(target=link.close) for link in links.values()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)


@pytest.fixture(
    params=[("memory", 2), ("memory", 3), ("grpc", 2), ("grpc", 3)],
    ids=["memory-2", "memory-3", "grpc-2", "grpc-3"],
)
def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Link]]:
    transport, n = request.param
    links = make_cluster(transport, n, tmp_path)
    yield links
    _close_all(links)


def run_parties(links: dict[str, Link], fn: Callable[[Link], Any]) -> dict[str, Any]:
    """Run ``fn(link)`` at every party in its own thread; re-raise the first error."""
    out: dict[str, Any] = {}
    errors: list[BaseException] = []

    def body(p: str) -> None:
        try:
            out[p] = fn(links[p])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(p,)) for p in links]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    if errors:
        raise errors[0]
    return out


# ----------------------------------------------------------------------------------- bytes
def test_bytes_every_pair(cluster: dict[str, Link]) -> None:
    payloads = [b"", b"x", bytes(range(256)) * 1000, bytearray(b"ba"), memoryview(b"mv")]

    def party(link: Link) -> dict[str, list[bytes]]:
        for peer in link.peers:
            for i, data in enumerate(payloads):
                link.send_bytes(peer, f"b{i}", data)
        got = {}
        for peer in link.peers:
            got[peer] = [link.recv_bytes(peer, f"b{i}") for i in range(len(payloads))]
        return got

    out = run_parties(cluster, party)
    for got in out.values():
        for msgs in got.values():
            assert [bytes(p) for p in payloads] == msgs
            assert all(type(m) is bytes for m in msgs)


# ---------------------------------------------------------------------------------- arrays
def _arrays() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    out: list[np.ndarray] = []
    for dt in wire.DTYPES.values():
        base = (rng.random((4, 6)) * 100).astype(dt)
        out += [
            base,
            np.asarray(base[1, 2]),  # 0-d
            np.zeros((0, 3), dtype=dt),  # empty
            base[:, ::2].T,  # non-contiguous
        ]
    out.append(np.arange(10, dtype=">i4"))  # big-endian input travels as little-endian
    out.append(np.asarray(np.uint64(2**64 - 1)))
    return out


def test_arrays_every_dtype(cluster: dict[str, Link]) -> None:
    arrays = _arrays()

    def party(link: Link) -> dict[str, list[np.ndarray]]:
        for peer in link.peers:
            for i, a in enumerate(arrays):
                link.send_array(peer, f"a{i}", a)
        return {p: [link.recv_array(p, f"a{i}") for i in range(len(arrays))] for p in link.peers}

    for got in run_parties(cluster, party).values():
        for received in got.values():
            for sent, r in zip(arrays, received, strict=True):
                assert r.shape == sent.shape
                assert r.dtype == sent.dtype.newbyteorder("<")
                np.testing.assert_array_equal(r, sent)
                assert r.flags.c_contiguous and r.flags.writeable


def test_array_is_a_copy(cluster: dict[str, Link]) -> None:
    a, b = list(cluster)[:2]
    x = np.arange(100, dtype=np.int64)
    cluster[a].send_array(b, "k", x)
    x[:] = -1  # mutating after send must not change what arrives
    np.testing.assert_array_equal(cluster[b].recv_array(a, "k"), np.arange(100))


def test_object_dtype_refused(cluster: dict[str, Link]) -> None:
    a, b = list(cluster)[:2]
    with pytest.raises(ProtocolError):
        cluster[a].send_array(b, "k", np.array([object()], dtype=object))
    with pytest.raises(ProtocolError):
        cluster[a].send_array(b, "k", np.array(["text"]))
    cluster[a].send_bytes(b, "after", b"ok")  # the link still works
    assert cluster[b].recv_bytes(a, "after") == b"ok"


# ---------------------------------------------------------------------------- keys, order
def test_keyed_out_of_order(cluster: dict[str, Link]) -> None:
    a, b = list(cluster)[:2]
    cluster[a].send_bytes(b, "k2", b"second")
    cluster[a].send_array(b, "k3", np.arange(3))
    cluster[a].send_bytes(b, "k1", b"first")
    assert cluster[b].recv_bytes(a, "k1") == b"first"
    np.testing.assert_array_equal(cluster[b].recv_array(a, "k3"), np.arange(3))
    assert cluster[b].recv_bytes(a, "k2") == b"second"


def test_fifo_per_key(cluster: dict[str, Link]) -> None:
    a, b = list(cluster)[:2]
    for i in range(200):
        cluster[a].send_bytes(b, "same", i.to_bytes(4, "little"))
    got = [int.from_bytes(cluster[b].recv_bytes(a, "same"), "little") for i in range(200)]
    assert got == list(range(200))


def test_concurrent_senders(cluster: dict[str, Link]) -> None:
    threads_per_party, per_thread = 4, 25

    def party(link: Link) -> dict[tuple[str, int], list[int]]:
        def sender(t: int) -> None:
            for i in range(per_thread):
                for peer in link.peers:
                    link.send_array(peer, f"t{t}", np.full(i + 1, i, dtype=np.int32))

        def receiver(peer: str, t: int, out: dict[tuple[str, int], list[int]]) -> None:
            vals = []
            for i in range(per_thread):
                arr = link.recv_array(peer, f"t{t}")
                assert arr.shape == (i + 1,) and (arr == i).all()
                vals.append(int(arr[0]))
            out[(peer, t)] = vals

        got: dict[tuple[str, int], list[int]] = {}
        ths = [threading.Thread(target=sender, args=(t,)) for t in range(threads_per_party)]
        ths += [
            threading.Thread(target=receiver, args=(p, t, got))
            for p in link.peers
            for t in range(threads_per_party)
        ]
        for th in ths:
            th.start()
        for th in ths:
            th.join(60)
        return got

    for got in run_parties(cluster, party).values():
        assert len(got) == threads_per_party * (len(cluster) - 1)
        assert all(v == list(range(per_thread)) for v in got.values())


# ---------------------------------------------------------------------------------- stats
def test_stats_equal_on_both_ends(cluster: dict[str, Link]) -> None:
    arr = np.arange(1000, dtype=np.float64).reshape(10, 100)
    expected_arr = len(wire.array_header(arr)) + arr.nbytes

    def party(link: Link) -> None:
        for peer in link.peers:
            link.send_bytes(peer, "s", b"12345")
            link.send_array(peer, "s-arr", arr)
        for peer in link.peers:
            link.recv_bytes(peer, "s")
            link.recv_array(peer, "s-arr")

    run_parties(cluster, party)
    for p, link in cluster.items():
        for q, st in link.stats().items():
            other = cluster[q].stats()[p]
            assert st.bytes_sent == other.bytes_recv == 5 + expected_arr
            assert st.messages_sent == other.messages_recv == 2
            assert st.bytes_recv == other.bytes_sent


# -------------------------------------------------------------------------------- failures
def test_timeout_names_peer_and_key(cluster: dict[str, Link]) -> None:
    a, b = list(cluster)[:2]
    t0 = time.monotonic()
    with pytest.raises(PeerError) as info:
        cluster[b].recv_bytes(a, "never-sent", timeout=0.3)
    assert time.monotonic() - t0 < 3.0
    assert info.value.party == a
    assert "never-sent" in str(info.value)


def test_unknown_peer(cluster: dict[str, Link]) -> None:
    link = next(iter(cluster.values()))
    with pytest.raises(ConfigError, match="mallory"):
        link.send_bytes("mallory", "k", b"x")
    with pytest.raises(ConfigError, match="mallory"):
        link.recv_bytes("mallory", "k", timeout=0.1)
    with pytest.raises(ConfigError):
        link.send_array(link.party, "k", np.zeros(1))  # not a peer of itself


def test_closed_peer(cluster: dict[str, Link]) -> None:
    a, b = list(cluster)[:2]
    cluster[a].send_bytes(b, "last", b"bye")
    cluster[a].close()
    assert cluster[b].recv_bytes(a, "last") == b"bye"  # delivered before the goodbye
    t0 = time.monotonic()
    with pytest.raises(PeerError) as info:
        cluster[b].recv_bytes(a, "more", timeout=10.0)
    assert time.monotonic() - t0 < 5.0
    assert info.value.party == a and "closed" in str(info.value)
    cluster[a].close()  # idempotent


def test_aborted_peer_wakes_blocked_receivers(cluster: dict[str, Link]) -> None:
    names = list(cluster)
    a = names[0]
    errors: dict[str, BaseException] = {}

    def wait(p: str) -> None:
        try:
            cluster[p].recv_bytes(a, "never", timeout=15.0)
        except BaseException as exc:
            errors[p] = exc

    waiting = [threading.Thread(target=wait, args=(p,)) for p in names[1:]]
    for t in waiting:
        t.start()
    time.sleep(0.3)
    t0 = time.monotonic()
    cluster[a].abort("disk on fire")
    for t in waiting:
        t.join(10)
    assert time.monotonic() - t0 < 5.0
    for p in names[1:]:
        exc = errors[p]
        assert isinstance(exc, PeerError) and exc.party == a
        assert "disk on fire" in str(exc)
    with pytest.raises(PeerError, match="disk on fire"):  # the aborting party's own receives
        cluster[a].recv_bytes(names[1], "x", timeout=5.0)


# ---------------------------------------------------------------------------------- large
def test_large_array_256mb(cluster: dict[str, Link]) -> None:
    if len(cluster) != 2:
        pytest.skip("one large transfer per transport is enough")
    a, b = list(cluster)
    x = np.arange(32 << 20, dtype=np.uint64)  # 256 MiB
    t = threading.Thread(target=cluster[a].send_array, args=(b, "big", x))
    t.start()
    y = cluster[b].recv_array(a, "big", timeout=120.0)
    t.join(60)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert np.array_equal(y, x)
    assert cluster[b].stats()[a].bytes_recv == len(wire.array_header(x)) + x.nbytes


@pytest.mark.slow
@pytest.mark.parametrize("transport", ["memory", "grpc"])
def test_2gb_array_peak_memory(transport: str, tmp_path: Path) -> None:
    psutil = pytest.importorskip("psutil")
    links = make_cluster(transport, 2, tmp_path, recv_timeout=600.0)
    try:
        nbytes = 2 << 30
        x = np.empty(nbytes // 8, dtype=np.uint64)
        x[:] = 0x0123456789ABCDEF
        x[::4097] = np.arange(x[::4097].size, dtype=np.uint64)
        proc = psutil.Process()
        base = proc.memory_info().rss
        peak = [base]
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], proc.memory_info().rss)
                time.sleep(0.01)

        sampler = threading.Thread(target=sample)
        sampler.start()
        sender = threading.Thread(target=links["alice"].send_array, args=("bob", "huge", x))
        sender.start()
        y = links["bob"].recv_array("alice", "huge", timeout=600.0)
        sender.join(600)
        done.set()
        sampler.join()
        growth = peak[0] - base
        print(f"{transport}: peak RSS growth {growth / nbytes:.3f}x of {nbytes} bytes")
        # the receiver holds exactly one copy; the sender a few chunks; nothing is doubled
        assert growth < 1.25 * nbytes, f"peak RSS grew by {growth / nbytes:.2f}x the array"
        step = 1 << 24
        for i in range(0, x.size, step):
            assert np.array_equal(x[i : i + step], y[i : i + step])
    finally:
        _close_all(links)

"""The networked link's inbox: per-key FIFO, peer states, connect deadline, pending-bytes cap."""

from __future__ import annotations

import threading
import time

import pytest

from veil.errors import PeerError
from veil.transport.frames import FrameError
from veil.transport.inbox import Inbox


def _inbox(connect_in: float = 60.0, cap: int = 100) -> Inbox:
    return Inbox(
        ["bob", "carol"],
        default_timeout=5.0,
        max_pending_bytes=cap,
        connect_deadline=time.monotonic() + connect_in,
        connect_timeout=connect_in,
    )


def test_fifo_per_key_and_pending_accounting() -> None:
    box = _inbox()
    assert box.connect("bob") is None
    for i in range(3):
        box.reserve("bob", 10)
        box.put("bob", "k", i, 10)
    with pytest.raises(FrameError, match="receive buffer of 100 bytes"):
        box.reserve("bob", 71)  # 30 waiting + 71 > 100
    box.reserve("carol", 100)  # the cap is per peer
    assert [box.get("bob", "k", 1.0) for _ in range(3)] == [(0, 10), (1, 10), (2, 10)]
    box.reserve("bob", 100)  # taking messages freed their bytes
    box.release("bob", 100)


def test_gone_peer_drains_then_fails_and_first_reason_wins() -> None:
    box = _inbox()
    box.connect("bob")
    box.reserve("bob", 1)
    box.put("bob", "k", b"x", 1)
    assert box.mark_gone("bob", "closed its link")
    assert not box.mark_gone("bob", "later reason")
    assert box.get("bob", "k", 1.0) == (b"x", 1)
    with pytest.raises(PeerError, match="closed its link") as info:
        box.get("bob", "k", 1.0)
    assert info.value.party == "bob"
    assert "already disconnected" in (box.connect("bob") or "")


def test_duplicate_connect_refused() -> None:
    box = _inbox()
    assert box.connect("bob") is None
    assert "already open" in (box.connect("bob") or "")


def test_peer_that_never_connects() -> None:
    box = _inbox(connect_in=0.3)
    box.connect("carol")
    t0 = time.monotonic()
    with pytest.raises(PeerError, match="did not connect to us within 0.3 s"):
        box.get("bob", "k", 10.0)
    assert time.monotonic() - t0 < 2.0
    assert box.wait_connected(time.monotonic() + 1.0) == ("bob", box.gone_reason("bob"))


def test_abort_wakes_blocked_receivers() -> None:
    box = _inbox()
    box.connect("bob")
    errors: list[BaseException] = []

    def wait() -> None:
        try:
            box.get("bob", "k", 10.0)
        except PeerError as exc:
            errors.append(exc)

    t = threading.Thread(target=wait)
    t.start()
    time.sleep(0.1)
    box.abort("local failure")
    t.join(2.0)
    assert not t.is_alive() and "receive aborted: local failure" in str(errors[0])


def test_wait_connected() -> None:
    box = _inbox()
    assert box.wait_connected(time.monotonic() + 0.1) == ("bob", "has not connected to us yet")
    box.connect("bob")
    box.connect("carol")
    assert box.wait_connected(time.monotonic() + 0.1) is None

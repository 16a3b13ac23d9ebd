"""Test harness for the PSI tests: run one function per party in threads over the memory link."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from veil.transport.base import Link
from veil.transport.memory import MemoryHub

Recorded = list[tuple[str, str, str, bytes]]  # (from, to, key, payload bytes)


class RecordingLink(Link):
    """A memory link that also records every payload it sends (for wire-inspection tests)."""

    def __init__(self, inner: Link, log: Recorded, lock: threading.Lock) -> None:
        super().__init__(inner.party, inner.parties)
        self.inner, self.log, self.lock = inner, log, lock

    def _record(self, to: str, key: str, payload: bytes) -> None:
        with self.lock:
            self.log.append((self.party, to, key, payload))

    def send_bytes(self, to: str, key: str, data: bytes | bytearray | memoryview) -> None:
        self._record(to, key, bytes(data))
        self.inner.send_bytes(to, key, data)

    def recv_bytes(self, frm: str, key: str, timeout: float | None = None) -> bytes:
        return self.inner.recv_bytes(frm, key, timeout)

    def send_array(self, to: str, key: str, arr: np.ndarray[Any, Any]) -> None:
        self._record(to, key, np.ascontiguousarray(arr).tobytes())
        self.inner.send_array(to, key, arr)

    def recv_array(self, frm: str, key: str, timeout: float | None = None) -> np.ndarray[Any, Any]:
        return self.inner.recv_array(frm, key, timeout)

    def close(self) -> None:
        self.inner.close()

    def abort(self, reason: str) -> None:
        self.inner.abort(reason)

    def stats(self) -> Any:
        return self.inner.stats()


def run_parties(
    parties: Sequence[str],
    fn: Callable[[Link, str], Any],
    *,
    log: Recorded | None = None,
    timeout: float = 30.0,
) -> tuple[dict[str, Any], dict[str, BaseException]]:
    """Run ``fn(link, party)`` for every party in its own thread; return results and errors.

    A party that raises aborts its link, so its peers fail fast instead of waiting.
    """
    hub = MemoryHub(parties)
    lock = threading.Lock()
    results: dict[str, Any] = {}
    errors: dict[str, BaseException] = {}

    def go(p: str) -> None:
        link: Link = hub.link(p, timeout=timeout)
        if log is not None:
            link = RecordingLink(link, log, lock)
        try:
            results[p] = fn(link, p)
        except BaseException as exc:
            errors[p] = exc
            link.abort(f"{type(exc).__name__}: {exc}")
        finally:
            link.close()

    threads = [threading.Thread(target=go, args=(p,), daemon=True) for p in parties]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout + 30)
        assert not t.is_alive(), "a party thread hung"
    return results, errors


def run_ok(parties: Sequence[str], fn: Callable[[Link, str], Any], **kw: Any) -> dict[str, Any]:
    """:func:`run_parties`, failing the test if any party raised."""
    results, errors = run_parties(parties, fn, **kw)
    if errors:
        raise next(iter(errors.values()))
    return results

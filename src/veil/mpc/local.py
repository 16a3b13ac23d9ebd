"""Run one function per party in threads over an in-memory link (tests and benchmarks).

This is the in-process twin of a cluster, like SPU's simulator: each party is a thread with
its own :class:`~veil.transport.memory.MemoryLink`; an exception in any party aborts the others
and is re-raised.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Sequence
from typing import Any

from veil.errors import PartyFailed
from veil.transport.base import Link
from veil.transport.memory import MemoryHub


class KeyCounter:
    """An SPMD key source (``next_key``) with the same contract as the runtime's context."""

    def __init__(self) -> None:
        self._count = itertools.count()
        self._lock = threading.Lock()

    def __call__(self, tag: str) -> str:
        with self._lock:
            return f"{tag}#{next(self._count)}"


class LocalParty:
    """The three attributes an MPC device needs from a context: party, link, next_key."""

    def __init__(self, party: str, link: Link) -> None:
        self.party = party
        self.link = link
        self.next_key = KeyCounter()


def run_parties(
    parties: Sequence[str], fn: Callable[[LocalParty], Any], *, timeout: float = 120.0
) -> dict[str, Any]:
    """Run ``fn(LocalParty)`` at every party in its own thread; return results by party.

    Raises
    ------
    PartyFailed
        The first party whose ``fn`` raised (the others are aborted).
    """
    hub = MemoryHub(parties)
    links = {p: hub.link(p, timeout=timeout) for p in parties}
    results: dict[str, Any] = {}
    errors: dict[str, BaseException] = {}

    def body(p: str) -> None:
        try:
            results[p] = fn(LocalParty(p, links[p]))
        except BaseException as e:
            errors[p] = e
            for q in parties:
                if q != p:
                    links[q].abort(f"party {p!r} failed: {e}")

    threads = [threading.Thread(target=body, args=(p,), name=f"mpc-{p}") for p in parties]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        first = next((p for p in parties if p in errors and "aborted" not in str(errors[p])), None)
        p = first or next(iter(errors))
        e = errors[p]
        raise PartyFailed(p, f"{type(e).__name__}: {e}") from e
    return results


__all__ = ["KeyCounter", "LocalParty", "run_parties"]

"""Message passing for MPC kernels: a thin wrapper over a :class:`~veil.transport.base.Link`.

Every kernel call takes one fresh key from ``next_key`` (a counter every party advances in the
same program order) and derives per-round sub-keys from it, so concurrent kernels never mix
their messages. Arrays are sent flattened (a 1-D frame: 16 header bytes + payload), which makes
the byte cost of a kernel an exact function of its sizes (:data:`FRAME_HEADER_BYTES`).

The wrapper also counts *rounds*: the number of times this party waited for a message that
depended on the kernel's previous messages. Kernels declare rounds and bytes
(:mod:`veil.mpc.cost`); the conformance tests compare them with these counters and the link's.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from veil.errors import PeerError
from veil.transport.base import Link

#: Header bytes of one flattened array frame (``veil.core.wire``: 8 fixed + 8 per dimension).
FRAME_HEADER_BYTES = 16


class Comm:
    """One party's messaging for one MPC device.

    Parameters
    ----------
    link:
        This party's link.
    next_key:
        SPMD-consistent key source (``ctx.next_key``).
    prefix:
        Prefix of every key (names the device).
    """

    def __init__(self, link: Link, next_key: Callable[[str], str], prefix: str) -> None:
        self.link = link
        self.party = link.party
        self._next_key = next_key
        self._prefix = prefix
        self.rounds = 0

    def key(self, tag: str) -> str:
        """A fresh key for one kernel call."""
        return self._next_key(f"{self._prefix}.{tag}")

    def send(self, to: str, key: str, arr: np.ndarray[Any, Any]) -> None:
        """Send ``arr`` (flattened) to ``to``."""
        self.link.send_array(to, key, np.ascontiguousarray(arr).reshape(-1))

    def recv(
        self, frm: str, key: str, shape: tuple[int, ...], dtype: Any = np.uint64
    ) -> np.ndarray[Any, Any]:
        """Receive an array from ``frm`` and check its size and dtype before reshaping."""
        arr = self.link.recv_array(frm, key)
        dt = np.dtype(dtype)
        count = math.prod(shape)
        if arr.dtype != dt or arr.size != count:
            raise PeerError(
                frm,
                f"sent {arr.size} {arr.dtype} values under {key!r}, expected {count} {dt}; "
                "the parties are running different programs or versions",
            )
        if not arr.flags.writeable:  # kernels update received arrays in place
            arr = arr.copy()
        return arr.reshape(shape)

    def tick(self, n: int = 1) -> None:
        """Count ``n`` communication rounds this party waited for."""
        self.rounds += n

    def exchange_sum(
        self,
        peers: Iterable[str],
        key: str,
        mine: np.ndarray[Any, Any],
        *,
        xor: bool = False,
    ) -> np.ndarray[Any, Any]:
        """Send ``mine`` to every peer and return the sum (or XOR) of all contributions.

        One round; this party sends ``len(peers)`` frames of ``mine.size`` elements.
        """
        plist = [p for p in peers if p != self.party]
        for p in plist:
            self.send(p, key, mine)
        out: np.ndarray[Any, Any] | None = None
        for p in plist:
            other = self.recv(p, key, mine.shape, mine.dtype)
            if out is None:
                out = other
            elif xor:
                out ^= other
            else:
                out += other
        if out is None:
            out = np.array(mine, copy=True)
        elif xor:
            out ^= mine
        else:
            out += mine
        self.tick()
        return out


__all__ = ["FRAME_HEADER_BYTES", "Comm"]

"""aby3 arithmetic kernels on replicated shares.

Party ``i`` holds ``(x_i, x_{i+1})``. A product is first a 3-out-of-3 additive sharing
``z_i = x_i·y_i + x_i·y_{i+1} + x_{i+1}·y_i`` (one ring product per party after folding:
``x_i·(y_i + y_{i+1}) + x_{i+1}·y_i``; two ring matmuls for a matrix product), re-randomised by a
zero sharing ``α_i = F(k_i) − F(k_{i+1})`` from pairwise PRG keys (party ``i`` holds ``k_i`` and
``k_{i+1}``). Then either

* **reshare** (integer products): send ``z_i`` to party ``i − 1`` — one round, 3 frames; or
* **truncate** (fixed point, fused): party 2 acts as the helper of a two-party truncation
  between parties 0 and 1 — it sends ``z_2 + r`` to both (``r`` a dealer-style truncation pair
  it generated), parties 0 and 1 swap ``z_0``, ``z_1`` in the same round and so learn
  ``c = x·y + r + 2^62`` (uniform to them; party 2 receives nothing), apply the pair exactly as
  semi2k's ``trunc_pair`` does, and turn the resulting two-party sharing back into a
  replicated one in a second round. Exact up to −1 in the last place, no failure probability,
  provided ``|x·y| < 2^62`` (before truncation).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from veil.core.ring import Ring
from veil.core.ringmatmul import ring_matmul
from veil.mpc.correlated.dealer import finish_trunc_pair
from veil.mpc.protocols.base import Shape, Shares

if TYPE_CHECKING:
    from veil.mpc.protocols.aby3.protocol import Aby3


def zero_mask(eng: Aby3, shape: Shape) -> Ring:
    """This party's share ``α_i`` of a fresh zero sharing (no communication)."""
    a = eng.zero_own.random_u64(shape)
    a -= eng.zero_next.random_u64(shape)
    return a


def reshare(eng: Aby3, key: str, z: Ring, shape: Shape) -> Shares:
    """Replicated shares from the masked 3-out-of-3 shares ``z_i`` (one round)."""
    assert eng.rank is not None
    prev = eng.parties[(eng.rank - 1) % 3]
    nxt = eng.parties[(eng.rank + 1) % 3]
    eng.comm.send(prev, key, z)
    z_next = eng.comm.recv(nxt, key, shape)
    eng.comm.tick()
    return (z, z_next)


def local_product(x: Shares, y: Shares) -> Ring:
    """``x_i·(y_i + y_{i+1}) + x_{i+1}·y_i``."""
    z = y[0] + y[1]
    z *= x[0]
    t = x[1] * y[0]
    z += t
    return z


def local_matmul(x: Shares, y: Shares, rank: int) -> Ring:
    """This party's term of a 3-out-of-3 sharing of ``x @ y``: five ring matmuls in all.

    The nine cross products ``x_a @ y_b`` are split so that no party repeats one: party 0
    computes ``(x_0 + x_1) @ (y_0 + y_1)`` (four terms, one matmul), party 1
    ``(x_1 + x_2) @ y_2 + x_2 @ y_1`` and party 2 ``x_0 @ y_2 + x_2 @ y_0`` (two each).
    """
    if rank == 0:
        return ring_matmul(x[0] + x[1], y[0] + y[1])
    if rank == 1:
        z = ring_matmul(x[0] + x[1], y[1])
        z += ring_matmul(x[1], y[0])
        return z
    z = ring_matmul(x[1], y[0])
    z += ring_matmul(x[0], y[1])
    return z


def from_two_party(
    eng: Aby3, key: str, w: Ring | None, shape: Shape, *, xor: bool = False
) -> Shares:
    """Replicated shares of ``w_0 + w_1`` (or ``w_0 ^ w_1``) held by parties 0 and 1 (one round).

    ``y_0`` and ``y_2`` come from the PRG streams party 2 shares with parties 0 and 1; parties 0
    and 1 swap ``w_0 − y_0`` and ``w_1 − y_2`` (uniform to each other) and both get ``y_1``.
    """
    if eng.rank is None:
        return ()
    p0, p1, _ = eng.parties
    if eng.rank == 2:
        y2 = eng.pair_own.random_u64(shape)
        y0 = eng.pair_next.random_u64(shape)
        return (y2, y0)
    assert w is not None
    y = (eng.pair_own if eng.rank == 0 else eng.pair_next).random_u64(shape)
    mine = (w ^ y) if xor else (w - y)
    other = p1 if eng.rank == 0 else p0
    eng.comm.send(other, key, mine)
    got = eng.comm.recv(other, key, shape)
    y1 = (mine ^ got) if xor else (mine + got)
    eng.comm.tick()
    return (y, y1) if eng.rank == 0 else (y1, y)


def trunc_additive(eng: Aby3, z: Ring | None, shape: Shape, bits: int) -> Shares:
    """Truncate a 3-out-of-3 sharing ``z`` (``z_i`` at party ``i``) by ``bits`` (two rounds).

    The output shares ``y_0 = F(k_0)`` (parties 0, 2) and ``y_2 = F(k_2)`` (parties 1, 2) double
    as masks. Round 1: party 0 sends ``z_0 + y_0`` to party 1 (who does not know ``k_0``),
    party 1 sends ``z_1 + y_2`` to party 0 (who does not know ``k_2``), party 2 sends
    ``z_2 − y_0 − y_2 + r`` to both, ``r`` being its private truncation mask; the sum is
    ``z + r``. Round 2: parties 0 and 1 swap ``w_0 − y_0`` and ``w_1 − y_2`` of their
    two-party result ``w`` to get ``y_1``. Every message is uniform to its receiver.
    """
    key = eng.comm.key("trunc")
    if eng.rank is None:
        return ()
    assert z is not None
    p0, p1, p2 = eng.parties
    if eng.rank == 2:
        # send the masked term first, then the pair (off the critical path of round 1)
        r = eng.sub.dealer.private_random(shape)
        y2 = eng.zero_own.random_u64(shape)
        y0 = eng.zero_next.random_u64(shape)
        masked = z + r
        masked -= y0
        masked -= y2
        eng.comm.send(p0, key + "/c", masked)
        eng.comm.send(p1, key + "/c", masked)
        eng.sub.dealer.send_trunc_pair(key + "/t", r, bits)
        return (y2, y0)
    rt, m = eng.sub.dealer.trunc_pair(key + "/t", shape, bits, private_r=True)
    other = p1 if eng.rank == 0 else p0
    mask = (eng.zero_own if eng.rank == 0 else eng.zero_next).random_u64(shape)
    mine = z + mask
    eng.comm.send(other, key + "/c", mine)
    c = eng.comm.recv(other, key + "/c", shape)
    c += mine
    c += eng.comm.recv(p2, key + "/c", shape)
    eng.comm.tick()
    c += np.uint64(1 << 62)
    k = finish_trunc_pair(c, rt, m, bits, leader=eng.rank == 0)
    k -= mask
    eng.comm.send(other, key + "/y", k)
    y1 = k + eng.comm.recv(other, key + "/y", shape)
    eng.comm.tick()
    return (mask, y1) if eng.rank == 0 else (y1, mask)


__all__ = [
    "from_two_party",
    "local_matmul",
    "local_product",
    "reshare",
    "trunc_additive",
    "zero_mask",
]

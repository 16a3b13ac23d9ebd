"""Who masks with whom and who holds whose shares: the SecAgg+ neighbour graph.

SecAgg+ (Bell et al., CCS 2020) replaces the complete graph of SecAgg (Bonawitz et al., CCS
2017) by a *random Harary graph* ``H(n, k)``: clients are put on a ring in an order drawn from a
public seed, and each is linked to the ``k/2`` nearest clients on either side. A client agrees
pairwise masks with its ``k`` neighbours and Shamir-shares its secrets among its *group*
(neighbours plus itself, ``k + 1`` holders), so per-client work and traffic grow with ``k``,
not with ``n``.

The seed is derived from the round id and the client list (:func:`graph_seed`), so every party
computes the same graph and the aggregator cannot choose it.

Degree (:func:`secure_degree`): the smallest even ``k`` such that, with threshold
``t = floor((k + 1) / 2) + 1`` per group and union bounds over the ``n`` groups,

* correctness: ``n * P[Bin(k+1, delta) > k+1-t] <= 2^-eta`` (every group keeps ``t`` live
  members when each client drops independently with probability ``delta``);
* privacy against collusion: ``n * P[Bin(k+1, gamma) >= t] <= 2^-sigma`` (no group has ``t``
  members among the corrupted fraction ``gamma`` of clients);
* connectivity: ``n * (delta + gamma)^(k/2) <= 2^-sigma`` (the honest survivors stay connected,
  so the pairwise masks only cancel in the full sum: a ring Harary graph only falls apart when
  ``k/2`` consecutive clients are all gone — conservative, two such gaps are needed).

Defaults ``sigma = 40``, ``eta = 20`` (security and correctness parameters as Bell et al. name
them; the values are our choice), ``delta = 0.2``, ``gamma = 0.1`` give ``k`` = 70 at
``n = 100``, 74 at 200, 80 at 1000, 90 at 10^4 and 100 at 10^5: ``k = O(log n)`` (the
correctness bound dominates). Up to ``n ~ 70`` the rule asks for ``k >= n - 1`` and the complete
graph is used.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

from veil.errors import ConfigError


def graph_seed(round_id: str, clients: Sequence[str]) -> bytes:
    """Public 32-byte seed of a round's graph (SHA-256 of the round id and client list)."""
    h = hashlib.sha256(b"veil-secagg/v1/graph")
    for s in (round_id, *clients):
        b = s.encode()
        h.update(len(b).to_bytes(4, "little") + b)
    return h.digest()


def _binom_tail(n: int, p: float, k: int) -> float:
    """P[Bin(n, p) >= k]."""
    if k <= 0:
        return 1.0
    return float(sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1)))


def default_threshold(group_size: int) -> int:
    """Smallest threshold strictly above half the group: ``floor(g / 2) + 1``."""
    return group_size // 2 + 1


def secure_degree(
    n: int,
    *,
    dropout_rate: float = 0.2,
    corrupt_rate: float = 0.1,
    sigma: int = 40,
    eta: int = 20,
) -> int:
    """Smallest even degree meeting the three bounds of the module docstring (``<= n - 1``)."""
    if n < 2:
        raise ConfigError(f"secure aggregation needs at least 2 clients, not {n}")
    if not (0 <= dropout_rate < 1 and 0 <= corrupt_rate < 1 and dropout_rate + corrupt_rate < 1):
        raise ConfigError(
            f"dropout_rate {dropout_rate} and corrupt_rate {corrupt_rate} must be in [0, 1) and "
            "sum below 1"
        )
    for k in range(2, n, 2):
        g = k + 1
        t = default_threshold(g)
        ok_correct = n * _binom_tail(g, dropout_rate, g - t + 1) <= 2.0**-eta
        ok_private = n * _binom_tail(g, corrupt_rate, t) <= 2.0**-sigma
        ok_connected = n * (dropout_rate + corrupt_rate) ** (k // 2) <= 2.0**-sigma
        if ok_correct and ok_private and ok_connected:
            return k
    return n - 1


def harary_neighbours(
    clients: Sequence[str], degree: int, seed: bytes
) -> dict[str, tuple[str, ...]]:
    """Neighbours of each client in a random Harary graph of even ``degree`` (complete if
    ``degree >= n - 1``). The ring order sorts clients by SHA-256(seed || name)."""
    n = len(clients)
    if len(set(clients)) != n:
        raise ConfigError(f"client names must be unique: {list(clients)}")
    if degree >= n - 1:
        return {c: tuple(o for o in clients if o != c) for c in clients}
    if degree < 2 or degree % 2:
        raise ConfigError(f"a sparse SecAgg+ graph needs an even degree >= 2, not {degree}")
    ring = sorted(clients, key=lambda c: hashlib.sha256(seed + c.encode()).digest())
    pos = {c: i for i, c in enumerate(ring)}
    order = {c: i for i, c in enumerate(clients)}
    half = degree // 2
    out: dict[str, tuple[str, ...]] = {}
    for c in clients:
        i = pos[c]
        near = {ring[(i + d) % n] for d in range(-half, half + 1) if d != 0}
        out[c] = tuple(sorted(near, key=order.__getitem__))  # in the caller's client order
    return out

"""Options of a secure-aggregation round (:class:`SecAggConfig`) and the plan derived from them.

Every party derives the same :class:`RoundPlan` (graph, threshold, fixed point) from the config,
the round id and the ordered client list; nothing in it is chosen by the aggregator.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from veil.errors import ConfigError
from veil.fl.secagg.encoding import FixedPoint, check_headroom
from veil.fl.secagg.graph import (
    default_threshold,
    graph_seed,
    harary_neighbours,
    secure_degree,
)


class GraphKind(enum.Enum):
    """Which neighbour graph to mask and share over."""

    #: SecAgg (Bonawitz et al.): everyone masks with everyone; cost O(n) per client.
    COMPLETE = "complete"
    #: SecAgg+ (Bell et al.): random Harary graph of degree O(log n) (:mod:`.graph`).
    SPARSE = "sparse"


@dataclass(frozen=True)
class SecAggConfig:
    """Options of a secure-aggregation round; every party must use the same values.

    Parameters
    ----------
    clip:
        L2 norm bound; each client scales its vector down to it (so ``|x_i| <= clip``).
    max_weight:
        ``None``: unweighted sums. Otherwise every client passes a weight in ``(0, max_weight]``;
        the sum is of ``w * clip(x)`` and the weights' sum is returned alongside.
    frac_bits, ring_bits:
        Fixed point in Z_2^ring_bits with ``frac_bits`` fractional bits (:mod:`.encoding`);
        the defaults (24, 64) leave room for ``n * clip * max_weight < 2^39``.
    graph:
        :class:`GraphKind`; ``SPARSE`` (default) falls back to complete for small rounds.
    degree:
        Override the sparse degree (even); ``None`` uses :func:`.graph.secure_degree`.
    threshold:
        Shares needed to rebuild a secret, per group of ``g`` = neighbours + self. ``None``: the
        smallest allowed, ``floor((g + colluders) / 2) + 1``. It must exceed ``(g + colluders)
        / 2``: that is what stops an aggregator that lies about who dropped, helped by
        ``colluders`` clients of the group, from rebuilding both the self-mask seed and the mask
        key of one live client (the honest clients' two kinds of answer are disjoint).
    colluders:
        How many clients of a group the aggregator may collude with while lying about dropouts
        (raises the threshold, so fewer dropouts are tolerated; see :mod:`veil.fl.secagg`).
    dropout_rate, corrupt_rate, sigma, eta:
        Assumptions and security/correctness parameters of the sparse degree rule.
    broadcast_sum:
        Send the decoded sum back to the surviving clients (they get ``None`` otherwise).
    phase_timeout:
        Seconds the aggregator waits for clients in each phase; later ones count as dropped.
    client_timeout:
        Seconds a client waits for the aggregator's next message before giving up.
    max_message_bytes:
        Upper bound on any client message besides the masked input (whose size is exact).
    """

    clip: float = 1.0
    max_weight: float | None = None
    frac_bits: int = 24
    ring_bits: int = 64
    graph: GraphKind = GraphKind.SPARSE
    degree: int | None = None
    threshold: int | None = None
    colluders: int = 0
    dropout_rate: float = 0.2
    corrupt_rate: float = 0.1
    sigma: int = 40
    eta: int = 20
    broadcast_sum: bool = False
    phase_timeout: float = 30.0
    client_timeout: float = 300.0
    max_message_bytes: int = 1 << 20

    def __post_init__(self) -> None:
        FixedPoint(self.frac_bits, self.ring_bits)  # validates the format
        if self.max_weight is not None and not self.max_weight > 0:
            raise ConfigError(f"max_weight must be positive, not {self.max_weight}")
        if not isinstance(self.graph, GraphKind):
            raise ConfigError(f"graph must be a GraphKind, not {self.graph!r}")
        if self.colluders < 0:
            raise ConfigError(f"colluders must be >= 0, not {self.colluders}")
        if self.phase_timeout <= 0 or self.client_timeout <= 0:
            raise ConfigError("timeouts must be positive")

    @property
    def fixed_point(self) -> FixedPoint:
        """The fixed-point format."""
        return FixedPoint(self.frac_bits, self.ring_bits)

    @property
    def coordinate_bound(self) -> float:
        """Largest magnitude of one encoded coordinate (clip x max weight, or the weight)."""
        if self.max_weight is None:
            return self.clip
        return self.max_weight * max(self.clip, 1.0)

    def plan(self, round_id: str, clients: Sequence[str]) -> RoundPlan:
        """The round's graph, threshold and format; raises ConfigError if unsafe."""
        names = tuple(clients)
        n = len(names)
        if n < 2:
            raise ConfigError(f"secure aggregation needs at least 2 clients, got {list(names)}")
        if len(set(names)) != n:
            raise ConfigError(f"client names must be unique: {list(names)}")
        check_headroom(n, self.coordinate_bound, self.fixed_point)
        if self.graph is GraphKind.COMPLETE:
            k = n - 1
        elif self.degree is not None:
            k = min(self.degree, n - 1)
        else:
            k = secure_degree(
                n,
                dropout_rate=self.dropout_rate,
                corrupt_rate=self.corrupt_rate,
                sigma=self.sigma,
                eta=self.eta,
            )
        nbrs = harary_neighbours(names, k, graph_seed(round_id, names))
        group = k + 1 if k < n - 1 else n
        c = self.colluders
        t = default_threshold(group + c) if self.threshold is None else self.threshold
        if not (group + c) / 2 < t <= group:
            raise ConfigError(
                f"threshold {t} must be above (g + colluders) / 2 = ({group} + {c}) / 2 and at "
                f"most the share group g = {group} (neighbours + self): lower, an aggregator "
                "lying about dropouts could collect both kinds of share of a live client; higher, "
                "no one could unmask. Raise the degree or lower colluders"
            )
        index = {c: i + 1 for i, c in enumerate(names)}
        return RoundPlan(round_id, names, nbrs, t, self.fixed_point, index)


@dataclass(frozen=True)
class RoundPlan:
    """What every party derives identically before a round.

    Attributes
    ----------
    index:
        Shamir x-coordinate of each client (1-based position in the client list).
    """

    round_id: str
    clients: tuple[str, ...]
    neighbours: dict[str, tuple[str, ...]]
    threshold: int
    fixed_point: FixedPoint
    index: dict[str, int]

    def group(self, client: str) -> tuple[str, ...]:
        """Holders of ``client``'s shares: itself and its neighbours."""
        return (client, *self.neighbours[client])

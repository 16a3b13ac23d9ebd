"""How a round's client uploads reach the server: secure (default), plain, or robust.

Each mode is a device-like value whose ``reveal_to`` runs the exchange, so the FL loop opens it
with ``ctx.reveal`` — policy-checked and written to the audit ledger like any other reveal.

- ``secure`` (default): SecAgg+ (:mod:`veil.fl.secagg`). The server learns only the sum over the
  clients that survive the round; no one sees an individual upload.
- ``plain``: each client sends its upload in the clear to the server, which sums them.
  **Insecure** — the server sees every client's update; for debugging and as the test oracle.
- ``median`` / ``trimmed_mean``: coordinate-wise robust aggregation against poisoned updates. It
  needs the plaintext updates (the server sees each), so it is not compatible with secure
  aggregation; the result is scaled to a sum so the strategies treat all modes alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

from veil.errors import DataError, PeerError, ProtocolError
from veil.fl.models import Array
from veil.fl.secagg.adapter import run_aggregator, run_client
from veil.fl.secagg.config import SecAggConfig
from veil.transport.base import Link


class Aggregation(StrEnum):
    """Aggregation mode (see module docstring)."""

    SECURE = "secure"
    PLAIN = "plain"
    MEDIAN = "median"
    TRIMMED_MEAN = "trimmed_mean"


@dataclass
class RoundSum:
    """What the server obtains: the (robust) sum of the survivors' uploads."""

    total: Array
    survivors: list[str]
    dropped: dict[str, str] = field(default_factory=dict)


@dataclass
class Uploads:
    """One round's uploads, opened only at the server through ``ctx.reveal``."""

    link: Link
    key: str
    server: str
    clients: Sequence[str]
    vector: Array | None
    dim: int
    mode: Aggregation
    secagg: SecAggConfig
    trim: float = 0.1
    timeout: float = 60.0
    #: Robust modes aggregate only the first ``robust_dims`` entries robustly (the model
    #: update); the rest (evaluation counts) are summed. ``None``: all entries.
    robust_dims: int | None = None

    @property
    def reveal_kind(self) -> str:
        return "secagg" if self.mode is Aggregation.SECURE else "plain"

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.dim,)

    @property
    def dtype(self) -> str:
        return "float64"

    def reveal_to(self, recipients: tuple[str, ...]) -> RoundSum | None:
        """Run the exchange; the server gets a :class:`RoundSum`, clients ``None``."""
        if recipients != (self.server,):
            raise ProtocolError("round uploads are revealed to the server only")
        me = self.link.party
        if me == self.server:
            return self._serve()
        if me in self.clients:
            assert self.vector is not None
            self._upload(self.vector)
        return None

    def _upload(self, vector: Array) -> None:
        if vector.shape != (self.dim,):
            raise ProtocolError(f"upload has shape {vector.shape}, expected ({self.dim},)")
        if self.mode is Aggregation.SECURE:
            run_client(
                self.link, self.key, self.link.party, self.server, self.clients, vector, self.secagg
            )
        else:
            self.link.send_array(self.server, self.key, vector)

    def _serve(self) -> RoundSum:
        if self.mode is Aggregation.SECURE:
            res = run_aggregator(self.link, self.key, self.server, self.clients, self.secagg,
                                 dim=self.dim)  # fmt: skip
            return RoundSum(np.asarray(res.total, dtype=np.float64), list(res.survivors),
                            dict(res.dropped))  # fmt: skip
        got: dict[str, Array] = {}
        dropped: dict[str, str] = {}
        for c in self.clients:
            try:
                v = self.link.recv_array(c, self.key, timeout=self.timeout)
            except PeerError as exc:
                dropped[c] = str(exc)
                continue
            if v.shape != (self.dim,) or not np.all(np.isfinite(v)):
                dropped[c] = f"excluded: upload of shape {v.shape} or non-finite values"
                continue
            got[c] = v.astype(np.float64)
        if not got:
            raise DataError(f"no usable upload this round; dropped: {dropped}")
        stack = np.stack(list(got.values()))
        total = stack.sum(axis=0)
        r = self.dim if self.robust_dims is None else self.robust_dims
        if self.mode is Aggregation.MEDIAN:
            total[:r] = np.median(stack[:, :r], axis=0) * len(got)
        elif self.mode is Aggregation.TRIMMED_MEAN:
            k = int(self.trim * len(got))
            s = np.sort(stack[:, :r], axis=0)
            kept = s[k : len(got) - k] if len(got) - 2 * k > 0 else s
            total[:r] = kept.mean(axis=0) * len(got)
        return RoundSum(total, list(got), dropped)

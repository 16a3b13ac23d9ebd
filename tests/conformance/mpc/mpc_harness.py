"""Harness of the MPC conformance suite: run a function at every party on the memory link."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from veil.core.fixedpoint import FixedPoint
from veil.mpc.engine import Engine, infer_dtype
from veil.mpc.local import LocalParty, run_parties

OWNER = "owner"


@dataclass(frozen=True)
class Setup:
    """One protocol configuration of the suite."""

    protocol: str
    parties: tuple[str, ...]
    dealer: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        extra = "".join(f"-{k}={v}" for k, v in self.options.items())
        return f"{self.protocol}-{len(self.parties)}{extra}"

    @property
    def cluster(self) -> tuple[str, ...]:
        return self.parties + ((self.dealer,) if self.dealer else ()) + (OWNER,)

    def run(
        self,
        fn: Callable[..., Any],
        *inputs: Any,
        owner: str = OWNER,
        with_stats: bool = False,
    ) -> Any:
        """Import ``inputs`` from ``owner``, run ``fn(*tensors)`` everywhere, reveal to the owner.

        ``fn`` returns a tensor or a tuple of tensors; the result is the owner's plaintext.
        """

        def body(lp: LocalParty) -> Any:
            eng = Engine(
                lp.link,
                lp.next_key,
                self.protocol,
                self.parties,
                dealer=self.dealer,
                **self.options,
            )
            ts = []
            for v in inputs:
                arr = np.asarray(v)
                ts.append(
                    eng.input(
                        owner, arr if lp.party == owner else None, arr.shape, infer_dtype(arr)
                    )
                )
            before = (eng.comm.rounds, _sent(lp))
            out = fn(*ts)
            after = (eng.comm.rounds, _sent(lp))
            outs = out if isinstance(out, tuple) else (out,)
            vals = tuple(o.reveal_to((owner,)) for o in outs)
            res = vals if isinstance(out, tuple) else vals[0]
            return res, after[0] - before[0], after[1] - before[1]

        results = run_parties(self.cluster, body)
        if not with_stats:
            return results[owner][0]
        rounds = max(r[1] for r in results.values())
        sent = sum(r[2] for r in results.values())
        return results[owner][0], rounds, sent


def _sent(lp: LocalParty) -> int:
    return sum(s.bytes_sent for s in lp.link.stats().values())


SETUPS = [
    Setup("ref", ("p0", "p1")),
    Setup("semi2k", ("p0", "p1"), "dealer"),
    Setup("semi2k", ("p0", "p1", "p2"), "dealer"),
    Setup("semi2k", ("p0", "p1", "p2", "p3", "p4"), "dealer"),
    Setup("aby3", ("p0", "p1", "p2")),
]
SECURE = [s for s in SETUPS if s.protocol != "ref"]


FX = FixedPoint()
#: One unit in the last place of the default fixed point.
ULP = FX.resolution

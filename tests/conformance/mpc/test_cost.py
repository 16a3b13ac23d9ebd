"""Every kernel's declared cost (rounds, bytes) equals what the link and the comm counted."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from mpc_harness import SETUPS, Setup

from veil.mpc.engine import Engine
from veil.mpc.local import LocalParty, run_parties
from veil.mpc.protocols.base import Cost, Protocol

SHAPE = (37, 3)
SY = (3, 5)


def _measure(
    setup: Setup, kernel: Callable[[Protocol, Any, Any], Any], declared: str, **kw: Any
) -> tuple[Cost, Cost]:
    def body(lp: LocalParty) -> tuple[int, int, Cost]:
        eng = Engine(
            lp.link,
            lp.next_key,
            setup.protocol,
            setup.parties,
            dealer=setup.dealer,
            **setup.options,
        )
        p = eng.protocol
        x = eng.input(
            setup.parties[0],
            np.ones(SHAPE) if lp.party == setup.parties[0] else None,
            SHAPE,
            "fxp64",
        )
        y = eng.input(
            setup.parties[0], np.ones(SY) if lp.party == setup.parties[0] else None, SY, "fxp64"
        )
        r0 = eng.comm.rounds
        b0 = sum(s.bytes_sent for s in lp.link.stats().values())
        kernel(p, x.shares, y.shares)
        b1 = sum(s.bytes_sent for s in lp.link.stats().values())
        return eng.comm.rounds - r0, b1 - b0, p.cost(declared, SHAPE, **kw)

    res = run_parties(setup.cluster, body)
    measured = Cost(max(r[0] for r in res.values()), sum(r[1] for r in res.values()))
    return res[setup.parties[0]][2], measured


KERNELS: dict[str, tuple[Callable[[Protocol, Any, Any], Any], dict[str, Any]]] = {
    "mul": (lambda p, x, y: p.mul(x, x, SHAPE), {}),
    "trunc": (lambda p, x, y: p.trunc(x, SHAPE, 18), {}),
    "matmul": (lambda p, x, y: p.matmul(x, y, SHAPE, SY), {"shape_y": SY}),
    "msb": (lambda p, x, y: p.msb(x, SHAPE), {}),
    "a2b": (lambda p, x, y: p.a2b(x, SHAPE), {}),
    "b2a": (lambda p, x, y: p.b2a(x, SHAPE), {}),  # any words: the cost is data-independent
}


@pytest.mark.parametrize(
    "setup",
    [*SETUPS, Setup("semi2k", ("p0", "p1"), "dealer", {"trunc": "local"})],
    ids=lambda s: s.id,
)
@pytest.mark.parametrize("name", sorted(KERNELS))
def test_declared_cost_matches_link(setup: Setup, name: str) -> None:
    kernel, kw = KERNELS[name]
    declared, measured = _measure(setup, kernel, name, **kw)
    assert declared == measured


@pytest.mark.parametrize("setup", [s for s in SETUPS if s.protocol != "ref"], ids=lambda s: s.id)
def test_fused_fixed_point_kernels(setup: Setup) -> None:
    d, m = _measure(setup, lambda p, x, y: p.mul_trunc(x, x, SHAPE, 18), "mul_trunc")
    assert d == m
    d, m = _measure(
        setup, lambda p, x, y: p.matmul_trunc(x, y, SHAPE, SY, 18), "matmul_trunc", shape_y=SY
    )
    assert d == m


@pytest.mark.parametrize("setup", SETUPS, ids=lambda s: s.id)
@pytest.mark.parametrize("owner_inside", [True, False])
def test_input_and_reveal_costs(setup: Setup, owner_inside: bool) -> None:
    owner = setup.parties[0] if owner_inside else "owner"
    to = (setup.parties[-1], "owner") if owner_inside else ("owner",)

    def body(lp: LocalParty) -> tuple[int, int, int, int, Cost, Cost]:
        eng = Engine(lp.link, lp.next_key, setup.protocol, setup.parties, dealer=setup.dealer)
        p = eng.protocol
        b0, r0 = sum(s.bytes_sent for s in lp.link.stats().values()), eng.comm.rounds
        x = p.input(owner, np.ones(SHAPE, np.uint64) if lp.party == owner else None, SHAPE)
        b1, r1 = sum(s.bytes_sent for s in lp.link.stats().values()), eng.comm.rounds
        p.reveal(x, SHAPE, to)
        b2, r2 = sum(s.bytes_sent for s in lp.link.stats().values()), eng.comm.rounds
        stats = [b1 - b0, r1 - r0, b2 - b1, r2 - r1]
        return (*stats, p.cost("input", SHAPE, owner=owner), p.cost("reveal", SHAPE, to=to))

    res = run_parties(setup.cluster, body)
    declared_in, declared_out = res[setup.parties[0]][4:]
    assert declared_in == Cost(max(r[1] for r in res.values()), sum(r[0] for r in res.values()))
    assert declared_out == Cost(max(r[3] for r in res.values()), sum(r[2] for r in res.values()))

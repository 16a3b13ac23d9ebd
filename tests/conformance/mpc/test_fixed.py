"""FixedMatrix (a secret matrix masked once, multiplied many times) vs numpy, and its cost."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from mpc_harness import SETUPS, ULP, Setup

from veil.errors import DataError, PartyFailed
from veil.mpc.engine import Engine
from veil.mpc.fixed import FixedMatrix
from veil.mpc.local import LocalParty, run_parties
from veil.mpc.protocols.base import Cost, selected_shape

rng = np.random.default_rng(99)
X = rng.standard_normal((40, 5))
W = rng.standard_normal(5)
G = rng.standard_normal((12, 2))
IDX = rng.permutation(40)[:12]

ALL = [*SETUPS, Setup("semi2k", ("p0", "p1"), "dealer", {"trunc": "local"})]


@pytest.mark.parametrize("setup", ALL, ids=lambda s: s.id)
def test_reused_mask_products_equal_numpy(setup: Setup) -> None:
    def fn(x: Any, w: Any, g: Any) -> tuple[Any, ...]:
        fx = FixedMatrix(x)
        outs = []
        for step in range(3):  # the same mask serves every step, with fresh other operands
            rows = slice(10 * step, 10 * step + 12)
            z = fx.matmul(w * float(step + 1), rows)
            outs += [z, fx.matmul(g, rows, transpose=True, extra_bits=2)]
        outs += [
            fx.matmul(g, IDX, transpose=True),
            fx.matmul(w),
            fx.matmul(g[:, 0], IDX, transpose=True),
        ]
        return tuple(outs)

    got = setup.run(fn, X, W, G)
    want = []
    for step in range(3):
        xb = X[10 * step : 10 * step + 12]
        want += [xb @ (W * (step + 1)), xb.T @ G / 4]
    want += [X[IDX].T @ G, X @ W, X[IDX].T @ G[:, 0]]
    for g_, w_ in zip(got, want, strict=True):
        assert g_.shape == w_.shape
        assert np.max(np.abs(g_ - w_)) <= 40 * ULP


@pytest.mark.parametrize("setup", [s for s in ALL if s.protocol != "ref"], ids=lambda s: s.id)
def test_declared_cost_matches_link(setup: Setup) -> None:
    rows, sy = slice(3, 15), (12, 2)
    sel = selected_shape(X.shape, rows, True)

    def body(lp: LocalParty) -> tuple[int, int, int, int, Cost, Cost]:
        eng = Engine(
            lp.link, lp.next_key, setup.protocol, setup.parties, dealer=setup.dealer,
            **setup.options,
        )  # fmt: skip
        p0 = setup.parties[0]
        x = eng.input(p0, X if lp.party == p0 else None, X.shape, "fxp64")
        g = eng.input(p0, G if lp.party == p0 else None, sy, "fxp64")
        p = eng.protocol
        r0, b0 = eng.comm.rounds, sum(s.bytes_sent for s in lp.link.stats().values())
        fx = p.fix(x.shares, X.shape)
        r1, b1 = eng.comm.rounds, sum(s.bytes_sent for s in lp.link.stats().values())
        p.fixed_matmul_trunc(fx, rows, True, g.shares, sy, 18)
        r2, b2 = eng.comm.rounds, sum(s.bytes_sent for s in lp.link.stats().values())
        stats = [r1 - r0, b1 - b0, r2 - r1, b2 - b1]
        return (
            *stats,
            p.cost("fix", X.shape),
            p.cost("fixed_matmul_trunc", sel, shape_y=sy),
        )

    res = run_parties(setup.cluster, body)
    d_fix, d_mm = res[setup.parties[0]][4:]
    assert d_fix == Cost(max(r[0] for r in res.values()), sum(r[1] for r in res.values()))
    assert d_mm == Cost(max(r[2] for r in res.values()), sum(r[3] for r in res.values()))
    if setup.protocol == "semi2k" and not setup.options:
        # the reuse pays off: the product opens only |y|, not |x[rows]| + |y|
        full = res[setup.parties[0]][4]
        assert d_mm.bytes < p_matmul_bytes(setup, sel, sy) and full.rounds == 1


def p_matmul_bytes(setup: Setup, sx: tuple[int, ...], sy: tuple[int, ...]) -> int:
    def body(lp: LocalParty) -> int:
        eng = Engine(lp.link, lp.next_key, setup.protocol, setup.parties, dealer=setup.dealer)
        return eng.protocol.cost("matmul_trunc", sx, shape_y=sy).bytes

    return int(run_parties(setup.cluster, body)[setup.parties[0]])


def test_bad_rows_and_shapes_raise() -> None:
    setup = SETUPS[1]
    with pytest.raises((DataError, PartyFailed)):
        setup.run(lambda x, w: FixedMatrix(x).matmul(w, slice(0, 10, 2)), X, W)
    with pytest.raises((DataError, PartyFailed)):
        setup.run(lambda x, w: FixedMatrix(x).matmul(w, slice(0, 10), transpose=True), X, W)
    with pytest.raises((DataError, PartyFailed)):
        setup.run(lambda x, w: FixedMatrix(x[0]).matmul(w), X, W)

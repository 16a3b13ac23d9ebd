"""A2B / B2A: the boolean sharing reconstructs to the bits, and B2A inverts A2B exactly."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from mpc_harness import SETUPS, Setup

from veil.mpc.engine import Engine
from veil.mpc.local import LocalParty, run_parties

rng = np.random.default_rng(11)


def _run(setup: Setup, values: np.ndarray) -> dict[str, Any]:
    shape = values.shape

    def body(lp: LocalParty) -> Any:
        eng = Engine(lp.link, lp.next_key, setup.protocol, setup.parties, dealer=setup.dealer)
        p = eng.protocol
        owner = setup.parties[0]
        x = p.input(owner, values.view(np.uint64) if lp.party == owner else None, shape)
        b = p.a2b(x, shape)
        back = p.b2a(b, shape)
        return b, p.reveal(back, shape, (owner,))

    return run_parties(setup.cluster, body)


def _xor_bits(setup: Setup, res: dict[str, Any]) -> np.ndarray:
    shares = [res[p][0] for p in setup.parties]
    if setup.protocol == "ref":
        return shares[0][0]
    if setup.protocol == "aby3":
        return shares[0][0] ^ shares[1][0] ^ shares[2][0]
    out = shares[0][0].copy()
    for s in shares[1:]:
        out ^= s[0]
    return out


@pytest.mark.parametrize("setup", SETUPS, ids=lambda s: s.id)
def test_a2b_bits_and_b2a_roundtrip(setup: Setup) -> None:
    v = rng.integers(-(2**63), 2**63 - 1, 3000, dtype=np.int64)
    v[:4] = [0, -1, 2**63 - 1, -(2**63)]
    res = _run(setup, v)
    assert np.array_equal(_xor_bits(setup, res), v.view(np.uint64))
    assert np.array_equal(res[setup.parties[0]][1], v.view(np.uint64))

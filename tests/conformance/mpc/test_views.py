"""What each party sees: every array a party receives during a kernel looks uniform, whatever
the secret, and the dealer / aby3's helper receive nothing data-dependent."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from mpc_harness import SECURE, Setup

import veil.mpc as vm
from veil.mpc.engine import Engine
from veil.mpc.local import LocalParty, run_parties

N = 4000


def _views(setup: Setup, value: float) -> dict[str, list[np.ndarray]]:
    """Arrays each party received while computing on a secret that is all ``value``."""

    def body(lp: LocalParty) -> list[np.ndarray]:
        eng = Engine(lp.link, lp.next_key, setup.protocol, setup.parties, dealer=setup.dealer)
        owner = setup.parties[0]
        x = eng.input(owner, np.full(N, value) if lp.party == owner else None, (N,), "fxp64")
        seen: list[np.ndarray] = []
        recv = lp.link.recv_array

        def spy(frm: str, key: str, timeout: Any = None) -> np.ndarray:
            arr = recv(frm, key, timeout)
            seen.append(arr.copy())
            return arr

        lp.link.recv_array = spy  # type: ignore[method-assign]
        y = x * x + 1.0
        _ = vm.sigmoid(y) > 0.3
        _ = x @ np.ones((N, 2))
        return seen

    return run_parties(setup.cluster, body)


def _top_bit_rate(arrays: list[np.ndarray]) -> float:
    bits = [(a.astype(np.uint64) >> np.uint64(a.dtype.itemsize * 8 - 1)) for a in arrays if a.size]
    return float(np.mean(np.concatenate(bits)))


@pytest.mark.parametrize("setup", SECURE, ids=lambda s: s.id)
def test_received_values_look_uniform(setup: Setup) -> None:
    for value in (0.0, 1000.0):
        views = _views(setup, value)
        if setup.dealer:
            assert views[setup.dealer] == []  # the dealer only sends
        for p in setup.parties:
            words = [a for a in views[p] if a.dtype == np.uint64]
            assert words, p
            # for a structured secret (all equal) every received word is still a fair coin
            assert 0.47 < _top_bit_rate(words) < 0.53, (p, value)

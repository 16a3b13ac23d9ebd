"""The MPC device through the real runtime: veil.simulate over memory and over gRPC processes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import veil
import veil.mpc as vm

X = np.arange(6, dtype=np.float64).reshape(2, 3) / 3 - 0.5
Y = np.array([0.5, -1.0, 2.0])


def job(ctx: Any) -> dict[str, Any]:
    alice, bob, carol, dealer = ctx.parties("alice", "bob", "carol", "dealer")
    out: dict[str, Any] = {}
    devices = {
        "aby3": ctx.mpc("aby3", parties=(alice, bob, carol)),
        "semi2k": ctx.mpc("semi2k", parties=(alice, bob), dealer=dealer),
    }
    for name, mpc in devices.items():
        xs = alice(lambda: X)().to(mpc)
        ys = carol(lambda: Y)().to(mpc)  # carol owns y; for semi2k she is outside the MPC
        s = vm.sigmoid(xs @ ys)
        out[name] = (ctx.reveal(s, to=alice), ctx.reveal(s > 0.5, to=[alice, carol]))
    return out


def _check(res: dict[str, Any]) -> None:
    want = 1 / (1 + np.exp(-(X @ Y)))
    for name in ("aby3", "semi2k"):
        s, b = res["alice"][name]
        assert np.max(np.abs(s - want)) <= 5e-4
        assert np.array_equal(b, (want > 0.5).astype(np.int64))
        assert np.array_equal(res["carol"][name][1], b)
        assert res["bob"][name] == (None, None)


def test_simulate_memory() -> None:
    _check(veil.simulate(job, ["alice", "bob", "carol", "dealer"]))


@pytest.mark.e2e
def test_simulate_grpc_processes() -> None:
    _check(veil.simulate(job, ["alice", "bob", "carol", "dealer"], transport="grpc"))

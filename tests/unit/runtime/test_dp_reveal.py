"""DP releases through ctx.reveal: noise at the owner, budget enforced, ε in every ledger."""

import numpy as np
import pytest

import veil
from veil.dp import DPSpec
from veil.errors import PartyFailed

PARTIES = ["hospital", "analyst"]


def count_job(ctx, releases=1, epsilon=0.5):
    h, a = ctx.parties()
    counts = h(lambda: np.array([120.0, 45.0, 3.0]))()
    out = None
    for _ in range(releases):
        out = ctx.reveal(counts, to=a, tag="stats.counts", dp=DPSpec.histogram(epsilon))
    return out


def test_noisy_release_and_ledger(tmp_path):
    res = veil.simulate_detailed(
        count_job, PARTIES, privacy_budget=(1.0, 1e-6), ledger_dir=tmp_path
    )
    noisy = res.results["analyst"]
    assert noisy.shape == (3,) and not np.array_equal(noisy, [120.0, 45.0, 3.0])
    assert np.all(np.abs(noisy - [120.0, 45.0, 3.0]) < 60)  # Laplace scale 2 (b = 1 / 0.5)
    for p in PARTIES:
        (e,) = res.ledgers[p]
        assert e["event"] == "dp_release" and e["dp"]["epsilon"] == pytest.approx(0.5)
    assert res.ledgers["hospital"][0]["dp"]["spent"][0] == pytest.approx(0.5, rel=0.1)


def test_budget_refusal_sends_nothing():
    with pytest.raises(PartyFailed, match="PrivacyBudgetExceeded"):
        veil.simulate(
            count_job, PARTIES, params={"releases": 3}, privacy_budget=(1.0, 1e-6), timeout=10
        )


def test_dp_on_device_values_is_refused():
    def job(ctx):
        a, b, c = ctx.parties()
        mpc = ctx.mpc("aby3", parties=(a, b, c))
        x = a(lambda: np.ones(2))().to(mpc)
        ctx.reveal(x, dp=DPSpec.count(1.0))

    with pytest.raises(PartyFailed, match="needs a party's own aggregate"):
        veil.simulate(job, ["a", "b", "c"], timeout=10)

"""PrivacyBudget: refusal leaves nothing spent; ledger entries are plain JSON; units don't mix."""

from __future__ import annotations

import json
import threading

import dp_accounting as dpa
import numpy as np
import pytest

from veil.dp import DPSpec, PrivacyBudget, release
from veil.dp.fedavg import dpfedavg_round_event
from veil.dp.spec import DPEventRecord, EventKind
from veil.errors import ConfigError, DataError, PrivacyBudgetExceeded


def _laplace(eps: float, unit: str = "record") -> DPEventRecord:
    return DPEventRecord(EventKind.LAPLACE, "laplace", eps, 0.0, 1.0, 1 / eps, 1 / eps, unit=unit)


def test_refusal_spends_nothing() -> None:
    budget = PrivacyBudget(1.0, 0.0)
    budget.spend(_laplace(0.6))
    before = budget.spent()
    with pytest.raises(PrivacyBudgetExceeded, match="over the budget"):
        budget.spend(_laplace(0.5))
    with pytest.raises(PrivacyBudgetExceeded):
        budget.check(_laplace(0.5))
    assert budget.spent() == before == (pytest.approx(0.6), 0.0)
    assert len(budget.events) == 1
    budget.spend(_laplace(0.4))  # exactly fits
    assert budget.spent()[0] == pytest.approx(1.0)


def test_spend_composes_all_events_through_the_accountant() -> None:
    delta = 1e-5
    budget = PrivacyBudget(10.0, delta, "rdp", unit="client")
    rnd = dpfedavg_round_event(1.2, 0.1, clip_norm=1.0, delta=delta)
    entries = [budget.spend(rnd) for _ in range(8)]
    acc = dpa.rdp.RdpAccountant()
    acc.compose(dpa.PoissonSampledDpEvent(0.1, dpa.GaussianDpEvent(1.2)), 8)
    assert budget.spent() == (pytest.approx(float(acc.get_epsilon(delta)), rel=1e-12), delta)
    spent = [e["epsilon_spent"] for e in entries]
    assert spent == sorted(spent) and spent[-1] == budget.spent()[0]  # reported every round


def test_ledger_entry_is_plain_json() -> None:
    budget = PrivacyBudget(2.0, 1e-6, "pld")
    _, rec = release(np.array([3.0, 4.0]), DPSpec.sum(1.0, 0, 1, delta=1e-7, shape=(2,)))
    entry = budget.spend(rec)
    back = json.loads(json.dumps(entry))
    assert back["mechanism"] == "gaussian" and back["shape"] == [2]
    for key in ("epsilon", "delta", "sensitivity", "noise_scale", "epsilon_spent", "accountant"):
        assert key in back
    assert back["epsilon_spent"] <= 2.0


def test_gaussian_cannot_fit_a_pure_budget() -> None:
    budget = PrivacyBudget(100.0, 0.0)
    _, rec = release(1.0, DPSpec.count(1.0, delta=1e-6))
    with pytest.raises(PrivacyBudgetExceeded):
        budget.spend(rec)
    assert budget.spent() == (0.0, 0.0)


def test_units_do_not_mix_and_bad_budgets_are_refused() -> None:
    budget = PrivacyBudget(1.0, 1e-5, unit="client")
    with pytest.raises(ConfigError, match="unit"):
        budget.spend(_laplace(0.1, unit="record"))
    for eps, delta in [(0.0, 1e-5), (float("inf"), 1e-5), (1.0, 1.0), (1.0, -0.1)]:
        with pytest.raises(ConfigError):
            PrivacyBudget(eps, delta)
    with pytest.raises(ConfigError):
        PrivacyBudget(1.0, 1e-5, "moments")


def test_concurrent_spends_never_overshoot() -> None:
    budget = PrivacyBudget(1.0, 0.0)
    refused: list[int] = []

    def worker() -> None:
        for _ in range(5):
            try:
                budget.spend(_laplace(0.1))
            except PrivacyBudgetExceeded:
                refused.append(1)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(budget.events) == 10 and len(refused) == 10
    assert budget.spent()[0] == pytest.approx(1.0)


def test_release_with_budget_spends_first_and_refuses_before_noise() -> None:
    budget = PrivacyBudget(1.0, 1e-6, "pld")
    value, rec = release(np.ones(3), DPSpec.histogram(1.0, delta=1e-6), budget=budget)
    assert value.shape == (3,)
    # PLD charges a single Gaussian release its analytic epsilon, so the budget is exactly full
    assert budget.spent()[0] == pytest.approx(1.0, rel=1e-9)
    assert budget.events == (rec,)
    with pytest.raises(PrivacyBudgetExceeded):
        release(np.ones(3), DPSpec.histogram(0.01, delta=1e-7), budget=budget)
    assert len(budget.events) == 1


def test_checkpoint_round_trip_keeps_the_spent_epsilon() -> None:
    budget = PrivacyBudget(3.0, 1e-5, "rdp", unit="client")
    rnd = dpfedavg_round_event(1.5, 0.2, clip_norm=1.0, delta=1e-5, shape=(4,))
    for _ in range(5):
        budget.spend(rnd)
    state = json.loads(json.dumps(budget.state()))
    resumed = PrivacyBudget.from_state(state)
    assert resumed.spent() == budget.spent()
    assert resumed.events == budget.events
    assert resumed.check(rnd) == budget.check(rnd)
    # records also rebuild from ledger entries
    entry = budget.spend(rnd)
    assert DPEventRecord.from_dict(entry) == rnd


def test_corrupt_checkpoints_are_refused() -> None:
    budget = PrivacyBudget(1.0, 0.0)
    budget.spend(_laplace(0.9))
    state = budget.state()
    state["epsilon"] = 0.5  # edited to a smaller budget than already spent
    with pytest.raises(DataError, match="over its own budget"):
        PrivacyBudget.from_state(state)
    bad = budget.state()
    bad["events"][0]["surprise"] = 1
    with pytest.raises(DataError, match="unknown"):
        PrivacyBudget.from_state(bad)
    with pytest.raises(DataError):
        PrivacyBudget.from_state({"epsilon": 1.0})

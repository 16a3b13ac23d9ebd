"""Sample-level DP-SGD through opacus, accounted by dp-accounting (skipped without torch/opacus)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("opacus")

from veil.dp import PrivacyBudget  # noqa: E402
from veil.dp.opacus_adapter import DPSGDTrainer  # noqa: E402


def _setup() -> tuple:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 5, generator=g)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32)
    model = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    return model, opt, loader, x, y


def test_dpsgd_trains_and_is_accounted_by_dp_accounting() -> None:
    model, opt, loader, x, y = _setup()
    tr = DPSGDTrainer(model, opt, loader, noise_multiplier=1.0, max_grad_norm=1.0)
    assert tr.sample_rate == pytest.approx(1 / 8)
    loss_fn = torch.nn.CrossEntropyLoss()
    for _ in range(4):
        for xb, yb in tr.data_loader:
            if len(xb) == 0:
                continue
            tr.optimizer.zero_grad()
            loss_fn(tr.module(xb), yb).backward()
            tr.optimizer.step()
    assert tr.steps > 0
    with torch.no_grad():
        acc = float((tr.module(x).argmax(1) == y).float().mean())
    assert acc > 0.7  # learns despite the noise (separable data)
    eps = tr.epsilon(1e-5)
    # dp-accounting's RDP agrees with opacus' own RDP (their order grids differ slightly)
    assert eps == pytest.approx(tr.opacus_epsilon(1e-5), rel=0.02)
    budget = PrivacyBudget(100.0, 1e-5, unit="record")
    for rec in tr.events(1e-5):
        entry = budget.spend(rec)
        assert entry["mechanism"] == "dp-sgd"
    assert budget.spent()[0] == pytest.approx(eps, rel=1e-9)

"""Public API surface: no import-time side effects, actionable errors without the extras."""

from __future__ import annotations

import json
import subprocess
import sys
from types import ModuleType

import pytest

import veil.dp
from veil.dp import DistributedNoise, _deps, opacus_adapter
from veil.dp.fedavg import dpfedavg_round_event
from veil.errors import ConfigError


def test_import_loads_no_optional_dependency() -> None:
    code = (
        "import sys, veil.dp, veil.dp.opacus_adapter; "
        "print(sorted(m for m in ('opendp', 'dp_accounting', 'torch', 'opacus') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _missing(name: str) -> ModuleType:
    raise ImportError(f"No module named {name!r}")


def test_missing_extras_name_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_deps, "import_module", _missing)
    with pytest.raises(ConfigError, match=r"pip install 'veil\[dp\]'"):
        _deps.dp_accounting()
    with pytest.raises(ConfigError, match=r"pip install 'veil\[dp\]'"):
        _deps.opendp()
    monkeypatch.setattr(opacus_adapter, "import_module", _missing)
    with pytest.raises(ConfigError, match=r"pip install 'veil\[dp,torch\]'"):
        opacus_adapter.DPSGDTrainer(None, None, None, noise_multiplier=1.0, max_grad_norm=1.0)


def test_every_record_kind_is_plain_json() -> None:
    dn = DistributedNoise(1.0, 1.0, 2.0**8, 10, 3)
    records = [
        dn.event(3, 1e-5),
        dpfedavg_round_event(1.0, 0.5, clip_norm=1.0, delta=1e-5),
        veil.dp.release(1.0, veil.dp.DPSpec.count(1.0))[1],
    ]
    for rec in records:
        d = rec.to_dict()
        assert json.loads(json.dumps(d, allow_nan=False)) == d
        assert {"mechanism", "epsilon", "delta", "sensitivity", "noise_scale", "shape"} <= set(d)
    assert records[0].to_dict()["rho"] == pytest.approx(0.5)


def test_records_rebuild_from_their_dicts() -> None:
    from veil.dp import DPEventRecord

    dn = DistributedNoise(1.0, 1.0, 2.0**8, 10, 3)
    for rec in (dn.event(4, 1e-6, rounds=3), veil.dp.release(2.0, veil.dp.DPSpec.count(0.3))[1]):
        assert DPEventRecord.from_dict(json.loads(json.dumps(rec.to_dict()))) == rec

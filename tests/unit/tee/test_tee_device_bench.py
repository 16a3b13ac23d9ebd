"""``veil bench tee`` produces its records, and the TEE's LR equals the anchors' numpy loop."""

from __future__ import annotations

import pytest

from veil.bench.tee import run, run_lr_mpc
from veil.errors import ConfigError


def test_verify_records_per_platform() -> None:
    recs = list(run(("verify",), repeats=2))
    assert [r["impl"] for r in recs] == [
        "veil-tee-verify-sgx",
        "veil-tee-verify-tdx",
        "veil-tee-verify-sev-snp",
        "veil-tee-verify-nitro",
        "veil-tee-verify-sim",
    ]
    assert all(r["bench"] == "tee.verify" and 0 < r["seconds"] < 1 for r in recs)


def test_lr_in_the_simulated_enclave_equals_the_anchors_numpy_loop() -> None:
    numpy_rec, tee_rec = run(("lr",), lr_repeats=1)
    assert numpy_rec["impl"] == "veil-numpy-f32" and tee_rec["impl"] == "veil-tee-sim"
    assert tee_rec["n"] == numpy_rec["n"] == 100_000
    assert tee_rec["max_abs_err"] == 0.0  # same float32 operations in the same order
    assert tee_rec["auc"] == numpy_rec["auc"] > 0.85
    assert tee_rec["bytes"] > 100_000 * 15 * 4  # ext1's 15 float32 columns crossed the link
    assert tee_rec["assurance"] == "simulated: as trusted as a third party"


def test_unknown_part_is_refused() -> None:
    with pytest.raises(ConfigError, match="unknown tee benchmark parts"):
        list(run(("speed",)))


def test_the_mpc_comparison_comes_from_veils_ss_lr() -> None:
    (rec,) = run_lr_mpc(("semi2k",), rows=2048, epochs=1)
    assert rec["impl"] == "veil-semi2k" and rec["engine"] == "mpc" and rec["n"] == 2048
    assert rec["max_abs_err"] < 1e-3  # fixed point vs the numpy float32 loop

"""The HE benchmark runs on the anchors' inputs and checks its own result exactly."""

from __future__ import annotations

import pytest

from veil.bench import he as bench
from veil.bench.common import anchors_dir
from veil.errors import ConfigError

pytestmark = pytest.mark.skipif(
    not (anchors_dir() / "inputs.py").exists(), reason="anchors' inputs.py not available"
)


def test_histogram_small_is_exact() -> None:
    (rec,) = bench.run("he.histogram", scheme="ou", n=300, threads=1)  # default: g, h packed
    assert rec["impl"] == "veil-ou-pack2" and rec["n"] == 300
    assert rec["max_abs_err"] == 0 and rec["rounds"] == 2 and rec["ciphertexts"] == 300
    assert rec["bytes"] > 300 * 256


def test_histogram_unpacked_is_exact() -> None:
    (rec,) = bench.run("he.histogram", scheme="ou", n=100, threads=1, pack=1)
    assert rec["impl"] == "veil-ou" and rec["max_abs_err"] == 0
    assert rec["ciphertexts"] == 200


def test_encrypt_small_is_exact() -> None:
    (rec,) = bench.run("he.encrypt", scheme="ou", n=50, threads=1, repeats=1, pack=4)
    assert rec["impl"] == "veil-ou-pack4" and rec["max_abs_err"] == 0
    assert rec["ciphertexts"] == 13


def test_unknown_names_are_refused() -> None:
    with pytest.raises(ConfigError):
        next(bench.run("he.nope"))
    with pytest.raises(ConfigError):
        next(bench.run("he.encrypt", scheme="rsa"))

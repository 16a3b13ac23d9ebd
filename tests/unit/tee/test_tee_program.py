"""Program identity: canonical source bundle, not pickled bytes."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from veil.errors import ConfigError
from veil.tee import ProgramBundle
from veil.tee.program import normalize_source


def train(x: list[float]) -> float:
    return sum(x) / len(x)


def score(x: list[float]) -> float:
    return max(x)


def test_known_answer() -> None:
    bundle = ProgramBundle(
        functions=(("m.f", "def f():\n    return 1\n"),),
        dependencies=(("NumPy", "2.0.0"),),
        veil_version="0.1.0",
    )
    assert bundle.canonical_bytes() == (
        b'{"dependencies":[["numpy","2.0.0"]],"format":"veil/program/v1",'
        b'"functions":[["m.f","def f():\\n    return 1\\n"]],"veil":"0.1.0"}'
    )
    assert bundle.digest() == hashlib.sha256(bundle.canonical_bytes()).digest()
    assert bundle.digest().hex() == (
        "217164b9a3d8b7e2b4c083bb6c173e69e2a780501a7a5a153a18c3d68cb5e315"
    )


def test_order_and_whitespace_do_not_matter_but_source_does() -> None:
    a = ProgramBundle.from_functions(
        [train, score], dependencies={"numpy": "2.0"}, veil_version="1"
    )
    b = ProgramBundle.from_functions(
        [score, train], dependencies={"numpy": "2.0"}, veil_version="1"
    )
    assert a.digest() == b.digest()
    crlf = ProgramBundle(
        functions=tuple((n, s.replace("\n", "  \r\n")) for n, s in a.functions),
        dependencies=a.dependencies,
        veil_version="1",
    )
    assert crlf.digest() == a.digest()
    changed = ProgramBundle(
        functions=((a.functions[0][0], a.functions[0][1].replace("max", "min")), a.functions[1]),
        dependencies=a.dependencies,
        veil_version="1",
    )
    assert changed.digest() != a.digest()
    assert (
        ProgramBundle.from_functions(
            [train, score], dependencies={"numpy": "2.1"}, veil_version="1"
        ).digest()
        != a.digest()
    )
    assert ProgramBundle.from_functions([train, score], veil_version="2").digest() != (
        ProgramBundle.from_functions([train, score], veil_version="1").digest()
    )


def test_installed_versions_are_locked() -> None:
    import numpy

    bundle = ProgramBundle.from_functions([train], dependencies=["numpy"])
    assert ("numpy", numpy.__version__) in bundle.dependencies
    with pytest.raises(ConfigError, match="not installed"):
        ProgramBundle.from_functions([train], dependencies=["no-such-dist-veil"])


def test_functions_whose_source_is_not_their_behaviour_are_refused() -> None:
    factor = 3

    def closure(x: int) -> int:
        return x * factor

    with pytest.raises(ConfigError, match="lambda"):
        ProgramBundle.from_functions([lambda x: x], veil_version="1")
    with pytest.raises(ConfigError, match="captures"):
        ProgramBundle.from_functions([closure], veil_version="1")
    with pytest.raises(ConfigError, match="plain Python"):
        ProgramBundle.from_functions([len], veil_version="1")
    with pytest.raises(ConfigError, match="at least one"):
        ProgramBundle(functions=(), dependencies=(), veil_version="1")
    with pytest.raises(ConfigError, match="duplicate"):
        ProgramBundle(functions=(("a", "x"), ("a", "y")), dependencies=(), veil_version="1")


def test_same_hash_in_a_fresh_interpreter(tmp_path: Path) -> None:
    src = textwrap.dedent(
        """
        import sys
        sys.path.insert(0, sys.argv[1])
        from veil.tee import ProgramBundle
        import job
        b = ProgramBundle.from_functions([job.train], dependencies={"numpy": "2.0"})
        print(b.digest().hex())
        """
    )
    (tmp_path / "job.py").write_text("def train(x):\n    return sum(x) / len(x)\n")
    out = {
        subprocess.run(
            [sys.executable, "-c", src, str(tmp_path)],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": str(seed)},
        ).stdout.strip()
        for seed in (1, 2)
    }
    spec = importlib.util.spec_from_file_location("job", tmp_path / "job.py")
    assert spec is not None and spec.loader is not None
    job = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(job)
    here = ProgramBundle.from_functions([job.train], dependencies={"numpy": "2.0"})
    assert out == {here.digest().hex()}


def test_normalize_source() -> None:
    assert (
        normalize_source("    def f():\r\n        return 1   \r\n\n") == "def f():\n    return 1\n"
    )

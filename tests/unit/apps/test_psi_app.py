"""`veil psi`: aligned files equal an inner join; options travel as plain values; bad input
writes nothing."""

import pandas as pd
import pytest
from typer.testing import CliRunner

from veil.apps import psi_app
from veil.cli.main import app
from veil.core import wire


@pytest.fixture
def files(tmp_path):
    a = pd.DataFrame({"id": [f"u{i}" for i in range(0, 60)], "x": range(60)})
    b = pd.DataFrame({"id": [f"u{i}" for i in range(30, 90)], "y": range(60)})
    paths = {"a": tmp_path / "a.csv", "b": tmp_path / "b.csv"}
    a.sample(frac=1, random_state=1).to_csv(paths["a"], index=False)
    b.sample(frac=1, random_state=2).to_csv(paths["b"], index=False)
    return paths


def _invoke(files, out, *extra):
    args = ["psi", "--input", f"a={files['a']}", "--input", f"b={files['b']}", "--key", "id"]
    return CliRunner().invoke(app, [*args, "--out", str(out), "--transport", "memory", *extra])


def test_aligned_files_are_the_inner_join(files, tmp_path):
    r = _invoke(files, tmp_path / "o")
    assert r.exit_code == 0, r.output
    a, b = pd.read_csv(tmp_path / "o" / "a.csv"), pd.read_csv(tmp_path / "o" / "b.csv")
    assert list(a["id"]) == list(b["id"]) and len(a) == 30
    assert set(a["id"]) == {f"u{i}" for i in range(30, 60)}
    assert (a["x"] == a["id"].str[1:].astype(int)).all()


def test_job_parameters_can_travel_to_processes(files, tmp_path, monkeypatch):
    """Under --transport grpc the parameters go through the wire codec (no pickle): they must
    be plain values (an enum such as PsiOptions.backend broke `veil psi` over gRPC)."""
    real = psi_app.simulate_detailed

    def through_the_wire(job, parties, **kw):
        kw["params"] = wire.decode_value(wire.encode_value(kw["params"]))
        return real(job, parties, **kw)

    monkeypatch.setattr(psi_app, "simulate_detailed", through_the_wire)
    r = _invoke(files, tmp_path / "o", "--casefold")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "o" / "summary.json").exists()


def test_duplicate_ids_stop_and_write_nothing(files, tmp_path):
    df = pd.read_csv(files["b"])
    pd.concat([df, df.iloc[:1]]).to_csv(files["b"], index=False)
    out = tmp_path / "o"
    r = _invoke(files, out)
    assert r.exit_code == 2, r.output
    assert "party 'b'" in r.output and "duplicate id" in r.output
    assert not out.exists()

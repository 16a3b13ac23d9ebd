"""`veil` CLI: one-line errors with the right exit code, short result tables, node options."""

import pytest
import typer
from typer.testing import CliRunner

from veil.cli.common import user_errors
from veil.cli.main import _shown, app
from veil.errors import DataError, PartyFailed


def _exit_code(exc: BaseException) -> int:
    with pytest.raises(typer.Exit) as info, user_errors():
        raise exc
    return info.value.exit_code


def test_bad_input_is_exit_2(capsys):
    assert _exit_code(DataError("party 'bank': bank.csv has no id column 'cid'")) == 2
    assert "party 'bank': bank.csv has no id column 'cid'" in capsys.readouterr().err


def test_error_text_is_not_read_as_markup(capsys):
    from veil.errors import ConfigError

    assert _exit_code(ConfigError("c.toml: needs at least two [parties.NAME] tables")) == 2
    assert "needs at least two [parties.NAME] tables" in capsys.readouterr().err


def test_stopped_by_a_peer_is_one_line_naming_the_cause(capsys, monkeypatch):
    monkeypatch.delenv("VEIL_DEBUG", raising=False)
    exc = PartyFailed(
        "income",
        "Traceback (most recent call last):\n  ...\nveil.errors.PeerError: ...",
        error_type="PeerError",
        error="party 'bureau': failed: DataError: party 'bureau': b.csv has 1 duplicate id",
    )
    assert _exit_code(exc) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "b.csv has 1 duplicate id" in lines[0] and "'income' stopped" in lines[0]


def test_stopped_by_a_peer_with_debug_shows_the_traceback(capsys, monkeypatch):
    monkeypatch.setenv("VEIL_DEBUG", "1")
    exc = PartyFailed("income", "Traceback (most recent call last): here", error_type="PeerError",
                      error="party 'bureau': failed")  # fmt: skip
    assert _exit_code(exc) == 1
    assert "Traceback (most recent call last): here" in capsys.readouterr().err


def test_a_bug_in_the_job_keeps_its_traceback(capsys):
    exc = PartyFailed("bank", "Traceback: ZeroDivisionError", error_type="ZeroDivisionError",
                      error="division by zero")  # fmt: skip
    assert _exit_code(exc) == 1
    assert "Traceback: ZeroDivisionError" in capsys.readouterr().err


def test_long_results_are_cut_short_in_the_table():
    assert _shown(None) == "-"
    assert _shown({"auc": 0.8}) == "{'auc': 0.8}"
    long = _shown({"ids": [f"C{i:05d}" for i in range(2000)]})
    assert len(long) < 700 and long.endswith("--json prints the whole result)")


def test_node_takes_a_privacy_budget():
    r = CliRunner().invoke(app, ["node", "--help"])
    assert r.exit_code == 0
    flat = " ".join(r.output.split())
    assert "--dp-epsilon" in flat and "--dp-delta" in flat


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["demo", "nope"], "unknown demo 'nope'; available: risk, fl, load, portfolio, gwas"),
        (["demo", "risk", "--transport", "foo"], "--transport must be memory or grpc"),
        (["run", "job.py", "--parties", "a,b"], "job.py not found"),
        (["certs", "init", "--parties", "a", "--out", "c"], "needs at least two"),
    ],
)
def test_bad_options_are_exit_2_and_write_nothing(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 2, r.output
    assert message in " ".join(r.output.split())
    assert list(tmp_path.iterdir()) == []


def test_certs_init_does_not_replace_a_cluster_ca(tmp_path):
    args = ["certs", "init", "--parties", "a,b", "--out", str(tmp_path / "c")]
    assert CliRunner().invoke(app, args).exit_code == 0
    key = (tmp_path / "c" / "a.key").read_bytes()
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 2 and "already exists" in " ".join(r.output.split())
    assert (tmp_path / "c" / "a.key").read_bytes() == key
    assert CliRunner().invoke(app, [*args, "--force"]).exit_code == 0
    assert (tmp_path / "c" / "a.key").read_bytes() != key


def test_out_that_is_a_file_stops_before_any_work(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "taken").write_text("not a folder")
    for args in (
        ["psi", "--input", "a=a.csv", "--input", "b=b.csv", "--key", "id", "--out", "taken"],
        ["demo", "fl", "--transport", "memory", "--out", "taken/sub"],
        ["gwas", "--site", "h1=a", "--site", "h2=b", "--site", "h3=c", "--out", "taken"],
        [
            "forecast",
            "--party",
            "utility=u.csv",
            "--party",
            "weather=w.csv",
            "--time",
            "t",
            "--target",
            "utility:D",
            "--test-from",
            "2014-11-01",
            "--out",
            "taken",
        ],
    ):
        r = CliRunner().invoke(app, args)
        assert r.exit_code == 2, r.output
        assert "taken is a file, not a folder" in " ".join(r.output.split())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]

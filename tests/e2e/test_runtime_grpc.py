"""The SPMD runtime over real processes talking gRPC with mutual TLS on 127.0.0.1."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from runtime_jobs import (
    big_array_job,
    chatty_job,
    crashing_job,
    example_job,
    failing_job,
    killed_job,
)
from typer.testing import CliRunner

import veil
from veil.cli.main import app
from veil.errors import PartyFailed

pytestmark = pytest.mark.e2e
PARTIES = ["alice", "bob", "carol"]
JOBS = Path(__file__).with_name("runtime_jobs.py")


def test_issue_example_over_grpc():
    out = veil.simulate(example_job, parties=PARTIES, transport="grpc")
    assert out == {"alice": 45, "bob": 45, "carol": 45}


def test_stats_and_ledger_come_back(tmp_path):
    res = veil.simulate_detailed(example_job, PARTIES, transport="grpc", ledger_dir=tmp_path)
    assert res.stats["alice"]["peers"]["bob"]["bytes_sent"] > 80
    assert [e["event"] for e in res.ledgers["bob"]] == ["move", "reveal"]
    assert (tmp_path / "carol.jsonl").exists()


def test_failure_names_party_with_traceback_and_stops_others():
    start = time.monotonic()
    with pytest.raises(PartyFailed) as ei:
        veil.simulate(failing_job, parties=PARTIES, transport="grpc", timeout=60)
    assert time.monotonic() - start < 30
    assert ei.value.party == "carol"
    assert "ValueError: carol's input is broken" in ei.value.traceback_text
    assert "runtime_jobs.py" in ei.value.traceback_text


def test_failure_is_printed_once_by_the_cli():
    """Over grpc as over memory: the CLI reports the failure; the workers' own lines are kept in
    their logs, not shown (the workers share the CLI's terminal: stdout and stderr here)."""
    r = subprocess.run(
        [Path(sys.executable).with_name("veil"), "run", f"{JOBS}:failing_job",
         "--parties", "alice,bob,carol", "--transport", "grpc", "--timeout", "60"],
        capture_output=True, text=True, timeout=60, env={**os.environ, "VEIL_DEBUG": ""},
    )  # fmt: skip
    assert r.returncode == 1, r.stderr
    terminal = r.stdout + r.stderr
    assert terminal.count("ValueError: carol's input is broken") == 1, terminal
    assert "party 'carol' failed" in terminal
    assert "veil node" not in terminal


def test_crashed_worker_shows_the_end_of_its_log(capfd):
    with pytest.raises(PartyFailed) as ei:
        veil.simulate(crashing_job, parties=PARTIES, transport="grpc", timeout=30)
    assert ei.value.party == "bob"
    assert ei.value.error_type == "ProcessDied"
    text = ei.value.traceback_text
    assert "exited with code 3 without a result" in text
    assert "bob: scratch disk full, giving up" in text
    assert "scratch disk full" not in capfd.readouterr().err  # reported once, in the error


def test_worker_stdout_is_shown_and_stderr_kept_in_the_log(capfd, monkeypatch):
    monkeypatch.delenv("VEIL_DEBUG", raising=False)
    out = veil.simulate(chatty_job, parties=PARTIES, transport="grpc")
    assert out == {"alice": 7, "bob": 7, "carol": 7}
    seen = capfd.readouterr()
    for p in PARTIES:
        assert f"{p}: progress 1/1" in seen.out
    assert "a warning on stderr" not in seen.err


def test_veil_debug_streams_the_workers_stderr(capfd, monkeypatch):
    monkeypatch.setenv("VEIL_DEBUG", "1")
    with pytest.raises(PartyFailed):
        veil.simulate(failing_job, parties=PARTIES, transport="grpc", timeout=60)
    err = capfd.readouterr().err
    assert "veil node carol: ValueError: carol's input is broken" in err
    assert "Traceback" in err  # the node adds its traceback under VEIL_DEBUG


def test_killed_peer_is_named_within_timeout(tmp_path):
    """bob is SIGKILLed right after its first send. The survivors notice on their own within a
    few seconds (the nodes start only once every stream is open, so the death is seen as a broken
    connection), not after the 20 s receive timeout nor when the runner stops them (15 s after
    bob's death). A survivor may also notice while still waiting for its own start barrier,
    before its job (and ledger) began."""
    start = time.monotonic()
    with pytest.raises(PartyFailed) as ei:
        veil.simulate(killed_job, parties=PARTIES, transport="grpc", timeout=20,
                      ledger_dir=tmp_path)  # fmt: skip
    elapsed = time.monotonic() - start
    assert ei.value.party == "bob"
    assert "without a result" in ei.value.traceback_text
    for survivor in ["alice", "carol"]:
        ledger = tmp_path / f"{survivor}.jsonl"
        lines = ledger.read_text().splitlines() if ledger.exists() else []
        waited = [json.loads(x)["seconds"] for x in lines if json.loads(x)["event"] == "waited"]
        assert all(w < 8.0 for w in waited), (survivor, waited)
    assert elapsed < 12  # the runner would have stopped the survivors 15 s after bob died


def test_large_array_moves_between_processes():
    out = veil.simulate(big_array_job, ["alice", "bob"], transport="grpc")
    n = 10_000_000
    assert out["alice"] == pytest.approx(n * (n - 1) / 2)


def test_cli_run_over_grpc():
    r = CliRunner().invoke(
        app,
        [
            "run",
            f"{JOBS}:example_job",
            "--parties",
            "alice,bob,carol",
            "--transport",
            "grpc",
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["results"] == {"alice": 45, "bob": 45, "carol": 45}


def test_deployment_with_certs_and_three_nodes(tmp_path):
    """What three institutions run: `veil certs init`, one config, `veil node` each."""
    veil_bin = Path(sys.executable).with_name("veil")
    subprocess.run(
        [veil_bin, "certs", "init", "--parties", "alice,bob,carol", "--out", tmp_path / "certs"],
        check=True,
        capture_output=True,
    )
    from veil.transport.ports import free_ports

    ports = free_ports(3)
    cfg = ['[cluster]\nca = "certs/ca.pem"\n[timeouts]\nconnect = 30\nrecv = 30\n']
    for p, port in zip(PARTIES, ports, strict=True):
        cfg.append(
            f'[parties.{p}]\naddress = "127.0.0.1:{port}"\n'
            f'cert = "certs/{p}.pem"\nkey = "certs/{p}.key"\n'
        )
    (tmp_path / "cluster.toml").write_text("\n".join(cfg))
    procs = {
        p: subprocess.Popen(
            [
                veil_bin,
                "node",
                f"{JOBS}:example_job",
                "--config",
                tmp_path / "cluster.toml",
                "--party",
                p,
                "--json",
                "--ledger",
                tmp_path / f"{p}.jsonl",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for p in reversed(PARTIES)
    }  # started in reverse order: peers wait for each other
    for p, proc in procs.items():
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert json.loads(out)["result"] == 45
        assert (tmp_path / f"{p}.jsonl").exists()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ("party", "'mallory' is not in the cluster config"),
        ("cert", "certificate not found"),
        ("port", "in use"),
    ],
)
def test_bad_config_is_one_line(tmp_path, edit, message):
    import socket

    from veil.runtime.simulate import local_cluster

    cfg = local_cluster(PARTIES, tmp_path)
    party = "alice"
    if edit == "party":
        party = "mallory"
    elif edit == "cert":
        (tmp_path / "certs" / "alice.pem").unlink()
    holder = None
    if edit == "port":
        from veil.runtime.config import load_config

        port = load_config(cfg).party("alice").port
        holder = socket.socket()
        holder.bind(("127.0.0.1", port))
        holder.listen()
    try:
        r = subprocess.run(
            [
                Path(sys.executable).with_name("veil"),
                "node",
                f"{JOBS}:example_job",
                "--config",
                cfg,
                "--party",
                party,
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        if holder:
            holder.close()
    assert r.returncode == 2, r.stderr
    assert message in r.stderr
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) <= 3


def test_reveal_policy_is_enforced_by_every_node(tmp_path):
    from runtime_jobs import weights_job

    policy = veil.RevealPolicy.deny_all().allow("metrics.*")
    with pytest.raises(PartyFailed, match="RevealDenied"):
        veil.simulate(
            weights_job,
            ["alice", "bob"],
            transport="grpc",
            policy=policy,
            ledger_dir=tmp_path,
            timeout=20,
        )
    entries = [json.loads(line) for line in (tmp_path / "alice.jsonl").read_text().splitlines()]
    assert [e["event"] for e in entries] == ["reveal_denied"]

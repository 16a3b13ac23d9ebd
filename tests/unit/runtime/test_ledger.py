import json

import pytest

from veil.errors import ConfigError
from veil.runtime.ledger import AuditLedger, merge_ledgers, read_ledger, verify_chain


def make(tmp_path, n=3):
    clock = iter(range(100, 200))
    led = AuditLedger("alice", tmp_path / "l.jsonl", clock=lambda: next(clock))
    for i in range(n):
        led.append("reveal", tag=f"t{i}", to=["bob"], value={"shape": [i], "dtype": "f8"})
    return led


def test_chain_verifies_and_file_matches_memory(tmp_path):
    led = make(tmp_path)
    entries = read_ledger(tmp_path / "l.jsonl")
    assert entries == led.entries()
    verify_chain(entries)
    assert [e["seq"] for e in entries] == [0, 1, 2]
    assert entries[1]["prev"] == entries[0]["hash"]


@pytest.mark.parametrize("mutation", ["edit", "delete", "swap"])
def test_tampering_is_detected(tmp_path, mutation):
    make(tmp_path)
    path = tmp_path / "l.jsonl"
    lines = path.read_text().splitlines()
    if mutation == "edit":
        e = json.loads(lines[1])
        e["to"] = ["carol"]
        lines[1] = json.dumps(e)
    elif mutation == "delete":
        del lines[1]
    else:
        lines[0], lines[1] = lines[1], lines[0]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError):
        verify_chain(read_ledger(path))
    with pytest.raises(ConfigError):
        AuditLedger("alice", path)  # refuses to continue a broken chain


def test_existing_ledger_is_continued(tmp_path):
    make(tmp_path, 2)
    led = AuditLedger("alice", tmp_path / "l.jsonl")
    led.append("move", tag="x")
    entries = read_ledger(tmp_path / "l.jsonl")
    verify_chain(entries)
    assert len(entries) == 3


def test_values_are_never_recorded(tmp_path):
    led = make(tmp_path, 1)
    assert "value" in led.entries()[0]
    assert set(led.entries()[0]["value"]) == {"shape", "dtype"}


def test_merge_orders_by_time():
    a = AuditLedger("a", clock=lambda: 2.0)
    b = AuditLedger("b", clock=lambda: 1.0)
    a.append("reveal")
    b.append("reveal")
    assert [e["party"] for e in merge_ledgers([a.entries(), b.entries()])] == ["b", "a"]

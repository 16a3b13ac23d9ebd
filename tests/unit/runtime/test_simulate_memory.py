"""The SPMD runtime over the in-memory transport (the same checks run over gRPC in tests/e2e)."""

import time

import numpy as np
import pytest

import veil
from veil.errors import PartyFailed, ProtocolError, RevealDenied
from veil.runtime.ledger import read_ledger, verify_chain

PARTIES = ["alice", "bob", "carol"]


def example_job(ctx: veil.Context):
    alice, bob, carol = ctx.parties("alice", "bob", "carol")
    x = alice(np.arange)(10)
    y = x.to(bob)
    s = bob(np.sum)(y)
    return ctx.reveal(s, to=[alice, bob, carol])


def test_issue_example():
    out = veil.simulate(example_job, parties=PARTIES)
    assert out == {"alice": 45, "bob": 45, "carol": 45}


def test_reveal_to_subset_gives_none_elsewhere():
    def job(ctx):
        alice, bob, _ = ctx.parties()
        v = alice(lambda: np.ones((2, 3)))()
        return ctx.reveal(v, to=bob)

    out = veil.simulate(job, parties=PARTIES)
    assert out["alice"] is None and out["carol"] is None
    np.testing.assert_array_equal(out["bob"], np.ones((2, 3)))


def test_stats_count_real_traffic():
    res = veil.simulate_detailed(example_job, parties=PARTIES)
    a, b = res.stats["alice"], res.stats["bob"]
    assert a["peers"]["bob"]["messages_sent"] == 2  # kind header + the array frame
    assert a["peers"]["bob"]["bytes_sent"] == b["peers"]["alice"]["bytes_recv"] > 80
    assert b["messages_sent"] == 2  # the reveal to alice and carol
    assert res.stats["carol"]["bytes_sent"] == 0


def test_ledger_records_shape_not_value(tmp_path):
    veil.simulate(example_job, parties=PARTIES, ledger_dir=tmp_path)
    for p in PARTIES:
        entries = read_ledger(tmp_path / f"{p}.jsonl")
        verify_chain(entries)
        assert [e["event"] for e in entries] == ["move", "reveal"]
    bob = read_ledger(tmp_path / "bob.jsonl")
    assert bob[0]["value"] == {"kind": "plain", "shape": [10], "dtype": "int64"}
    assert bob[1]["to"] == PARTIES and bob[1]["from"] == "bob"
    allowed = {
        "seq",
        "time",
        "party",
        "event",
        "job",
        "tag",
        "from",
        "to",
        "value",
        "policy",
        "prev",
        "hash",
    }
    assert all(set(e) <= allowed and set(e["value"]) == {"kind", "shape", "dtype"} for e in bob)


def test_denied_reveal_raises_and_is_recorded(tmp_path):
    def job(ctx):
        alice, bob, _ = ctx.parties()
        w = alice(lambda: np.zeros(3))()
        return ctx.reveal(w, to=bob, tag="model.weights")

    policy = veil.RevealPolicy.deny_all().allow("metrics.*")
    with pytest.raises(PartyFailed, match="RevealDenied") as ei:
        veil.simulate(job, parties=PARTIES, policy=policy, ledger_dir=tmp_path)
    assert "model.weights" in ei.value.traceback_text
    for p in PARTIES:
        entries = read_ledger(tmp_path / f"{p}.jsonl")
        assert [e["event"] for e in entries] == ["reveal_denied"]


def test_failure_names_party_and_others_stop_promptly():
    def job(ctx):
        alice, bob, carol = ctx.parties()
        if ctx.party == "carol":
            raise ValueError("carol's input is broken")
        # alice and bob wait for a message carol will never send
        v = carol(lambda: 1)()
        return ctx.reveal(v)

    start = time.monotonic()
    with pytest.raises(PartyFailed) as ei:
        veil.simulate(job, parties=PARTIES, timeout=60)
    assert time.monotonic() - start < 5
    assert ei.value.party == "carol"
    assert "ValueError: carol's input is broken" in ei.value.traceback_text
    assert "test_simulate_memory.py" in ei.value.traceback_text


def test_silent_peer_times_out_with_peer_error():
    def job(ctx):
        alice, bob, _ = ctx.parties()
        if ctx.party == "bob":
            time.sleep(1.5)  # bob is slow, not failed
        return ctx.reveal(bob(lambda: 1)(), to=alice)

    with pytest.raises(PartyFailed, match="PeerError.*'bob'.*timeout"):
        veil.simulate(job, parties=PARTIES, timeout=0.3)


def test_misuse_errors():
    def job(ctx):
        alice, bob, _ = ctx.parties()
        x = alice(lambda: 1)()
        bob(lambda v: v)(x)  # x lives at alice

    with pytest.raises(PartyFailed, match=r"owned by 'alice'; move it first with \.to\(bob\)"):
        veil.simulate(job, parties=PARTIES)

    def job2(ctx):
        alice, _, _ = ctx.parties()
        return alice(lambda: 1)().value  # only alice may read it

    with pytest.raises(PartyFailed, match="holds only a handle"):
        veil.simulate(job2, parties=PARTIES)


def test_unknown_party_and_bad_args():
    def job(ctx):
        ctx.parties("mallory")

    with pytest.raises(PartyFailed, match="unknown party 'mallory'"):
        veil.simulate(job, parties=PARTIES)
    with pytest.raises(veil.errors.ConfigError):
        veil.simulate(job, parties=["alice"])
    with pytest.raises(veil.errors.ConfigError):
        veil.simulate(job, parties=PARTIES, transport="carrier-pigeon")  # type: ignore[arg-type]


def test_rng_is_per_party_and_reproducible():
    def job(ctx):
        return ctx.rng.integers(0, 2**62, size=4)

    a = veil.simulate(job, parties=PARTIES, seed=7)
    b = veil.simulate(job, parties=PARTIES, seed=7)
    c = veil.simulate(job, parties=PARTIES, seed=8)
    for p in PARTIES:
        np.testing.assert_array_equal(a[p], b[p])
        assert not np.array_equal(a[p], c[p])
    assert not np.array_equal(a["alice"], a["bob"])


def test_per_party_params_and_num_returns():
    def job(ctx, n):
        alice, bob, _ = ctx.parties()
        lo, hi = alice(lambda k: (k, k * 2), num_returns=2)(n)
        return ctx.reveal(hi.to(bob), to=bob)

    out = veil.simulate(
        job,
        PARTIES,
        params={"alice": {"n": 4}, "bob": {"n": 0}, "carol": {"n": 0}},
        per_party_params=True,
    )
    assert out["bob"] == 8


def test_reveal_rejects_public_values():
    def job(ctx):
        ctx.reveal(np.ones(2))

    with pytest.raises(PartyFailed, match="ProtocolError"):
        veil.simulate(job, parties=PARTIES)
    assert issubclass(RevealDenied, veil.errors.VeilError)
    assert issubclass(ProtocolError, veil.errors.VeilError)

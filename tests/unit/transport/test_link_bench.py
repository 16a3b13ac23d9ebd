"""The link benchmark runs end to end (tiny sizes) and emits well-formed records."""

from __future__ import annotations

import pytest

from veil.bench import link as bench
from veil.errors import ConfigError


def test_bench_records_memory_and_grpc() -> None:
    recs = list(
        bench.run(sizes=(1 << 16, 1 << 22), repeats=2, transports=("memory", "grpc"), rtt_count=20)
    )
    assert [(r["bench"], r["impl"], r["n"]) for r in recs] == [
        ("link.throughput", "veil-memory", 1 << 16),
        ("link.throughput", "veil-memory", 1 << 22),
        ("link.rtt", "veil-memory", 64),
        ("link.throughput", "veil-grpc-mtls", 1 << 16),
        ("link.throughput", "veil-grpc-mtls", 1 << 22),
        ("link.rtt", "veil-grpc-mtls", 64),
    ]
    for r in recs:
        assert r["seconds"] > 0
        if r["bench"] == "link.throughput":
            assert r["mb_per_s"] == pytest.approx(r["n"] / r["seconds"] / 1e6)
            assert r["repeats"] == 2
        else:
            assert r["p90"] >= r["seconds"]


def test_bench_unknown_transport() -> None:
    with pytest.raises(ConfigError, match="carrier-pigeon"):
        list(bench.run(sizes=(1024,), transports=("carrier-pigeon",)))

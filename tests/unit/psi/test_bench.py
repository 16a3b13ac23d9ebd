"""The psi.intersect benchmark runs end to end at a tiny size and checks its own result."""

from __future__ import annotations

import pytest

from veil.bench import psi as bench


@pytest.mark.parametrize("threads", [True, False])
def test_bench_runs_and_is_correct(threads: bool) -> None:
    (rec,) = list(bench.run(n=600, overlap=0.25, threads=threads))
    assert rec["bench"] == "psi.intersect" and rec["impl"] == "veil-psi-ecdh"
    assert rec["correct"] is True and rec["intersection"] == rec["expected"] == 150
    assert rec["bytes"] > 600 * (32 + 32 + 16) + 150 * 8 and len(rec["peak_rss_mb"]) == 2

"""Inspect every message on the wire: exactly the declared protocol, and nothing identifying."""

from __future__ import annotations

import hashlib
from collections import Counter

import numpy as np
import pytest
from psi_harness import Recorded, run_ok

from veil.core import wire
from veil.psi import PsiOptions, intersect_ids
from veil.psi.adapter import declared_messages
from veil.psi.curve import hash_to_points
from veil.psi.ids import digest_ids
from veil.psi.messages import Welcome
from veil.transport.base import Link

PARTIES = ["lead", "f1", "f2"]


def _sets() -> dict[str, list[str]]:
    return {
        "lead": [f"ID-{i:04d}" for i in range(0, 120)],
        "f1": [f"ID-{i:04d}" for i in range(60, 150)],
        "f2": [f"ID-{i:04d}" for i in range(0, 200, 2)],
    }


def _run(options: PsiOptions) -> tuple[Recorded, dict[str, np.ndarray], dict[str, object]]:
    sets = _sets()
    log: Recorded = []
    stats: dict[str, object] = {}

    def fn(link: Link, p: str) -> np.ndarray:
        rows = intersect_ids(link, "job7", p, PARTIES, sets[p], options)
        stats[p] = link.stats()
        return rows

    rows = run_ok(PARTIES, fn, log=log)
    return log, rows, stats


@pytest.mark.parametrize("receiver_only", [False, True])
def test_messages_are_exactly_the_declared_protocol(receiver_only: bool) -> None:
    opts = PsiOptions(chunk_rows=32, receiver_only=receiver_only)
    log, rows, stats = _run(opts)
    sets = _sets()
    n_i = len(set(sets["lead"]) & set(sets["f1"]) & set(sets["f2"]))
    idx = {p: i for i, p in enumerate(PARTIES)}
    assert all(key.startswith("job7/psi/") for _, _, key, _ in log)
    kinds = Counter((frm, to, key.rsplit("/", 1)[1]) for frm, to, key, _ in log)
    for f in ("f1", "f2"):
        assert kinds[(f, "lead", "hello")] == 1 and kinds[("lead", f, "welcome")] == 1
    assert not any(frm != "lead" and to != "lead" for frm, to, _, _ in log)  # a star
    data = Counter(
        (idx[frm], idx[to], key.rsplit("/", 1)[1], len(payload))
        for frm, to, key, payload in log
        if not key.endswith(("hello", "welcome"))
    )
    assert data == Counter(declared_messages([120, 90, 100], n_i, opts))
    # the link carried nothing but the recorded payloads (+ array frame headers)
    header = {"points": 24, "answers": 24, "result": 16, "hello": 0, "welcome": 0}
    for p in PARTIES:
        sent = sum(len(pl) + header[k.rsplit("/", 1)[1]] for frm, _, k, pl in log if frm == p)
        assert sum(s.bytes_sent for s in stats[p].values()) == sent  # type: ignore[attr-defined]
    assert len(rows["lead"]) == n_i


def test_no_id_or_unsalted_hash_or_unmasked_point_on_the_wire() -> None:
    opts = PsiOptions(chunk_rows=32)
    log, _, _ = _run(opts)
    welcome = next(pl for frm, _, k, pl in log if k.endswith("welcome"))
    salt = Welcome.decode(welcome, "lead").salt()
    needles: list[bytes] = []
    for p, ids in _sets().items():
        digests = digest_ids(ids, p, opts).digests
        unmasked = hash_to_points(salt, digests)
        for s, d, u in zip(ids, digests, unmasked, strict=True):
            b = s.encode()
            needles += [b, b.lower(), hashlib.sha256(b).digest()[:12], hashlib.md5(b).digest()[:12]]
            needles += [
                hashlib.blake2b(b, digest_size=16).digest()[:12],
                bytes(d[:12]),
                bytes(u[:12]),
            ]
    blob = b"\x00".join(pl for _, _, _, pl in log)
    assert b"ID-" not in blob
    found = [n for n in needles if n in blob]
    assert not found, f"{len(found)} identifying values appear on the wire"
    # control messages carry only what the protocol declares
    for _frm, _, k, pl in log:
        if k.endswith("hello"):
            assert set(wire.decode_value(pl)) == {"t", "agreed", "nonce", "n"}
        if k.endswith("welcome"):
            assert set(wire.decode_value(pl)) == {"t", "nonces", "n"}


def test_fresh_keys_and_salt_every_run() -> None:
    """The same ids give unrelated points in two runs (no linkage across runs)."""
    opts = PsiOptions(chunk_rows=1000)
    first = {(frm, k): pl for frm, _, k, pl in _run(opts)[0] if k.endswith("points")}
    second = {(frm, k): pl for frm, _, k, pl in _run(opts)[0] if k.endswith("points")}
    for key, pl in first.items():
        a = {pl[i : i + 32] for i in range(0, len(pl), 32)}
        b = {second[key][i : i + 32] for i in range(0, len(second[key]), 32)}
        assert not a & b

"""SecAgg+ state machines piped in-process: the secure sum equals the plaintext sum, with and
without dropouts at every phase; below the threshold the round fails and reveals nothing."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import exact_sum, make_vectors, seeded
from hypothesis import given, settings
from hypothesis import strategies as st

from veil.fl.secagg import GraphKind, SecAggAborted, SecAggConfig
from veil.fl.secagg.inprocess import run_round

COMPLETE = SecAggConfig(graph=GraphKind.COMPLETE)


@pytest.mark.parametrize("n", [3, 10, 50])
@pytest.mark.parametrize("graph", [GraphKind.COMPLETE, GraphKind.SPARSE])
def test_sum_equals_plaintext(n: int, graph: GraphKind) -> None:
    cfg = SecAggConfig(graph=graph)
    vecs = make_vectors(n, 64, seed=n)
    r = run_round(vecs, cfg, randbytes=seeded(n))
    assert r.error is None and r.result is not None
    assert r.result.survivors == tuple(vecs)
    np.testing.assert_array_equal(r.result.total, exact_sum(vecs, vecs, cfg))
    plain = np.sum(list(vecs.values()), axis=0)
    np.testing.assert_allclose(r.result.total, plain, rtol=0, atol=n * 2.0**-25)
    assert r.result.weight_total is None and not r.result.dropped


def test_sparse_graph_masks_only_with_neighbours() -> None:
    cfg = SecAggConfig(degree=6)
    vecs = make_vectors(30, 16)
    r = run_round(vecs, cfg)
    assert r.result is not None
    np.testing.assert_array_equal(r.result.total, exact_sum(vecs, vecs, cfg))
    plan = cfg.plan("round-0", list(vecs))
    for c, cl in r.clients.items():
        assert set(cl.masked_with) == set(plan.neighbours[c]) and len(cl.masked_with) == 6


def test_clipping_and_weights() -> None:
    cfg = SecAggConfig(clip=0.5, max_weight=1000.0)
    rng = np.random.default_rng(5)
    vecs = {f"c{i}": rng.normal(size=40) for i in range(6)}  # norms ~6: all get clipped
    weights = {c: float(w) for c, w in zip(vecs, rng.integers(1, 1000, size=6), strict=True)}
    r = run_round(vecs, cfg, weights=weights)
    assert r.result is not None
    np.testing.assert_array_equal(r.result.total, exact_sum(vecs, vecs, cfg, weights))
    assert r.result.weight_total == sum(weights.values())
    clipped = [v * 0.5 / np.linalg.norm(v) * weights[c] for c, v in vecs.items()]
    np.testing.assert_allclose(r.result.total, np.sum(clipped, axis=0), atol=6 * 2.0**-25)


def test_ring32() -> None:
    cfg = SecAggConfig(ring_bits=32, frac_bits=16)
    vecs = make_vectors(8, 100)
    r = run_round(vecs, cfg)
    assert r.result is not None
    np.testing.assert_array_equal(r.result.total, exact_sum(vecs, vecs, cfg))


@pytest.mark.parametrize("phase", [0, 1, 2, 3])
def test_dropouts_up_to_n_minus_t(phase: int) -> None:
    n, cfg = 10, COMPLETE  # t = 6: up to 4 dropouts
    vecs = make_vectors(n, 32, seed=phase)
    for k in range(1, n - 6 + 1):
        gone = [f"c{i}" for i in range(0, 2 * k, 2)]  # spread over the client order
        r = run_round(vecs, cfg, drop={phase: gone})
        assert r.error is None and r.result is not None, (phase, k, r.error)
        # a client that vanished only in the unmasking phase did send its input: it is summed
        expect = [c for c in vecs if c not in gone] if phase < 3 else list(vecs)
        assert list(r.result.survivors) == expect
        np.testing.assert_array_equal(r.result.total, exact_sum(vecs, expect, cfg))


@pytest.mark.parametrize("phase", [0, 1, 2, 3])
def test_one_dropout_too_many_fails_and_reveals_nothing(phase: int) -> None:
    n, cfg = 10, COMPLETE
    vecs = make_vectors(n, 32)
    gone = [f"c{i}" for i in range(n - 6 + 1)]
    r = run_round(vecs, cfg, drop={phase: gone})
    assert r.result is None and isinstance(r.error, SecAggAborted)
    assert "threshold 6" in str(r.error)
    if phase < 3:  # aborted before any unmasking request: not one share revealed
        assert all(not c.revealed_seed_of and not c.revealed_key_of for c in r.clients.values())
    else:  # only 5 clients answered: every secret has fewer than t = 6 revealed shares
        for owner in vecs:
            n_seed = sum(owner in c.revealed_seed_of for c in r.clients.values())
            n_key = sum(owner in c.revealed_key_of for c in r.clients.values())
            assert n_seed < 6 and n_key < 6


def test_mixed_phase_dropouts_sparse() -> None:
    cfg = SecAggConfig(degree=10)  # group of 11, t = 6
    vecs = make_vectors(40, 24, seed=9)
    drop = {0: ["c3"], 1: ["c11", "c20"], 2: ["c5", "c30", "c31"], 3: ["c7", "c8"]}
    r = run_round(vecs, cfg, drop=drop)
    assert r.result is not None, r.error
    out = {c for p in (0, 1, 2) for c in drop[p]}
    assert set(r.result.survivors) == set(vecs) - out
    assert set(r.result.dropped) == out
    np.testing.assert_array_equal(r.result.total, exact_sum(vecs, r.result.survivors, cfg))


def test_deterministic_given_randomness() -> None:
    vecs = make_vectors(5, 8)
    a = run_round(vecs, COMPLETE, randbytes=seeded(1))
    b = run_round(vecs, COMPLETE, randbytes=seeded(1))
    assert a.result is not None and b.result is not None
    np.testing.assert_array_equal(a.result.total, b.result.total)


def test_default_sparse_graph_at_100_clients_with_dropouts() -> None:
    cfg = SecAggConfig()  # secure_degree(100) = 70 < 99: a real SecAgg+ graph
    vecs = make_vectors(100, 8, seed=100)
    names = list(vecs)
    drop = {1: names[5:10], 2: names[40:55], 3: names[80:85]}
    r = run_round(vecs, cfg, drop=drop)
    assert r.result is not None, r.error
    plan = cfg.plan("round-0", names)
    assert all(len(v) == 70 for v in plan.neighbours.values()) and plan.threshold == 36
    assert len(r.result.survivors) == 80
    np.testing.assert_array_equal(r.result.total, exact_sum(vecs, r.result.survivors, cfg))
    assert all(len(r.clients[c].masked_with) <= 70 for c in r.result.survivors)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(3, 12),
    degree=st.sampled_from([None, 2, 4]),
    drops=st.lists(st.tuples(st.integers(0, 11), st.integers(0, 3)), max_size=6),
)
def test_random_dropouts_give_exact_sum_or_clean_abort(
    n: int, degree: int | None, drops: list[tuple[int, int]]
) -> None:
    cfg = SecAggConfig(degree=degree)
    vecs = make_vectors(n, 6, seed=n)
    plan = cfg.plan("round-0", list(vecs))
    drop: dict[int, list[str]] = {}
    for who, phase in drops:
        if who < n:
            drop.setdefault(phase, []).append(f"c{who}")
    r = run_round(vecs, cfg, drop=drop)
    if r.result is not None:
        gone_early = {c for p in (0, 1, 2) for c in drop.get(p, [])}
        assert set(r.result.survivors) == set(vecs) - gone_early - set(r.result.dropped)
        np.testing.assert_array_equal(r.result.total, exact_sum(vecs, r.result.survivors, cfg))
    else:
        assert isinstance(r.error, SecAggAborted), r.error
    for owner in vecs:  # whatever happened, no client's seed and key were both given out
        n_seed = sum(owner in c.revealed_seed_of for c in r.clients.values())
        n_key = sum(owner in c.revealed_key_of for c in r.clients.values())
        assert n_seed < plan.threshold or n_key < plan.threshold

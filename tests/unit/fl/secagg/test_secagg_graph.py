"""Neighbour graphs: symmetry, degree, determinism from the public seed, O(log n) degree."""

from __future__ import annotations

import math

import pytest

from veil.errors import ConfigError
from veil.fl.secagg import GraphKind, SecAggConfig
from veil.fl.secagg.graph import graph_seed, harary_neighbours, secure_degree


def test_harary_is_symmetric_regular_and_deterministic() -> None:
    names = [f"c{i}" for i in range(40)]
    seed = graph_seed("round-1", names)
    g = harary_neighbours(names, 8, seed)
    assert all(len(v) == 8 for v in g.values())
    assert all(a in g[b] for a in names for b in g[a])  # symmetric
    assert all(a not in g[a] for a in names)
    assert g == harary_neighbours(names, 8, graph_seed("round-1", names))
    assert g != harary_neighbours(names, 8, graph_seed("round-2", names))
    # connected
    seen, todo = {"c0"}, ["c0"]
    while todo:
        for o in g[todo.pop()]:
            if o not in seen:
                seen.add(o)
                todo.append(o)
    assert seen == set(names)


def test_complete_when_degree_large() -> None:
    names = ["a", "b", "c", "d"]
    g = harary_neighbours(names, 10, b"\0" * 32)
    assert g["a"] == ("b", "c", "d")
    with pytest.raises(ConfigError, match="even"):
        harary_neighbours([f"c{i}" for i in range(10)], 3, b"\0" * 32)


def test_degree_grows_like_log_n() -> None:
    ks = {n: secure_degree(n) for n in (100, 200, 1000, 10_000, 100_000)}
    assert ks[100] < 99 and ks[200] < ks[100] * 1.2
    # each 10x in n adds a roughly constant amount: O(log n)
    steps = [ks[10_000] - ks[1000], ks[100_000] - ks[10_000]]
    assert all(0 <= s <= 16 for s in steps)
    assert ks[100_000] < 4 * math.log2(100_000) * 2
    assert secure_degree(20) == 19  # small rounds use the complete graph


def test_plan_threshold_rules() -> None:
    names = [f"c{i}" for i in range(10)]
    plan = SecAggConfig(graph=GraphKind.COMPLETE).plan("r", names)
    assert plan.threshold == 6 and len(plan.group("c0")) == 10
    with pytest.raises(ConfigError, match="above"):
        SecAggConfig(threshold=5).plan("r", names)
    # tolerating c colluders with a lying aggregator: t > (g + c) / 2
    assert SecAggConfig(graph=GraphKind.COMPLETE, colluders=2).plan("r", names).threshold == 7
    with pytest.raises(ConfigError, match=r"\(10 \+ 2\) / 2"):
        SecAggConfig(graph=GraphKind.COMPLETE, threshold=6, colluders=2).plan("r", names)
    with pytest.raises(ConfigError, match="at most"):
        SecAggConfig(graph=GraphKind.COMPLETE, colluders=11).plan("r", names)
    sparse = SecAggConfig(degree=4).plan("r", [f"c{i}" for i in range(30)])
    assert sparse.threshold == 3 and all(len(v) == 4 for v in sparse.neighbours.values())

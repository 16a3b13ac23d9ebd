"""secure_sum over the in-memory link, one thread per party: sums, dropouts by closed links and
by timeouts, a client with NaN, and a failed round that every party hears about."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from conftest import exact_sum, make_vectors

from veil.errors import ConfigError, DataError
from veil.fl.secagg import (
    GraphKind,
    SecAggAborted,
    SecAggClient,
    SecAggConfig,
    run_aggregator,
    secure_sum,
)
from veil.fl.secagg.messages import (
    ForwardedShares,
    KeyDirectory,
    decode_message,
    encode_message,
)
from veil.transport.base import Link
from veil.transport.memory import MemoryHub

Behaviour = Callable[[Link, str, np.ndarray], Any]


def run_cluster(
    vecs: dict[str, np.ndarray],
    cfg: SecAggConfig,
    behaviours: dict[str, Behaviour] | None = None,
) -> dict[str, Any]:
    """Run the aggregator and every client in threads; return each party's result or error."""
    clients = list(vecs)
    hub = MemoryHub(["agg", *clients])
    out: dict[str, Any] = {}

    def client(c: str) -> None:
        link = hub.link(c, timeout=30)
        try:
            fn = (behaviours or {}).get(c)
            if fn is not None:
                out[c] = fn(link, c, vecs[c])
            else:
                out[c] = secure_sum(link, "job/r7", c, "agg", clients, vecs[c], cfg)
        except Exception as exc:
            out[c] = exc

    def aggregator() -> None:
        try:
            out["agg"] = run_aggregator(hub.link("agg", timeout=30), "job/r7", "agg", clients, cfg)
        except Exception as exc:
            out["agg"] = exc

    threads = [threading.Thread(target=client, args=(c,)) for c in clients]
    threads.append(threading.Thread(target=aggregator))
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "a party hung"
    return out


@pytest.mark.timeout(60)
def test_sum_over_memory_link_with_broadcast() -> None:
    cfg = SecAggConfig(broadcast_sum=True, phase_timeout=10, client_timeout=30)
    vecs = make_vectors(10, 200, seed=4)
    out = run_cluster(vecs, cfg)
    res = out.pop("agg")
    assert not isinstance(res, Exception), res
    assert res.survivors == tuple(vecs)
    np.testing.assert_array_equal(res.total, exact_sum(vecs, vecs, cfg))
    for c in vecs:
        np.testing.assert_array_equal(out[c], res.total)


def _closes(link: Link, c: str, v: np.ndarray) -> None:
    link.close()


def _hangs_after_shares(link: Link, c: str, v: np.ndarray) -> str:
    """A client that shares its keys, then goes silent without closing its link."""
    clients = [f"c{i}" for i in range(10)]
    sm = SecAggClient(c, clients, CFG_T, round_id="job/r7", vector=v)
    link.send_bytes("agg", "job/r7/secagg/0/up", encode_message(sm.advertise_keys()))
    d = decode_message(
        link.recv_bytes("agg", "job/r7/secagg/0/down"), KeyDirectory, max_bytes=1 << 20
    )
    assert isinstance(d, KeyDirectory)
    link.send_bytes("agg", "job/r7/secagg/1/up", encode_message(sm.share_keys(d)))
    f = decode_message(
        link.recv_bytes("agg", "job/r7/secagg/1/down"), ForwardedShares, max_bytes=1 << 20
    )
    assert isinstance(f, ForwardedShares)
    return "silent"


CFG_T = SecAggConfig(graph=GraphKind.COMPLETE, phase_timeout=3.0, client_timeout=30)


@pytest.mark.timeout(60)
def test_dropouts_timeouts_and_nan_over_link() -> None:
    vecs = make_vectors(10, 50, seed=8)
    vecs["c3"] = vecs["c3"].copy()
    vecs["c3"][0] = np.nan
    out = run_cluster(vecs, CFG_T, {"c1": _closes, "c2": _hangs_after_shares})
    res = out.pop("agg")
    assert not isinstance(res, Exception), res
    assert set(res.dropped) == {"c1", "c2", "c3"}
    assert "closed its link" in res.dropped["c1"]
    assert "phase 2" in res.dropped["c2"] and "timeout" in res.dropped["c2"]
    assert "NaN/Inf" in res.excluded["c3"]
    assert isinstance(out["c3"], DataError)
    np.testing.assert_array_equal(res.total, exact_sum(vecs, res.survivors, CFG_T))
    assert res.survivors == tuple(c for c in vecs if c not in {"c1", "c2", "c3"})
    assert all(out[c] is None for c in res.survivors)


@pytest.mark.timeout(60)
def test_below_threshold_every_party_fails_cleanly() -> None:
    cfg = SecAggConfig(graph=GraphKind.COMPLETE, phase_timeout=5, client_timeout=30)
    vecs = make_vectors(6, 10)  # t = 4: three dropouts are one too many
    out = run_cluster(vecs, cfg, {c: _closes for c in ("c0", "c1", "c2")})
    assert isinstance(out["agg"], SecAggAborted)
    for c in ("c3", "c4", "c5"):
        assert isinstance(out[c], SecAggAborted) and "aborted" in str(out[c])


def test_misuse_is_a_config_error() -> None:
    hub = MemoryHub(["agg", "a", "b"])
    with pytest.raises(ConfigError, match="vector=None"):
        secure_sum(hub.link("agg"), "p", "agg", "agg", ["a", "b"], np.zeros(2), SecAggConfig())
    with pytest.raises(ConfigError, match="must pass its vector"):
        secure_sum(hub.link("a"), "p", "a", "agg", ["a", "b"], None, SecAggConfig())


def _oversized(link: Link, c: str, v: np.ndarray) -> str:
    link.send_bytes("agg", "job/r7/secagg/0/up", b"\x81" * (3 << 20))
    return "sent"


def _garbage(link: Link, c: str, v: np.ndarray) -> str:
    link.send_bytes("agg", "job/r7/secagg/0/up", b"\xc1not msgpack")
    return "sent"


@pytest.mark.timeout(60)
def test_oversized_and_garbled_messages_are_excluded() -> None:
    cfg = SecAggConfig(graph=GraphKind.COMPLETE, phase_timeout=5, client_timeout=30)
    vecs = make_vectors(6, 10)  # t = 4: two exclusions leave exactly four
    out = run_cluster(vecs, cfg, {"c1": _oversized, "c4": _garbage})
    res = out.pop("agg")
    assert not isinstance(res, Exception), res
    assert "over the limit" in res.excluded["c1"]
    assert "malformed" in res.excluded["c4"]
    assert res.survivors == ("c0", "c2", "c3", "c5")
    np.testing.assert_array_equal(res.total, exact_sum(vecs, res.survivors, cfg))


def _weighted(weights: dict[str, float]) -> dict[str, Behaviour]:
    def make(w: float) -> Behaviour:
        def go(link: Link, c: str, v: np.ndarray) -> Any:
            return secure_sum(
                link, "job/r7", c, "agg", [f"c{i}" for i in range(5)], v, CFG_W, weight=w
            )

        return go

    return {c: make(w) for c, w in weights.items()}


CFG_W = SecAggConfig(max_weight=500.0, phase_timeout=10, client_timeout=30)


@pytest.mark.timeout(60)
def test_weighted_sum_over_link() -> None:
    vecs = make_vectors(5, 30, seed=2)
    weights = {c: float(10 * (i + 1)) for i, c in enumerate(vecs)}
    out = run_cluster(vecs, CFG_W, _weighted(weights))
    res = out.pop("agg")
    assert not isinstance(res, Exception), res
    assert res.weight_total == sum(weights.values())
    np.testing.assert_array_equal(res.total, exact_sum(vecs, vecs, CFG_W, weights))
    mean = res.total / res.weight_total
    plain = sum(weights[c] * vecs[c] for c in vecs) / sum(weights.values())
    np.testing.assert_allclose(mean, plain, atol=1e-6)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("degree,weighted", [(None, False), (4, True)])
def test_link_bytes_equal_the_declared_cost(degree: int | None, weighted: bool) -> None:
    """Each client's traffic, as counted by the link, is exactly cost.client_bytes."""
    from veil.fl.secagg.cost import client_bytes

    cfg = SecAggConfig(
        degree=degree, max_weight=10.0 if weighted else None, broadcast_sum=True,
        phase_timeout=10, client_timeout=30,
    )  # fmt: skip
    vecs = make_vectors(12, 40)
    names = list(vecs)
    hub = MemoryHub(["agg", *names])
    links = {p: hub.link(p) for p in ["agg", *names]}
    w = 2.0 if weighted else None
    threads = [
        threading.Thread(
            target=secure_sum,
            args=(links[c], "k", c, "agg", names, vecs[c], cfg),
            kwargs={"weight": w},
        )
        for c in names
    ]
    res: dict[str, Any] = {}
    threads.append(
        threading.Thread(
            target=lambda: res.update(r=run_aggregator(links["agg"], "k", "agg", names, cfg))
        )
    )
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert res["r"].survivors == tuple(names)
    plan = cfg.plan("k", names)
    for c in names:
        st = links[c].stats()["agg"]
        assert (st.bytes_sent, st.bytes_recv) == client_bytes(
            plan, c, 40, weighted=weighted, broadcast=True
        )
        assert st.messages_sent == st.messages_recv == 4

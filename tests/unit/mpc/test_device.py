"""MPCDevice through a minimal context, as the runtime calls it."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import veil.mpc as vm
from veil.core import wire
from veil.devices.mpc import MPCDevice
from veil.errors import PartyFailed, PeerError, ProtocolError
from veil.mpc.local import LocalParty, run_parties


class Obj:
    """Stand-in for the runtime's PartyObject."""

    def __init__(self, me: str, owner: str, value: Any) -> None:
        self.owner = owner
        self.is_local = me == owner
        self._v = value

    @property
    def value(self) -> Any:
        assert self.is_local
        return self._v


X = np.arange(12, dtype=np.float64).reshape(3, 4) / 7
Y = np.linspace(-2, 2, 4)


@pytest.mark.parametrize(
    ("proto", "parties", "dealer"),
    [("aby3", ("a", "b", "c"), None), ("semi2k", ("a", "b"), "d"), ("ref", ("a", "b"), None)],
)
def test_import_compute_reveal(proto: str, parties: tuple[str, ...], dealer: str | None) -> None:
    cluster = ("a", "b", "c", "d", "e")  # "e" owns y and is outside the computation

    def job(lp: LocalParty) -> Any:
        dev = MPCDevice(lp, proto, parties, dealer)
        xs = dev.import_party_object(Obj(lp.party, "a", X))
        ys = dev.import_party_object(Obj(lp.party, "e", Y))
        z = vm.sigmoid(xs @ ys) > 0.5
        assert z.shape == (3,) and z.dtype == "int64" and z.device is dev
        w = dev(lambda p, q: (p * q).sum(axis=1) - q.sum())(Obj(lp.party, "a", X), ys)
        return z.reveal_to(("a", "e")), w.reveal_to(("e",))

    res = run_parties(cluster, job)
    want = (1 / (1 + np.exp(-(X @ Y))) > 0.5).astype(np.int64)
    assert np.array_equal(res["a"][0], want) and np.array_equal(res["e"][0], want)
    assert res["b"][0] is None and res["a"][1] is None
    assert np.allclose(res["e"][1], (X * Y).sum(1) - Y.sum(), atol=1e-4)


def test_bad_metadata_and_dtype_are_refused() -> None:
    def job(lp: LocalParty) -> Any:
        dev = MPCDevice(lp, "ref", ("a", "b"))
        if lp.party == "a":
            key = lp.next_key("mpc.import")
            lp.link.send_bytes("b", key, wire.encode_value({"shape": [-1], "dtype": "fxp64"}))
            return None
        with pytest.raises(PeerError, match="invalid import metadata"):
            dev.import_party_object(Obj(lp.party, "a", None))
        return True

    assert run_parties(("a", "b"), job)["b"]

    def job2(lp: LocalParty) -> Any:
        dev = MPCDevice(lp, "ref", ("a",))
        return dev.import_party_object(Obj(lp.party, "a", np.array(["x"])))

    with pytest.raises(PartyFailed, match="numeric"):
        run_parties(("a",), job2)


def test_numpy_style_function_with_ufuncs() -> None:
    a = np.array([[0.5, -1.0], [2.0, 3.0]])
    b = np.array([1.0, -2.0])

    def fn(x: Any, y: Any) -> Any:
        h = np.exp(x) @ y + np.ones(2) - 2.0 * x.sum(axis=0)
        return np.maximum(h, 0.0), np.ones(2) < h, np.ones(2) @ x

    def job(lp: LocalParty) -> Any:
        dev = MPCDevice(lp, "semi2k", ("a", "b"), "d")
        outs = dev(fn)(Obj(lp.party, "a", a), Obj(lp.party, "b", b))
        with pytest.raises(Exception, match="not supported"):
            np.sin(outs[0])
        return tuple(o.reveal_to(("a",)) for o in outs)

    got = run_parties(("a", "b", "d"), job)["a"]
    h = np.exp(a) @ b + 1 - 2 * a.sum(0)
    assert np.allclose(got[0], np.maximum(h, 0), atol=1e-3)
    assert np.array_equal(got[1], (h > 1).astype(np.int64))
    assert np.allclose(got[2], np.ones(2) @ a, atol=1e-4)


def test_secret_values_refuse_plaintext_conversion() -> None:
    def job(lp: LocalParty) -> Any:
        dev = MPCDevice(lp, "ref", ("a",))
        x = dev.constant(np.ones(3))
        with pytest.raises(ProtocolError, match="truth value"):
            bool(x < 2.0)
        with pytest.raises(ProtocolError, match="numpy array"):
            np.asarray(x)
        with pytest.raises(ProtocolError, match="secret index"):
            x[x]
        return True

    assert run_parties(("a",), job)["a"]

"""SecureBoost protocol roles driven message by message: malformed peer messages fail loudly."""

import threading

import numpy as np

import veil
import veil.he as he
from veil.core import wire
from veil.errors import ProtocolError
from veil.ml.secureboost import SecureBoost
from veil.ml.secureboost.params import BoostParams
from veil.ml.secureboost.protocol import train_label_holder
from veil.transport.memory import MemoryHub

PARAMS = BoostParams(n_estimators=1, max_depth=2, max_bin=8, key_bits=1024, insecure=True)


def _run_label_holder(hub, X, y, errors):
    try:
        train_label_holder(hub.link("bank"), "sb", ["ext1"], X, y, PARAMS)
    except Exception as exc:  # the test inspects it
        errors.append(exc)


def test_label_holder_refuses_candidate_sums_under_another_key():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(200, 2)), (rng.random(200) < 0.5).astype(float)
    hub = MemoryHub(["bank", "ext1"])
    errors: list[Exception] = []
    th = threading.Thread(target=_run_label_holder, args=(hub, X, y, errors))
    th.start()
    link = hub.link("ext1")
    pk = he.decode_public_key(link.recv_bytes("bank", "sb.pk", timeout=30))
    cmd = wire.decode_value(link.recv_bytes("bank", "sb.cmd", timeout=30))
    assert cmd["op"] == "grad" and cmd["n"] == 200
    ct = he.loads(link.recv_bytes("bank", "sb.ct", timeout=30), pk, sender="bank")
    assert ct.shape == (200,) and ct.n_slots == 2  # (g, h) packed per row
    cmd = wire.decode_value(link.recv_bytes("bank", "sb.cmd", timeout=30))
    assert cmd["op"] == "hist" and cmd["k"] == 1
    other_pk, _ = he.keygen("ou", 1024, insecure=True)  # a key the bank does not hold
    forged = he.encrypt(other_pk, np.zeros((1, 3, 2), dtype=np.int64), value_bound=1,
                        layout=ct.layout)  # fmt: skip
    link.send_bytes("bank", "sb.hist", he.dumps(forged))
    th.join(timeout=30)
    assert len(errors) == 1 and isinstance(errors[0], ProtocolError)
    assert "ext1" in str(errors[0])


def _pool_job(ctx, workers):
    rng = np.random.default_rng(5)
    X = rng.normal(size=(600, 4))
    y = (X[:, 0] + X[:, 3] + rng.normal(size=600) > 0).astype(float)
    c = slice(0, 2) if ctx.party == "bank" else slice(2, 4)
    sb = SecureBoost(ctx, "bank", ["ext1"], n_estimators=2, max_depth=3, max_bin=8,
                     key_bits=1024, insecure=True, workers=workers)  # fmt: skip
    sb.fit(X[:, c], y if ctx.party == "bank" else None)
    return sb.predict_proba(X[:, c])


def test_worker_processes_give_the_same_model():
    one = veil.simulate(_pool_job, ["bank", "ext1"], params={"workers": 1})["bank"]
    two = veil.simulate(_pool_job, ["bank", "ext1"], params={"workers": 2})["bank"]
    np.testing.assert_allclose(one, two, rtol=0, atol=1e-12)

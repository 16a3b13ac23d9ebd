"""HE device over the memory link: import, evaluator arithmetic, reveal only to the key owner."""

import numpy as np
import pytest

import veil
from veil.errors import PartyFailed

PARTIES = ["bank", "ext1", "ext2"]
OPTS = {"key_bits": 1024, "insecure": True}


def _arith_job(ctx):
    bank, ext1, ext2 = ctx.parties("bank", "ext1", "ext2")
    heu = ctx.he("ou", key_owner=bank, evaluators=(ext1, ext2), **OPTS)
    a = bank(lambda: np.array([1.5, -2.25, 3.0]))().to(heu)  # encrypted by the key owner
    b = ext1(lambda: np.array([0.5, 0.25, -1.0]))().to(heu)  # encrypted with the public key
    c = ext2(lambda: np.array([[1, 2, 3], [4, 5, 6]], dtype=np.int64))().to(heu)
    w = np.array([2.0, -1.0, 0.5])
    lin = (a + b) * w - 1.0  # evaluators only
    total = c.sum(axis=0)
    held = {"lin": lin.ct is not None, "c": c.ct is not None}
    return {
        "lin": ctx.reveal(lin, to=bank, tag="r"),
        "sum": ctx.reveal(total * 3, to=bank, tag="r"),
        "shape": lin.shape,
        "held": held,
    }


def test_import_arithmetic_and_reveal_to_key_owner():
    out = veil.simulate(_arith_job, PARTIES)
    lin = (np.array([1.5, -2.25, 3.0]) + np.array([0.5, 0.25, -1.0])) * [2.0, -1.0, 0.5] - 1.0
    np.testing.assert_allclose(out["bank"]["lin"], lin, atol=2**-18)
    np.testing.assert_array_equal(out["bank"]["sum"], np.array([15, 21, 27]))
    assert out["ext1"]["lin"] is None and out["ext2"]["sum"] is None
    assert out["ext1"]["held"] == {"lin": True, "c": True}
    assert out["bank"]["held"] == {"lin": False, "c": False}  # the key owner holds no ciphertext
    assert all(o["shape"] == (3,) for o in out.values())


def _reveal_elsewhere_job(ctx):
    bank, ext1 = ctx.parties("bank", "ext1")
    heu = ctx.he("paillier", key_owner=bank, evaluators=(ext1,), **OPTS)
    x = bank(lambda: np.arange(4))().to(heu)
    return ctx.reveal(x, to=ext1, tag="r")


def test_reveal_to_anyone_but_key_owner_is_refused():
    with pytest.raises(PartyFailed) as ei:
        veil.simulate(_reveal_elsewhere_job, ["bank", "ext1"])
    assert ei.value.error_type == "RevealDenied"
    assert "key owner 'bank'" in ei.value.traceback_text


def _private_operand_job(ctx):
    bank, ext1 = ctx.parties("bank", "ext1")
    heu = ctx.he("ou", key_owner=bank, evaluators=(ext1,), **OPTS)
    x = bank(lambda: np.arange(3))().to(heu)
    return x * ext1(lambda: np.arange(3))()


def test_private_plaintext_operand_is_refused():
    with pytest.raises(PartyFailed) as ei:
        veil.simulate(_private_operand_job, ["bank", "ext1"])
    assert "encrypt it with x.to(heu) first" in ei.value.traceback_text


def _ledger_job(ctx):
    bank, ext1 = ctx.parties("bank", "ext1")
    heu = ctx.he("ou", key_owner=bank, evaluators=(ext1,), **OPTS)
    x = bank(lambda: np.array([3, 4]))().to(heu)
    return ctx.reveal(x + x, to=bank, tag="r")


def test_reveal_is_ledgered_with_kind_he():
    res = veil.simulate_detailed(_ledger_job, ["bank", "ext1"])
    assert list(res.results["bank"]) == [6, 8]
    entry = next(e for e in res.ledgers["ext1"] if e["event"] == "reveal")
    assert entry["value"]["kind"] == "he" and entry["to"] == ["bank"]

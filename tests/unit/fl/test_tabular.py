"""Federated preprocessing equals the same preprocessing on pooled tables."""

import numpy as np
import pandas as pd
import pytest

import veil
from veil.errors import DataError, PartyFailed
from veil.fl.aggregation import Aggregation
from veil.fl.tabular import TableSpec, federated_prepare, pooled_prepare

CLIENTS = ["b1", "b2", "b3"]


def tables(seed=0):
    rng = np.random.default_rng(seed)
    out = {}
    for i, c in enumerate(CLIENTS):
        n = 80 + 20 * i
        df = pd.DataFrame(
            {
                "income": rng.lognormal(11, 0.5, n),  # large magnitudes (~6e4)
                "rate": rng.normal(10 + i, 2, n),
                "grade": rng.choice(["A", "B", "C"] if i else ["A", "B"], n),
                "label": rng.choice(["good", "bad"], n),
            }
        )
        df.loc[rng.random(n) < 0.1, "income"] = np.nan
        df.loc[rng.random(n) < 0.05, "grade"] = None
        out[c] = df
    return out


TABLES = tables()
SPEC = TableSpec(label="label", positive="bad")


def prep_job(ctx, mode="secure", spec=SPEC, tabs=None):
    tabs = tabs or TABLES
    table = None if ctx.party == "srv" else tabs[ctx.party]
    p = federated_prepare(
        ctx, server="srv", clients=CLIENTS, table=table, spec=spec, aggregation=Aggregation(mode)
    )
    return {"features": p.features, "data": None if p.data is None else vars(p.data)}


@pytest.mark.parametrize("mode", ["plain", "secure"])
def test_equals_pooled(mode):
    out = veil.simulate(prep_job, ["srv", *CLIENTS], params={"mode": mode})
    ref, feats = pooled_prepare(TABLES, SPEC, seed=0)
    assert out["srv"]["features"] == feats
    assert feats[:2] == ["income", "rate"] and "grade=C" in feats
    for c in CLIENTS:
        for k in ("X_train", "y_train", "X_val", "y_val"):
            np.testing.assert_allclose(out[c]["data"][k], getattr(ref[c], k), atol=1e-5)


def test_schema_mismatch_names_party_and_column():
    bad = dict(TABLES)
    bad["b2"] = TABLES["b2"].rename(columns={"rate": "apr"})
    with pytest.raises(PartyFailed, match="party 'b2' has no column 'rate'"):
        _run(bad)


def _run(tabs):
    def job(ctx):
        return prep_job(ctx, tabs=tabs)

    return veil.simulate(job, ["srv", *CLIENTS], timeout=10)


def test_kind_mismatch_and_label_errors():
    bad = dict(TABLES)
    bad["b3"] = TABLES["b3"].assign(rate=TABLES["b3"]["rate"].astype(str) + "%")
    with pytest.raises(PartyFailed, match="column 'rate' is categorical at party 'b3'"):
        _run(bad)
    three = dict(TABLES)
    three["b1"] = TABLES["b1"].assign(label="maybe")
    with pytest.raises(PartyFailed, match="exactly two values"):
        _run(three)
    with pytest.raises(DataError, match="not 0/1"):
        pooled_prepare(TABLES, TableSpec(label="label"), seed=0)

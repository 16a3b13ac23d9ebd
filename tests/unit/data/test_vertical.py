import numpy as np
import pandas as pd
import pytest

from veil.data.vertical import encode_block, split_rows
from veil.errors import DataError


def test_split_is_public_and_disjoint():
    tr, te = split_rows(100, 0.3, seed=4)
    tr2, te2 = split_rows(100, 0.3, seed=4)
    assert np.array_equal(tr, tr2) and np.array_equal(te, te2)
    assert len(te) == 30 and not set(tr) & set(te) and len(set(tr) | set(te)) == 100


def test_encoding_imputes_from_training_rows_and_one_hots():
    df = pd.DataFrame({"x": [1.0, np.nan, 3.0, 100.0], "home": ["own", "rent", None, "own"]})
    train = np.array([0, 1, 2])
    X, names = encode_block(df, ["x", "home"], train)
    assert names == ["x", "home=own", "home=rent"]
    scale = X[0, 0] / 1.0  # row 0 holds x = 1.0: this recovers the owner's private scale
    assert X[1, 0] / scale == pytest.approx(2.0)  # imputed: mean of training rows (1 and 3)
    assert X[2, 1:].tolist() == [0.0, 0.0]  # missing category: all zeros
    sd = X[train].std(axis=0)
    assert np.all((sd > 0.3) & (sd < 3))  # private power-of-two scale keeps values moderate


def test_text_column_is_refused():
    df = pd.DataFrame({"x": [1.0] * 100, "note": [f"free text {i}" for i in range(100)]})
    with pytest.raises(DataError, match="'note' is not numeric and has 100 distinct values"):
        encode_block(df, ["x", "note"], np.arange(100))

"""``VDataFrame``: an aligned table whose columns live at different parties.

After PSI every party holds its own rows in the common order, so row ``i`` is the same customer
everywhere. A :class:`VDataFrame` keeps, per party, a handle on that party's encoded feature
block (a numeric ``n × d_p`` array that never leaves it) and the block's column names (public:
the parties agree on the model's inputs). Nothing here communicates except
:func:`VDataFrame.to` (secret sharing into a device) and the column-name exchange.

Encoding, done by each owner on its own columns (:func:`encode_block`):

* numeric columns: missing values imputed with the owner's mean over the *training* rows;
* categorical (non-numeric) columns: one-hot over the levels seen in the owner's training rows;
  a missing or unseen level encodes as all zeros;
* each column is divided by a private power of two close to its training standard deviation,
  so that values sit well inside the fixed-point range (the scale never leaves the owner and
  standardisation is scale-invariant).

:func:`secure_standardize` then centres and scales the secret matrix with means and standard
deviations computed under MPC from the training rows only — revealing neither.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from veil.errors import DataError
from veil.runtime.context import Context
from veil.runtime.party import PartyObject

Array = np.ndarray[Any, Any]


def split_rows(n: int, test_fraction: float, seed: int) -> tuple[Array, Array]:
    """A public, seeded split of ``n`` aligned rows into (train, test) indices, both sorted."""
    if not 0 < test_fraction < 1:
        raise DataError(f"test_fraction must be in (0, 1), got {test_fraction}")
    perm = np.random.default_rng([seed, 0x7E57]).permutation(n)
    n_test = max(1, round(test_fraction * n))
    if n - n_test < 1:
        raise DataError(f"{n} rows are too few to split")
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


#: A non-numeric column with more distinct values than this is refused as a feature.
MAX_LEVELS = 64


def encode_block(
    table: Any, columns: Sequence[str], train_rows: Array, *, max_levels: int = MAX_LEVELS
) -> tuple[Array, list[str]]:
    """Encode one owner's columns (see module docstring); returns (matrix, column names).

    A non-numeric column with more than ``max_levels`` distinct values (free text, ids, numbers
    stored as text) raises :class:`DataError` naming the column.
    """
    import pandas as pd

    parts: list[Array] = []
    names: list[str] = []
    for c in columns:
        col = table[c]
        if pd.api.types.is_numeric_dtype(col):
            x = col.to_numpy(dtype=np.float64)
            fill = np.nanmean(x[train_rows]) if np.isfinite(x[train_rows]).any() else 0.0
            parts.append(np.where(np.isnan(x), fill, x)[:, None])
            names.append(c)
        else:
            values = col.astype(object).where(col.notna(), None).to_numpy()
            levels = sorted({str(v) for v in values[train_rows] if v is not None})
            if len(levels) > max_levels:
                raise DataError(
                    f"column {c!r} is not numeric and has {len(levels)} distinct values "
                    f"(e.g. {levels[:3]}): it looks like text or an id, not a category; drop it, "
                    "or convert it to numbers"
                )
            for lv in levels:
                parts.append(np.array([v is not None and str(v) == lv for v in values],
                                      dtype=np.float64)[:, None])  # fmt: skip
                names.append(f"{c}={lv}")
    if not parts:
        raise DataError("no feature columns to encode")
    X = np.concatenate(parts, axis=1)
    sd = X[train_rows].std(axis=0)
    scale = np.where(sd > 0, 2.0 ** np.round(np.log2(np.where(sd > 0, sd, 1.0))), 1.0)
    return X / scale, names


@dataclass
class VDataFrame:
    """Aligned rows; per party, a handle on its encoded block and the block's column names."""

    ctx: Context
    blocks: dict[str, PartyObject]
    columns: dict[str, list[str]]
    n_rows: int

    @classmethod
    def from_local(
        cls, ctx: Context, owners: Sequence[str], block: Array | None, names: list[str] | None,
        n_rows: int,
    ) -> VDataFrame:  # fmt: skip
        """Every party passes its own encoded block (``None`` if it holds no features)."""
        blocks, columns = {}, {}
        for owner in owners:
            p = ctx.parties(owner)[0]
            mine = ctx.party == owner
            if mine and block is not None and block.shape[0] != n_rows:
                raise DataError(f"{owner!r}: block has {block.shape[0]} rows, expected {n_rows}")
            blocks[owner] = p(lambda: block)() if mine else p(lambda: None)()
            cols = ctx.reveal(p(lambda: names)() if mine else p(lambda: None)(),
                              tag="data.columns")  # fmt: skip
            columns[owner] = list(cols)
        return cls(ctx, blocks, columns, n_rows)

    @property
    def feature_names(self) -> list[str]:
        """All columns, owner by owner, in the order of :meth:`to`."""
        return [f"{o}:{c}" for o, cols in self.columns.items() for c in cols]

    def rows(self, index: Array) -> VDataFrame:
        """The rows ``index`` (public indices) of every block."""
        idx = np.asarray(index, dtype=np.int64)
        blocks = {o: self.ctx.parties(o)[0](lambda b: b[idx])(b) for o, b in self.blocks.items()}
        return VDataFrame(self.ctx, blocks, self.columns, len(idx))

    def to(self, device: Any) -> Any:
        """Secret-share every block into ``device`` and join them column-wise (n × Σ d_p)."""
        from veil.mpc import concatenate

        shared = [b.to(device) for b in self.blocks.values()]
        return shared[0] if len(shared) == 1 else concatenate(shared, axis=1)


def secure_standardize(
    X_train: Any, others: Mapping[str, Any] | None = None
) -> tuple[Any, dict[str, Any]]:
    """Centre and scale secret matrices by the training rows' mean and std, computed under MPC.

    Returns the standardised training matrix and the same transform of each of ``others``.
    Column variances must lie in [2^-8, 2^16) (true after :func:`encode_block`'s scaling);
    constant columns come out as zeros.
    """
    from veil.mpc import rsqrt

    mean = X_train.mean(axis=0)
    centred = X_train - mean
    var = (centred * centred).mean(axis=0)
    inv = rsqrt(var + 2.0**-8)
    out = {k: (v - mean) * inv for k, v in (others or {}).items()}
    return centred * inv, out

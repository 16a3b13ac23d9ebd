"""Row-partitioned tables for federated learning: schema agreement and secure preprocessing.

Every client holds rows with the same columns. :func:`federated_prepare` (SPMD) turns each
client's own table into model-ready arrays with preprocessing statistics computed *jointly*:

1. **Schema** — each client publishes its column names and kinds (numeric / categorical) to all
   parties (tag ``fl.schema``); any difference stops the job at round 0 with a
   :class:`~veil.errors.DataError` naming the party and the column.
2. **Label** — each client publishes the set of label values it has (tag ``fl.label_values``);
   the union must have exactly two values (or be numeric 0/1).
3. **Categories** — each client publishes the levels it has per categorical column (tag
   ``fl.levels``); one-hot encoding uses their sorted union. This reveals which levels occur at
   which party (not how often).
4. **Numeric statistics** — per numeric column the non-missing count, sum and sum of squares are
   summed by secure aggregation (tag ``fl.feature_sums``; no client's own sums are revealed) and
   the pooled sums are published to all. Missing numeric values are imputed with the pooled mean;
   every numeric column is standardised with the pooled mean and standard deviation. A missing
   categorical value encodes as all zeros.

Each client then splits its rows into training and held-out rows with a seeded RNG.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from veil.errors import DataError
from veil.fl.aggregation import Aggregation, Uploads
from veil.fl.loop import ClientData
from veil.fl.models import Array
from veil.fl.secagg.config import SecAggConfig
from veil.runtime.context import Context

NUMERIC, CATEGORICAL = "numeric", "categorical"


@dataclass(frozen=True)
class TableSpec:
    """Which column is the label and how to read the others.

    ``positive`` names the label value that counts as class 1 (needed unless labels are 0/1);
    ``drop`` lists columns to ignore (ids, the split key).
    """

    label: str
    positive: str | None = None
    drop: tuple[str, ...] = ()
    val_fraction: float = 0.2


@dataclass
class Prepared:
    """A client's model-ready arrays and the shared feature names."""

    data: ClientData | None
    features: list[str]
    positive: str


def read_table(path: str | Path, party: str, spec: TableSpec) -> Any:
    """Read a client's CSV, with errors naming the party and the file."""
    from veil.data.tables import read_party_csv

    df = read_party_csv(path, party, spec.label, what="label")
    if df[spec.label].isna().any():
        raise DataError(f"party {party!r}: {path} has rows without a label ({spec.label!r})")
    return df.drop(columns=[c for c in spec.drop if c in df.columns])


def schema_of(df: Any, spec: TableSpec) -> list[list[str]]:
    """``[[column, kind], ...]`` of the feature columns, in file order."""
    import pandas as pd

    out = []
    for c in df.columns:
        if c == spec.label:
            continue
        kind = NUMERIC if pd.api.types.is_numeric_dtype(df[c]) else CATEGORICAL
        out.append([str(c), kind])
    return out


def check_schemas(schemas: dict[str, list[list[str]]]) -> list[list[str]]:
    """The common schema, or a :class:`DataError` naming the first party and column that differ."""
    parties = list(schemas)
    ref_party, ref = parties[0], schemas[parties[0]]
    ref_map = dict((c, k) for c, k in ref)
    for p in parties[1:]:
        mine = dict((c, k) for c, k in schemas[p])
        for c, k in ref_map.items():
            if c not in mine:
                raise DataError(f"party {p!r} has no column {c!r} (present at {ref_party!r})")
            if mine[c] != k:
                raise DataError(
                    f"column {c!r} is {mine[c]} at party {p!r} but {k} at {ref_party!r}"
                )
        for c in mine:
            if c not in ref_map:
                raise DataError(f"party {p!r} has an extra column {c!r} (absent at {ref_party!r})")
    return ref


def _positive_label(values: dict[str, list[Any]], spec: TableSpec) -> Any:
    union = sorted({v for vs in values.values() for v in vs}, key=str)
    per = {p: sorted(map(str, v)) for p, v in values.items()}
    if len(union) != 2:
        raise DataError(
            f"label {spec.label!r} must have exactly two values across all parties; "
            f"values per party: {per}"
        )
    if spec.positive is not None:
        match = [v for v in union if str(v) == str(spec.positive)]
        if not match:
            raise DataError(f"the positive label {spec.positive!r} occurs at no party: {per}")
        return match[0]
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in union)
    if numeric and {float(v) for v in union} == {0.0, 1.0}:
        return next(v for v in union if float(v) == 1.0)
    raise DataError(
        f"label {spec.label!r} is not 0/1: name the positive class (--positive); "
        f"values per party: {per}"
    )


def _publish(ctx: Context, owner: str, value: Any, tag: str) -> Any:
    """``owner``'s value revealed to every party."""
    party = ctx.parties(owner)[0]
    return ctx.reveal(party(lambda: value)(), tag=tag)


def secure_total(
    ctx: Context,
    server: str,
    clients: Sequence[str],
    vector: Array | None,
    dim: int,
    *,
    tag: str,
    aggregation: Aggregation = Aggregation.SECURE,
    frac_bits: int = 24,
    timeout: float = 120.0,
) -> Array:
    """The sum of the clients' vectors, aggregated at ``server`` and published to every party.

    Values are summed in fixed point with ``frac_bits`` fractional bits in a 64-bit ring, so each
    client's vector must have L2 norm below ``2^(62 - frac_bits) / n_clients``; fewer fractional
    bits leave room for larger values.
    """
    bound = 2.0 ** (62 - frac_bits) / max(len(clients), 1)
    secagg = SecAggConfig(
        clip=bound, frac_bits=frac_bits, phase_timeout=timeout, client_timeout=timeout * 4
    )
    if vector is not None and not float(np.linalg.norm(vector)) <= bound:
        raise DataError(
            f"party {ctx.party!r}: values too large (or not finite) for secure aggregation "
            f"({tag}): norm {float(np.linalg.norm(vector)):.3g} > {bound:.3g}"
        )
    up = Uploads(ctx.link, ctx.next_key(tag), server, list(clients), vector, dim, aggregation,
                 secagg, timeout=timeout)  # fmt: skip
    srv = ctx.parties(server)[0]
    rs = ctx.reveal(up, to=srv, tag=tag)
    if ctx.party == server and rs is not None and rs.dropped:
        raise DataError(f"clients dropped out while computing {tag}: {sorted(rs.dropped)}")
    total = srv(lambda: rs.total if rs is not None else None)()
    return np.asarray(ctx.reveal(total, tag=f"{tag}.published"), dtype=np.float64)


def federated_prepare(
    ctx: Context,
    *,
    server: str,
    clients: Sequence[str],
    table: Any,
    spec: TableSpec,
    aggregation: Aggregation = Aggregation.SECURE,
) -> Prepared:
    """Agree on the schema, compute pooled preprocessing statistics, encode and split (SPMD).

    ``table`` is the client's own pandas DataFrame (from :func:`read_table`), ``None`` at the
    server. Every party returns the same ``features``; clients also get their arrays.
    """
    me = ctx.party
    clients = list(clients)
    schemas = {c: _publish(ctx, c, schema_of(table, spec) if me == c else None, "fl.schema")
               for c in clients}  # fmt: skip
    schema = check_schemas(schemas)
    labels = {c: _publish(ctx, c, sorted(map(_plain, table[spec.label].unique()), key=str)
                          if me == c else None, "fl.label_values") for c in clients}  # fmt: skip
    positive = _positive_label(labels, spec)
    cats = [c for c, k in schema if k == CATEGORICAL]
    nums = [c for c, k in schema if k == NUMERIC]
    levels_by = {p: _publish(ctx, p, {c: sorted(map(str, table[c].dropna().unique()))
                                      for c in cats} if me == p else None, "fl.levels")
                 for p in clients}  # fmt: skip
    levels = {c: sorted({v for lv in levels_by.values() for v in lv[c]}) for c in cats}
    k = len(nums)
    x: Array | None = None
    if table is not None:
        x = table[nums].to_numpy(dtype=np.float64) if nums else np.zeros((len(table), 0))
    # pass 1: counts and sums -> pooled means
    vec = None if x is None else np.concatenate([(~np.isnan(x)).sum(0), np.nansum(x, axis=0)])
    sums = secure_total(ctx, server, clients, vec, 2 * k, tag="fl.feature_sums",
                        aggregation=aggregation, frac_bits=16)  # fmt: skip
    cnt = np.rint(sums[:k])
    mean = np.divide(sums[k:], cnt, out=np.zeros(k), where=cnt > 0)
    # pass 2: squared deviations from the pooled mean -> pooled standard deviations
    vec = None if x is None else np.nansum((x - mean) ** 2, axis=0)
    dev = secure_total(ctx, server, clients, vec, k, tag="fl.feature_spread",
                       aggregation=aggregation, frac_bits=6)  # fmt: skip
    std = np.sqrt(np.divide(np.maximum(dev, 0.0), cnt, out=np.zeros(k), where=cnt > 0))
    std[~(std >= 1e-12)] = 1.0
    features = list(nums) + [f"{c}={v}" for c in cats for v in levels[c]]
    if table is None:
        return Prepared(None, features, str(positive))
    X = encode(table, nums, cats, levels, mean, std)
    y = (table[spec.label].map(_plain) == positive).to_numpy(dtype=np.float64)
    return Prepared(split_rows(X, y, ctx.seed, me, spec.val_fraction), features, str(positive))


def split_rows(X: Array, y: Array, seed: int, party: str, val_fraction: float) -> ClientData:
    """A party's seeded split into training and held-out rows (the same in every run)."""
    order = np.random.default_rng([seed, 0x5EED, *party.encode()]).permutation(len(y))
    n_val = round(val_fraction * len(y))
    val, tr = order[:n_val], order[n_val:]
    return ClientData(X[tr], y[tr], X[val], y[val])


def pooled_prepare(
    tables: dict[str, Any], spec: TableSpec, seed: int
) -> tuple[dict[str, ClientData], list[str]]:
    """The same preprocessing and splits as :func:`federated_prepare`, on tables pooled in one
    place. **A check only**: it needs every party's rows, which a real deployment never has."""
    parties = list(tables)
    schema = check_schemas({p: schema_of(t, spec) for p, t in tables.items()})
    labels = {p: sorted(map(_plain, t[spec.label].unique()), key=str) for p, t in tables.items()}
    positive = _positive_label(labels, spec)
    cats = [c for c, k in schema if k == CATEGORICAL]
    nums = [c for c, k in schema if k == NUMERIC]
    levels = {c: sorted({str(v) for t in tables.values() for v in t[c].dropna().unique()})
              for c in cats}  # fmt: skip
    allx = np.concatenate([t[nums].to_numpy(dtype=np.float64) for t in tables.values()])
    mean = np.nanmean(allx, axis=0) if len(nums) else np.zeros(0)
    std = np.nanstd(allx, axis=0) if len(nums) else np.zeros(0)
    std[~(std >= 1e-12)] = 1.0
    out = {}
    for p in parties:
        t = tables[p]
        X = encode(t, nums, cats, levels, mean, std)
        y = (t[spec.label].map(_plain) == positive).to_numpy(dtype=np.float64)
        out[p] = split_rows(X, y, seed, p, spec.val_fraction)
    return out, list(nums) + [f"{c}={v}" for c in cats for v in levels[c]]


def encode(
    df: Any, nums: list[str], cats: list[str], levels: dict[str, list[str]],
    mean: Array, std: Array,
) -> Array:  # fmt: skip
    """Impute + standardise numeric columns and one-hot encode categorical ones."""
    parts = []
    if nums:
        x = df[nums].to_numpy(dtype=np.float64)
        x = np.where(np.isnan(x), mean, x)
        parts.append((x - mean) / std)
    for c in cats:
        col = np.array([None if _missing(v) else str(v) for v in df[c]], dtype=object)
        parts.append(np.stack([(col == v) for v in levels[c]], axis=1).astype(np.float64)
                     if levels[c] else np.zeros((len(df), 0)))  # fmt: skip
    return np.concatenate(parts, axis=1) if parts else np.zeros((len(df), 0))


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v)) or str(v) in ("<NA>", "nan")


def _plain(v: Any) -> Any:
    """numpy scalars to Python values (so they travel and compare the same everywhere)."""
    return v.item() if isinstance(v, np.generic) else v

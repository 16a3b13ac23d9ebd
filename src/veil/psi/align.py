"""Align one party's file: read its ids, run PSI, write its rows of the intersection in the common
order — atomically (a temp file in the output folder, then ``os.replace``).

If anything fails (bad input, a peer dies, the disk fills) no aligned file appears, and a file that
was already at ``out_path`` is left untouched. CSV columns are read and written as strings, so
values (leading zeros, number formatting) come out exactly as they went in; Parquet keeps its
types. The output format follows ``out_path``'s suffix (``.parquet``/``.pq``: Parquet, else CSV).

Memory: the id column is streamed in chunks into 16-byte digests; the other columns are read
once more in chunks at the end, keeping only the rows of the intersection (as Arrow columns).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from veil.errors import DataError
from veil.psi.adapter import run_psi
from veil.psi.ids import is_parquet, iter_batches, read_digests
from veil.psi.options import PsiOptions, PsiResult
from veil.psi.parallel import peak_rss_mb
from veil.transport.base import Link, LinkStats


def _totals(stats: dict[str, LinkStats]) -> np.ndarray[Any, Any]:
    rows = [[s.bytes_sent, s.bytes_recv, s.messages_sent, s.messages_recv] for s in stats.values()]
    total: np.ndarray[Any, Any] = np.array(rows or [[0, 0, 0, 0]], dtype=np.int64).sum(axis=0)
    return total


def select_rows(
    path: Path, party: str, rows: np.ndarray[Any, Any], n_input: int, chunk_rows: int
) -> pa.Table:
    """The table of ``path``'s rows at ``rows`` (in that order), read in chunks."""
    wanted = np.zeros(n_input, dtype=bool)
    wanted[rows] = True
    kept: list[pa.RecordBatch] = []
    schema: pa.Schema | None = None
    base = 0
    for batch in iter_batches(path, party, None, chunk_rows):
        schema = batch.schema
        m = wanted[base : base + batch.num_rows]
        if m.any():
            kept.append(batch.filter(pa.array(m)))
        base += batch.num_rows
    if base != n_input or schema is None:
        raise DataError(
            f"party {party!r}, file {str(path)!r}: changed while PSI ran ({base} rows now, "
            f"{n_input} before); re-run on a file nobody writes to"
        )
    table = pa.Table.from_batches(kept, schema=schema)
    order = np.searchsorted(np.flatnonzero(wanted), rows)
    return table.take(pa.array(order))


def write_atomic(table: pa.Table, out_path: Path) -> None:
    """Write ``table`` to ``out_path`` (CSV/Parquet by suffix): temp file, then ``os.replace``."""
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out_path.parent, prefix=f".{out_path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            if is_parquet(out_path):
                pq.write_table(table, f)
            else:
                pacsv.write_csv(table, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out_path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def align_file(
    link: Link,
    key_prefix: str,
    party: str,
    parties: Sequence[str],
    input_path: Path,
    key: str,
    out_path: Path,
    options: PsiOptions | None = None,
) -> PsiResult:
    """PSI on the ``key`` column of ``input_path``; write this party's aligned rows to ``out_path``.

    Every party calls it with its own file. ``parties[0]`` is the leader (receiver). The aligned
    file holds this party's rows whose ids every party has, all columns, in the common order, so
    row ``i`` of every party's output is the same id. In receiver-only mode only the leader
    writes a file (``PsiResult.out_path`` is ``None`` elsewhere). What each party learns:
    :mod:`veil.psi.ecdh`.

    Raises
    ------
    DataError
        Unreadable/malformed file, missing key column, no rows, empty ids, duplicate ids
        (unless ``options.dedupe``); the message names the party and the file.
    ConfigError, PeerError
        See :func:`veil.psi.intersect_ids`.
    """
    opts = options or PsiOptions()
    t0 = time.perf_counter()
    before = _totals(link.stats())
    src, dst = Path(input_path), Path(out_path)
    ids = read_digests(src, key, party, opts)
    t1 = time.perf_counter()
    outcome = run_psi(link, key_prefix, party, parties, ids, opts)
    t2 = time.perf_counter()
    written: Path | None = None
    if outcome.rows is not None:
        write_atomic(select_rows(src, party, outcome.rows, ids.n_input, opts.chunk_rows), dst)
        written = dst
    t3 = time.perf_counter()
    sent, recv, msent, mrecv = (int(x) for x in _totals(link.stats()) - before)
    return PsiResult(
        party=party,
        n_input=ids.n_input,
        n_intersection=outcome.n_intersection,
        seconds=t3 - t0,
        bytes_sent=sent,
        bytes_received=recv,
        messages_sent=msent,
        messages_received=mrecv,
        n_duplicates_dropped=ids.n_dropped,
        out_path=written,
        stage_seconds={"read": t1 - t0, "psi": t2 - t1, "write": t3 - t2},
        backend=outcome.backend,
        peak_rss_mb=peak_rss_mb(),
        worker_peak_rss_mb=outcome.worker_peak_rss_mb,
    )

"""Reading ids: normalisation, compact digests, chunked CSV/Parquet readers, input checks.

Ids never stay in memory as Python strings: each chunk is normalised and reduced to a 16-byte
BLAKE2b digest (``(n, 16)`` uint8, 16 B per row, 160 MB at 10^7 rows) and the strings are
dropped. Digests stay local; only salted, masked points derived from them travel
(:mod:`veil.psi.curve`). Two distinct ids share a digest with probability ≈ n²/2^129.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from veil.errors import DataError
from veil.psi import matching
from veil.psi.ecdh import DIGEST_BYTES
from veil.psi.options import PsiOptions

_PERSON = b"veil-psi-id-v1"
PARQUET_SUFFIXES = (".parquet", ".pq")
_MAX_EXAMPLES = 5


def is_parquet(path: Path) -> bool:
    """Whether ``path`` is read and written as Parquet (by suffix); otherwise CSV."""
    return path.suffix.lower() in PARQUET_SUFFIXES


def normalise(value: str, options: PsiOptions) -> str:
    """Apply the id normalisation of ``options`` (strip, then case-fold)."""
    if options.strip:
        value = value.strip()
    if options.casefold:
        value = value.casefold()
    return value


def as_id(value: Any) -> str | None:
    """A cell as an id string: ``None``/NaN are missing, numbers become their ``str``."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, float) and value != value:
        return None
    return str(value)


def digest_chunk(
    values: Sequence[Any], options: PsiOptions
) -> tuple[np.ndarray[Any, Any], list[int]]:
    """Digests ``(k, 16)`` of normalised ids, and the offsets of null or empty ids in the chunk.

    Same result as :func:`normalise` then BLAKE2b-128 per id, inlined (this loop is the whole
    cost of reading ids).
    """
    strip, fold = options.strip, options.casefold
    blake2b = hashlib.blake2b
    zero = bytes(DIGEST_BYTES)
    parts: list[bytes] = []
    bad: list[int] = []
    for i, v in enumerate(values):
        s = v if v.__class__ is str else as_id(v)
        if s is not None:
            if strip:
                s = s.strip()
            if fold:
                s = s.casefold()
        if not s:
            bad.append(i)
            parts.append(zero)
            continue
        parts.append(blake2b(s.encode(), digest_size=DIGEST_BYTES, person=_PERSON).digest())
    if not parts:
        return np.empty((0, DIGEST_BYTES), dtype=np.uint8), bad
    return np.frombuffer(b"".join(parts), dtype=np.uint8).reshape(-1, DIGEST_BYTES), bad


def _fail(party: str, path: Path, what: str) -> DataError:
    return DataError(f"party {party!r}, file {str(path)!r}: {what}")


def columns_of(path: Path, party: str) -> list[str]:
    """Column names of a CSV or Parquet file (raises :class:`DataError` if unreadable)."""
    try:
        if is_parquet(path):
            return list(pq.ParquetFile(path).schema_arrow.names)
        with pacsv.open_csv(path) as reader:
            return list(reader.schema.names)
    except FileNotFoundError:
        raise _fail(party, path, "file not found; check the path") from None
    except PermissionError:
        raise _fail(party, path, "permission denied; check the file's permissions") from None
    except IsADirectoryError:
        raise _fail(party, path, "is a directory, not a CSV or Parquet file") from None
    except (pa.ArrowException, OSError) as exc:
        kind = "Parquet" if is_parquet(path) else "CSV"
        raise _fail(party, path, f"cannot be read as {kind}: {exc}") from None


def _csv_convert(columns: Iterable[str], include: list[str] | None) -> pacsv.ConvertOptions:
    return pacsv.ConvertOptions(
        column_types={c: pa.string() for c in columns},
        include_columns=include,
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )


def iter_batches(
    path: Path, party: str, columns: list[str] | None, chunk_rows: int
) -> Iterator[pa.RecordBatch]:
    """Record batches of ``columns`` (all when ``None``). CSV columns are read as strings, so
    values are written back exactly as they were."""
    names = columns_of(path, party)
    try:
        if is_parquet(path):
            pf = pq.ParquetFile(path)
            yield from pf.iter_batches(batch_size=chunk_rows, columns=columns)
            return
        block = max(1 << 20, min(64 << 20, chunk_rows * 64))
        with pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(block_size=block),
            convert_options=_csv_convert(names if columns is None else columns, columns),
        ) as reader:
            yield from reader
    except (pa.ArrowException, OSError) as exc:
        kind = "Parquet" if is_parquet(path) else "CSV"
        raise _fail(party, path, f"malformed {kind}: {exc}") from None


@dataclass(frozen=True)
class IdDigests:
    """The compact id column of one party's file.

    Attributes
    ----------
    digests:
        ``(n_kept, 16)`` uint8, duplicate-free.
    rows:
        ``(n_kept,)`` int64: the file row of each digest.
    n_input:
        Rows in the file.
    n_dropped:
        Duplicate rows dropped (``dedupe``).
    """

    digests: np.ndarray[Any, Any]
    rows: np.ndarray[Any, Any]
    n_input: int
    n_dropped: int


def check_digests(
    digests: np.ndarray[Any, Any],
    bad: list[int],
    options: PsiOptions,
    where: str,
    show: Any,
) -> IdDigests:
    """Validate digests of a whole input: non-empty, no missing ids, duplicates per ``dedupe``.

    ``where`` names the input in errors; ``show(rows)`` returns example ids for error messages.
    """
    n = int(digests.shape[0])
    if n == 0:
        raise DataError(f"{where}: no rows; PSI needs at least one id")
    if bad:
        raise DataError(
            f"{where}: {len(bad)} row(s) have an empty or missing id "
            f"(first rows, counted from 0: {bad[:_MAX_EXAMPLES]}); fill or remove them"
        )
    keep = matching.first_occurrences(digests)
    n_dup = int(n - keep.sum())
    if n_dup and not options.dedupe:
        dup_rows = np.flatnonzero(~keep)[:_MAX_EXAMPLES]
        raise DataError(
            f"{where}: {n_dup} duplicate id row(s), e.g. {show(dup_rows.tolist())} "
            f"(rows {dup_rows.tolist()}); make ids unique, or keep the first occurrence "
            "(`veil psi --dedupe`, PsiOptions(dedupe=True))"
        )
    if n_dup == 0:
        return IdDigests(digests, np.arange(n, dtype=np.int64), n, 0)
    rows = np.flatnonzero(keep).astype(np.int64)
    return IdDigests(np.ascontiguousarray(digests[keep]), rows, n, n_dup)


def digest_ids(
    ids: Sequence[str] | np.ndarray[Any, Any], party: str, options: PsiOptions
) -> IdDigests:
    """Digests of in-memory ids (a sequence or array of ``str``), checked as for a file."""
    values = ids.tolist() if isinstance(ids, np.ndarray) else list(ids)
    digests, bad = digest_chunk(values, options)
    return check_digests(
        digests,
        bad,
        options,
        f"party {party!r}, ids in memory",
        lambda rows: [values[r] for r in rows],
    )


def _ids_at(path: Path, party: str, key: str, rows: list[int], chunk_rows: int) -> list[Any]:
    """The raw ids at ``rows`` (a second pass over the file, for error messages only)."""
    want = set(rows)
    found: dict[int, Any] = {}
    base = 0
    for batch in iter_batches(path, party, [key], chunk_rows):
        col = batch.column(0)
        for r in want:
            if base <= r < base + len(col):
                found[r] = col[r - base].as_py()
        base += len(col)
    return [found.get(r) for r in rows]


def read_digests(path: Path, key: str, party: str, options: PsiOptions) -> IdDigests:
    """Stream the ``key`` column of a CSV/Parquet file into checked id digests.

    Raises
    ------
    DataError
        Unreadable or malformed file, missing key column (lists the columns present), no rows,
        empty ids, or duplicate ids without ``dedupe``; the message names party and file.
    """
    path = Path(path)
    names = columns_of(path, party)
    if key not in names:
        raise _fail(party, path, f"no key column {key!r}; the columns are {names}")
    parts: list[np.ndarray[Any, Any]] = []
    bad: list[int] = []
    base = 0
    for batch in iter_batches(path, party, [key], options.chunk_rows):
        col = batch.column(0)
        values = col.to_pylist()
        d, b = digest_chunk(values, options)
        parts.append(d)
        bad.extend(base + i for i in b)
        base += len(values)
    digests = np.concatenate(parts) if parts else np.empty((0, DIGEST_BYTES), dtype=np.uint8)
    del parts
    return check_digests(
        digests,
        bad,
        options,
        f"party {party!r}, file {str(path)!r}",
        lambda rows: _ids_at(path, party, key, rows, options.chunk_rows),
    )

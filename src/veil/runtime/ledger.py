"""The audit ledger: an append-only, hash-chained record of every reveal and plaintext move.

Each party keeps its own ledger of what it saw happen. An entry records *who* revealed or moved
*what* (shape and dtype, never the value) to *whom*, *when*, under which tag, and whether the
reveal policy allowed it. Entries are JSON objects, one per line when written to a file; each
carries ``prev`` (the previous entry's hash) and ``hash`` = SHA-256 of its canonical JSON without
``hash``, so any edit, deletion or reordering breaks :func:`verify_chain`.

The chain makes tampering *evident* to whoever holds an earlier copy or the final hash; it does
not stop the party that writes the file from rewriting it whole. Parties that need
non-repudiation should exchange their final hashes at the end of a job.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from veil.errors import ConfigError

GENESIS = "0" * 64


def _canonical(entry: dict[str, Any]) -> bytes:
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), default=str).encode()


def entry_hash(entry: dict[str, Any]) -> str:
    """SHA-256 (hex) of ``entry`` without its own ``hash`` field."""
    body = {k: v for k, v in entry.items() if k != "hash"}
    return hashlib.sha256(_canonical(body)).hexdigest()


@dataclass(frozen=True)
class ValueMeta:
    """What the ledger records about a value: its kind, shape and dtype — never its content."""

    kind: str
    shape: tuple[int, ...] | None
    dtype: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "shape": list(self.shape) if self.shape is not None else None,
            "dtype": self.dtype,
        }


class AuditLedger:
    """Append-only hash-chained list of events, optionally mirrored to a JSON-lines file.

    Parameters
    ----------
    party:
        The party keeping this ledger (written into every entry).
    path:
        If given, every entry is appended to this file (flushed and fsynced) as it is made.
        An existing file is continued: its chain is verified and extended.
    clock:
        Seconds since the epoch; injectable for tests.
    """

    def __init__(
        self,
        party: str,
        path: Path | None = None,
        *,
        clock: Any = time.time,
    ) -> None:
        self.party = party
        self.path = path
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: list[dict[str, Any]] = []
        if path is not None and path.exists():
            self._entries = read_ledger(path)
            verify_chain(self._entries, source=str(path))

    @property
    def head(self) -> str:
        """Hash of the last entry (the genesis hash when empty)."""
        return self._entries[-1]["hash"] if self._entries else GENESIS

    def append(self, event: str, **fields: Any) -> dict[str, Any]:
        """Append one event and return the stored entry."""
        with self._lock:
            entry: dict[str, Any] = {
                "seq": len(self._entries),
                "time": round(float(self._clock()), 6),
                "party": self.party,
                "event": event,
                **fields,
                "prev": self.head,
            }
            entry["hash"] = entry_hash(entry)
            self._entries.append(entry)
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("ab") as fh:
                    fh.write(_canonical(entry) + b"\n")
                    fh.flush()
                    os.fsync(fh.fileno())
            return dict(entry)

    def entries(self) -> list[dict[str, Any]]:
        """A copy of all entries, oldest first."""
        with self._lock:
            return [dict(e) for e in self._entries]


def read_ledger(path: Path) -> list[dict[str, Any]]:
    """Read a ledger file written by :class:`AuditLedger`."""
    entries = []
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read audit ledger {path}: {exc}") from None
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"audit ledger {path} line {i} is not JSON: {exc}") from None
    return entries


def verify_chain(entries: Sequence[dict[str, Any]], *, source: str = "ledger") -> None:
    """Raise :class:`ConfigError` unless ``entries`` form an unbroken hash chain."""
    prev = GENESIS
    for i, e in enumerate(entries):
        if e.get("prev") != prev:
            raise ConfigError(f"{source}: entry {i} does not follow entry {i - 1} (chain broken)")
        if e.get("hash") != entry_hash(e):
            raise ConfigError(f"{source}: entry {i} was modified (hash mismatch)")
        if e.get("seq") != i:
            raise ConfigError(f"{source}: entry {i} has seq {e.get('seq')} (entries reordered)")
        prev = e["hash"]


def merge_ledgers(ledgers: Iterable[Sequence[dict[str, Any]]]) -> list[dict[str, Any]]:
    """All parties' entries in one list ordered by time (for reports)."""
    out = [dict(e) for led in ledgers for e in led]
    out.sort(key=lambda e: (e.get("time", 0.0), e.get("party", ""), e.get("seq", 0)))
    return out

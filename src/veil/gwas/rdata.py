"""A small, safe reader of R's XDR serialization (``.RData`` / ``.rda``, format version 2/3).

Only data is decoded (vectors, lists, pairlists, attributes, S4 objects, symbols); code objects
(closures, byte code, environments beyond a marker) are refused with a :class:`DataError`, and
no value ever drives an import or a call, so a hostile file cannot execute anything. It exists
because the ``rdata`` package cannot read raw vectors, which is how snpStats stores genotypes.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from veil.errors import DataError

NILVALUE, GLOBALENV, UNBOUNDVALUE, MISSINGARG, BASENAMESPACE = 254, 253, 252, 251, 250
REFSXP, EMPTYENV, BASEENV = 255, 242, 241
SYMSXP, LISTSXP, ENVSXP, CHARSXP = 1, 2, 4, 9
LGLSXP, INTSXP, REALSXP, CPLXSXP, STRSXP, VECSXP, EXPRSXP, RAWSXP, S4SXP = (
    10,
    13,
    14,
    15,
    16,
    19,
    20,
    24,
    25,
)
LANGSXP, ATTRLISTSXP, ATTRLANGSXP = 6, 239, 240
NA_INTEGER = -(2**31)


@dataclass
class RObject:
    """A decoded R value: its SEXP type, value and attributes (``names``, ``class``, ...)."""

    rtype: int
    value: Any
    attributes: dict[str, RObject] = field(default_factory=dict)

    def attr(self, name: str) -> Any:
        """The value of attribute ``name`` (None when absent)."""
        obj = self.attributes.get(name)
        return None if obj is None else obj.value


class _Reader:
    def __init__(self, data: bytes, source: str) -> None:
        self.buf = memoryview(data)
        self.pos = 0
        self.source = source
        self.refs: list[RObject] = []

    def fail(self, why: str) -> DataError:
        return DataError(f"{self.source}: cannot decode R data at byte {self.pos}: {why}")

    def take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self.buf):
            raise self.fail("truncated")
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out

    def i32(self) -> int:
        return int.from_bytes(self.take(4), "big", signed=True)

    def length(self) -> int:
        n = self.i32()
        if n == -1:
            hi, lo = self.i32(), self.i32()
            n = (hi << 32) + lo
        return n

    def item(self) -> RObject:
        flags = self.i32()
        t = flags & 0xFF
        has_attr, has_tag = bool(flags & (1 << 9)), bool(flags & (1 << 10))
        if t == NILVALUE:
            return RObject(NILVALUE, None)
        if t in (GLOBALENV, EMPTYENV, BASEENV, BASENAMESPACE, UNBOUNDVALUE, MISSINGARG):
            return RObject(t, None)
        if t == REFSXP:
            idx = flags >> 8 or self.i32()
            if not 0 < idx <= len(self.refs):
                raise self.fail(f"bad reference {idx}")
            return self.refs[idx - 1]
        if t == SYMSXP:
            obj = RObject(SYMSXP, self.item().value)
            self.refs.append(obj)
            return obj
        if t == ENVSXP:
            obj = RObject(ENVSXP, None)
            self.refs.append(obj)
            self.i32()  # locked
            for _ in range(4):  # enclosure, frame, hash table, attributes
                self.item()
            return obj
        if t in (LISTSXP, LANGSXP, ATTRLISTSXP, ATTRLANGSXP):
            return self.pairlist(t, has_attr, has_tag)
        obj = self.vector(t)
        if has_attr:
            obj.attributes = self.attributes()
        return obj

    def pairlist(self, t: int, has_attr: bool, has_tag: bool) -> RObject:
        items: list[tuple[str | None, RObject]] = []
        attrs: dict[str, RObject] = {}
        while True:
            if has_attr:
                attrs = _as_attributes(self.item())
            tag = self.item().value if has_tag else None
            items.append((tag, self.item()))
            flags = self.i32()
            nt = flags & 0xFF
            if nt == NILVALUE:
                break
            if nt not in (LISTSXP, LANGSXP, ATTRLISTSXP, ATTRLANGSXP):
                self.pos -= 4
                items.append((None, self.item()))
                break
            has_attr, has_tag = bool(flags & (1 << 9)), bool(flags & (1 << 10))
        return RObject(t, items, attrs)

    def attributes(self) -> dict[str, RObject]:
        return _as_attributes(self.item())

    def vector(self, t: int) -> RObject:
        if t == CHARSXP:
            n = self.i32()
            return RObject(
                CHARSXP, None if n == -1 else bytes(self.take(n)).decode("utf-8", "replace")
            )
        if t in (LGLSXP, INTSXP):
            n = self.length()
            return RObject(t, np.frombuffer(self.take(4 * n), dtype=">i4").astype(np.int32))
        if t == REALSXP:
            n = self.length()
            return RObject(t, np.frombuffer(self.take(8 * n), dtype=">f8").astype(np.float64))
        if t == CPLXSXP:
            n = self.length()
            parts = np.frombuffer(self.take(16 * n), dtype=">f8").astype(np.float64)
            return RObject(t, parts[0::2] + 1j * parts[1::2])
        if t == RAWSXP:
            n = self.length()
            return RObject(t, np.frombuffer(self.take(n), dtype=np.uint8).copy())
        if t == STRSXP:
            n = self.length()
            return RObject(t, [self.item().value for _ in range(n)])
        if t in (VECSXP, EXPRSXP):
            n = self.length()
            return RObject(t, [self.item() for _ in range(n)])
        if t == S4SXP:
            return RObject(t, None)
        raise self.fail(f"unsupported R object type {t} (code or external pointer)")


def _as_attributes(obj: RObject) -> dict[str, RObject]:
    if obj.rtype == NILVALUE:
        return {}
    return {str(tag): val for tag, val in obj.value}


def read_rdata(path: str | Path) -> dict[str, RObject]:
    """Decode an ``.RData`` file into ``{name: RObject}``.

    Raises
    ------
    DataError
        The file is not an XDR R data file or holds code objects.
    """
    path = Path(path)
    raw = path.read_bytes()
    for opener in (lzma.decompress, bz2.decompress, gzip.decompress):
        try:
            raw = opener(raw)
            break
        except (lzma.LZMAError, OSError, ValueError, EOFError):
            continue
    if not raw.startswith(b"RDX2\nX\n") and not raw.startswith(b"RDX3\nX\n"):
        raise DataError(f"{path}: not an R data file in XDR format (RDX2/RDX3)")
    reader = _Reader(raw[7:], str(path))
    version = reader.i32()
    reader.i32()  # writer's R version
    reader.i32()  # minimal reader version
    if version == 3:
        reader.take(reader.i32())  # native encoding name
    top = reader.item()
    if top.rtype != LISTSXP:
        raise DataError(f"{path}: expected a list of named objects at the top level")
    return {str(tag): val for tag, val in top.value}

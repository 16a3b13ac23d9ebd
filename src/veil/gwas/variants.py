"""Match variants across sites and bring every site's genotypes to one allele orientation.

A variant is the same at two sites when its id, chromosome, position and allele *pair* agree.
When the pair is swapped at a site (its ``.bim`` lists A2 A1), the site's genotypes are flipped
(``g -> 2 - g``), never dropped. A variant whose id is found with a different chromosome,
position or allele pair is a conflict: it is treated as absent at that site and reported.

The reference orientation of a variant is that of the first site (in the order given) listing
it; the union of variants is in that order too. Matching uses only the ``.bim`` tables, which
the sites exchange in the clear (they hold no subject data).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from veil.errors import DataError
from veil.gwas.plinkio import VariantTable


class AbsentPolicy(enum.Enum):
    """What to do with a variant that some site does not have."""

    #: keep only variants present (and consistent) at every site
    DROP = "drop"
    #: test each variant on the sites that have it
    USE_AVAILABLE = "use-available"


@dataclass(frozen=True)
class SiteAlignment:
    """How one site's ``.bim`` rows map onto the aligned variant list.

    Attributes
    ----------
    index:
        ``(V,)`` row of the site's fileset for each aligned variant, ``-1`` where absent.
    flip:
        ``(V,)`` True where the site lists the alleles swapped.
    """

    site: str
    index: npt.NDArray[np.intp]
    flip: npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Alignment:
    """The aligned variant list and, per site, how to read it.

    Attributes
    ----------
    variants:
        The aligned variants in reference orientation.
    sites:
        One :class:`SiteAlignment` per site, in input order.
    absent:
        Per site, the ids of aligned-union variants the site does not have.
    conflicts:
        Per site, ids found with a different chromosome, position or allele pair.
    dropped:
        Ids removed because they are absent somewhere (policy ``DROP``).
    """

    variants: VariantTable
    sites: tuple[SiteAlignment, ...]
    absent: dict[str, list[str]] = field(default_factory=dict)
    conflicts: dict[str, list[str]] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)

    def site(self, name: str) -> SiteAlignment:
        """The alignment of site ``name``."""
        for s in self.sites:
            if s.site == name:
                return s
        raise KeyError(name)

    def n_flipped(self) -> dict[str, int]:
        """Number of variants read with swapped alleles, per site."""
        return {s.site: int(np.count_nonzero(s.flip)) for s in self.sites}


def match_variants(
    tables: Sequence[tuple[str, VariantTable]],
    policy: AbsentPolicy = AbsentPolicy.DROP,
) -> Alignment:
    """Align the variant tables of several sites.

    Parameters
    ----------
    tables:
        ``(site, variants)`` pairs, the first site giving the reference orientation.
    policy:
        What to do with a variant missing at some site.

    Raises
    ------
    DataError
        A site lists the same id twice, or no variant is shared as the policy requires.
    """
    if not tables:
        raise DataError("no site given")
    same = _identical_everywhere(tables)
    if same is not None:
        return same
    union_key: dict[str, int] = {}
    ref_rows: list[tuple[int, int]] = []  # (site number, row) of the reference entry
    lookups: list[dict[str, int]] = []
    for s, (name, vt) in enumerate(tables):
        ids = [str(x) for x in vt.snp]
        lookup = {sid: i for i, sid in enumerate(ids)}
        if len(lookup) != len(ids):
            dup = sorted({x for x in ids if ids.count(x) > 1})[:5]
            raise DataError(f"site {name!r}: variant id(s) {dup} appear more than once in .bim")
        lookups.append(lookup)
        for i, sid in enumerate(ids):
            if sid not in union_key:
                union_key[sid] = len(ref_rows)
                ref_rows.append((s, i))
    n_union = len(ref_rows)
    idx = np.full((len(tables), n_union), -1, dtype=np.intp)
    flip = np.zeros((len(tables), n_union), dtype=np.bool_)
    conflicts: dict[str, list[str]] = {name: [] for name, _ in tables}
    absent: dict[str, list[str]] = {name: [] for name, _ in tables}
    ref_site = np.array([r[0] for r in ref_rows], dtype=np.intp)
    ref_row = np.array([r[1] for r in ref_rows], dtype=np.intp)
    union_ids = np.empty(n_union, dtype=object)
    for s, (_name, vt) in enumerate(tables):
        sel = ref_site == s
        union_ids[sel] = vt.snp[ref_row[sel]]
    for s, (name, vt) in enumerate(tables):
        lookup = lookups[s]
        rows = np.array([lookup.get(str(u), -1) for u in union_ids], dtype=np.intp)
        have = rows >= 0
        for rs in range(len(tables)):
            sel = have & (ref_site == rs)
            if not np.any(sel):
                continue
            ref_vt = tables[rs][1]
            r_ref, r_me = ref_row[sel], rows[sel]
            same_pos = (ref_vt.chrom[r_ref] == vt.chrom[r_me]) & (ref_vt.bp[r_ref] == vt.bp[r_me])
            same = (ref_vt.a1[r_ref] == vt.a1[r_me]) & (ref_vt.a2[r_ref] == vt.a2[r_me])
            swapped = (ref_vt.a1[r_ref] == vt.a2[r_me]) & (ref_vt.a2[r_ref] == vt.a1[r_me])
            ok = same_pos & (same | swapped)
            where = np.flatnonzero(sel)
            idx[s, where[ok]] = r_me[ok]
            flip[s, where[ok]] = swapped[ok] & ~same[ok]
            conflicts[name].extend(str(x) for x in union_ids[where[~ok]])
        absent[name] = [str(x) for x in union_ids[idx[s] < 0]]
    everywhere = np.all(idx >= 0, axis=0)
    somewhere = np.any(idx >= 0, axis=0)
    keep = everywhere if policy is AbsentPolicy.DROP else somewhere
    dropped = [str(x) for x in union_ids[~keep]]
    if not np.any(keep):
        names = ", ".join(repr(n) for n, _ in tables)
        raise DataError(f"sites {names} share no variant (matched by id, position and alleles)")
    kept = np.flatnonzero(keep)
    variants = _reference_table(tables, ref_site[kept], ref_row[kept])
    sites = tuple(
        SiteAlignment(name, idx[s, kept], flip[s, kept]) for s, (name, _) in enumerate(tables)
    )
    return Alignment(variants, sites, absent, conflicts, dropped)


def _identical_everywhere(tables: Sequence[tuple[str, VariantTable]]) -> Alignment | None:
    """The alignment when every site lists the same variants in the same order and orientation
    with unique ids (the common case: one genotyping array or imputation panel), else None.

    Equal to what the general matching gives for such tables (every variant present everywhere,
    none flipped, the first site's order), without building any dictionary."""
    ref = tables[0][1]
    n = len(ref)
    for _name, vt in tables[1:]:
        if vt is ref:
            continue
        if len(vt) != n or not all(
            np.array_equal(getattr(vt, col), getattr(ref, col))
            for col in ("snp", "chrom", "bp", "a1", "a2")
        ):
            return None
    if n == 0 or np.unique(ref.snp).shape[0] != n:
        return None  # the general path reports duplicates and empty tables
    rows = np.arange(n, dtype=np.intp)
    names = [name for name, _ in tables]
    sites = tuple(SiteAlignment(name, rows, np.zeros(n, dtype=np.bool_)) for name in names)
    variants = VariantTable(
        ref.chrom.astype(np.str_),
        ref.snp.astype(np.str_),
        np.asarray(ref.cm, dtype=np.float64),
        np.asarray(ref.bp, dtype=np.int64),
        ref.a1.astype(np.str_),
        ref.a2.astype(np.str_),
    )
    return Alignment(variants, sites, {s: [] for s in names}, {s: [] for s in names}, [])


def _reference_table(
    tables: Sequence[tuple[str, VariantTable]],
    site_of: npt.NDArray[np.intp],
    row_of: npt.NDArray[np.intp],
) -> VariantTable:
    n = site_of.shape[0]
    chrom = np.empty(n, dtype=object)
    snp = np.empty(n, dtype=object)
    a1 = np.empty(n, dtype=object)
    a2 = np.empty(n, dtype=object)
    cm = np.empty(n, dtype=np.float64)
    bp = np.empty(n, dtype=np.int64)
    for s, (_name, vt) in enumerate(tables):
        sel = site_of == s
        r = row_of[sel]
        chrom[sel], snp[sel], a1[sel], a2[sel] = vt.chrom[r], vt.snp[r], vt.a1[r], vt.a2[r]
        cm[sel], bp[sel] = vt.cm[r], vt.bp[r]
    return VariantTable(
        chrom.astype(np.str_), snp.astype(np.str_), cm, bp, a1.astype(np.str_), a2.astype(np.str_)
    )


def align_genotypes(
    genotypes: npt.NDArray[np.int8], alignment: SiteAlignment
) -> npt.NDArray[np.int8]:
    """A site's ``(V, n)`` genotypes in the aligned order and reference orientation.

    Absent variants become all-missing rows (``-1``), so they drop out of every count. When
    the site's rows already are the aligned list, the input array itself is returned.
    """
    rows = alignment.index
    identity = rows.shape[0] == genotypes.shape[0] and bool(
        np.array_equal(rows, np.arange(rows.shape[0]))
    )
    if identity and not np.any(alignment.flip):
        return genotypes
    out = np.full((rows.shape[0], genotypes.shape[1]), -1, dtype=np.int8)
    have = rows >= 0
    out[have] = genotypes[rows[have]]
    flip_rows = np.flatnonzero(alignment.flip)
    if flip_rows.size:
        block = out[flip_rows]
        out[flip_rows] = np.where(block >= 0, 2 - block, block).astype(np.int8)
    return out


def orient_genotypes(
    genotypes: npt.NDArray[np.int8], swap: npt.NDArray[np.bool_]
) -> npt.NDArray[np.int8]:
    """Count the other allele (``2 - g``) on the rows where ``swap`` is True, in place."""
    rows = np.flatnonzero(swap)
    if rows.size:
        block = genotypes[rows]
        genotypes[rows] = np.where(block >= 0, 2 - block, block).astype(np.int8)
    return genotypes

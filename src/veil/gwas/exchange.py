"""What sites reveal about their data before any sum: variant lists and covariate names.

Every site reveals its ``.bim`` (id, chromosome, cM, position, alleles) and its covariate names
to the other sites (``ctx.reveal``, tag ``gwas.variants``) — first a SHA-256 digest, and the
lists only when the digests differ — so that every site aligns the variants identically
(:func:`veil.gwas.variants.match_variants`). Genotypes, phenotypes and subjects never travel
here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from veil.core.wire import encode_value
from veil.errors import ConfigError, ProtocolError
from veil.gwas.plinkio import VariantTable
from veil.gwas.site import SiteCovariates
from veil.gwas.variants import AbsentPolicy, Alignment, match_variants
from veil.runtime.context import Context
from veil.runtime.party import PartyObject


def exchange_and_align(
    ctx: Context,
    sites: Sequence[str],
    variants: VariantTable,
    covs: SiteCovariates | None,
    absent: AbsentPolicy,
) -> Alignment:
    """Reveal this site's variant list and covariate names to every site, receive theirs, and
    align (identically everywhere). Raises ConfigError if the sites' covariates differ.

    The sites first reveal a SHA-256 digest of their payload (:func:`variant_payload`): when
    all digests are equal — every site has the same ``.bim`` and covariate names, the common
    case of one genotyping array or imputation panel — the lists themselves are not sent (each
    site already holds them); otherwise every site reveals its full payload."""
    me = ctx.party
    payload = variant_payload(variants, covs)
    digest = payload_digest(payload)
    digests: dict[str, bytes] = {}
    for s in sites:
        mine = {"sha256": digest, "n": len(variants)} if s == me else None
        got = ctx.reveal(PartyObject(ctx, s, mine), to=ctx.parties(*sites), tag="gwas.variants")
        if not (
            isinstance(got, dict)
            and set(got) == {"sha256", "n"}
            and isinstance(got["sha256"], bytes)
            and len(got["sha256"]) == 32
        ):
            raise ProtocolError(f"site {s!r} sent a malformed variant-list digest")
        digests[s] = got["sha256"]
    tables: dict[str, VariantTable] = {}
    cov_names: dict[str, list[str] | None] = {}
    if all(d == digest for d in digests.values()):
        own = list(covs.names) if covs is not None else None
        for s in sites:
            tables[s], cov_names[s] = variants, own
    else:
        for s in sites:
            mine = payload if s == me else None
            got = ctx.reveal(PartyObject(ctx, s, mine), to=ctx.parties(*sites), tag="gwas.variants")
            tables[s], cov_names[s] = parse_variant_payload(got, s)
    first = sites[0]
    for s in sites[1:]:
        if cov_names[s] != cov_names[first]:

            def has(site: str) -> str:
                got = cov_names[site]
                return "no covariate file" if got is None else f"covariates {got}"

            raise ConfigError(
                f"site {s!r} has {has(s)} but site {first!r} has {has(first)}: every site needs "
                "a covariate file with the same columns (or select them with --covar-name)"
            )
    return match_variants([(s, tables[s]) for s in sites], absent)


def variant_payload(variants: VariantTable, covs: SiteCovariates | None) -> dict[str, Any]:
    """What a site reveals about its data before the sums: its ``.bim`` and covariate names."""
    return {
        "chrom": "\n".join(variants.chrom.tolist()),
        "snp": "\n".join(variants.snp.tolist()),
        "a1": "\n".join(variants.a1.tolist()),
        "a2": "\n".join(variants.a2.tolist()),
        "cm": np.ascontiguousarray(variants.cm, dtype=np.float64),
        "bp": np.ascontiguousarray(variants.bp, dtype=np.int64),
        "covariates": list(covs.names) if covs is not None else None,
    }


def payload_digest(payload: Mapping[str, Any]) -> bytes:
    """SHA-256 of a :func:`variant_payload` (its canonical wire encoding, domain-separated)."""
    return hashlib.sha256(encode_value(["veil-gwas/v1/variants", dict(payload)])).digest()


def parse_variant_payload(obj: Any, site: str) -> tuple[VariantTable, list[str] | None]:
    """Validate a site's revealed variant list; ProtocolError naming the site if malformed."""
    keys = {"chrom", "snp", "a1", "a2", "cm", "bp", "covariates"}
    if not isinstance(obj, dict) or set(obj) != keys:
        raise ProtocolError(f"site {site!r} sent a malformed variant list")
    cm, bp = obj["cm"], obj["bp"]
    if not (isinstance(cm, np.ndarray) and cm.dtype == np.float64 and cm.ndim == 1):
        raise ProtocolError(f"site {site!r} sent variant positions (cM) that are not float64")
    if not (isinstance(bp, np.ndarray) and bp.dtype == np.int64 and bp.shape == cm.shape):
        raise ProtocolError(f"site {site!r} sent base-pair positions that do not match")
    cols: dict[str, np.ndarray] = {}
    for k in ("chrom", "snp", "a1", "a2"):
        text = obj[k]
        if not isinstance(text, str):
            raise ProtocolError(f"site {site!r} sent a malformed {k} column")
        parts = text.split("\n") if bp.size else []
        if len(parts) != bp.size:
            raise ProtocolError(
                f"site {site!r} sent {len(parts)} {k} entries for {bp.size} variants"
            )
        cols[k] = np.array(parts, dtype=np.str_)
    names = obj["covariates"]
    if names is not None and not (
        isinstance(names, list) and all(isinstance(n, str) for n in names)
    ):
        raise ProtocolError(f"site {site!r} sent malformed covariate names")
    table = VariantTable(cols["chrom"], cols["snp"], cm, bp, cols["a1"], cols["a2"])
    return table, names


__all__ = ["exchange_and_align", "parse_variant_payload", "payload_digest", "variant_payload"]

"""Plain-data forms of GWAS results for the wire codec (never pickled), and back.

A site's job returns its results to the runner (through the worker's result file when the sites
are processes) as numpy arrays, strings and numbers only; :func:`result_from_plain` rebuilds the
known result classes and nothing else.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from veil.errors import ProtocolError
from veil.gwas.assoc import AssocResult, TrendResult
from veil.gwas.linear import LinearResult
from veil.gwas.logistic import LogisticResult
from veil.gwas.plinkio import VariantTable
from veil.gwas.qc import QcResult
from veil.gwas.session import GwasResult, Test

_PARTS: dict[str, type[Any]] = {
    "qc": QcResult,
    "assoc": AssocResult,
    "trend": TrendResult,
    "logistic": LogisticResult,
    "linear": LinearResult,
}


def result_to_plain(result: GwasResult) -> dict[str, Any]:
    """A :class:`GwasResult` as plain data for the wire codec (numpy arrays, str, numbers)."""
    vt = result.variants
    out: dict[str, Any] = {
        "variants": {
            "chrom": [str(x) for x in vt.chrom],
            "snp": [str(x) for x in vt.snp],
            "cm": vt.cm,
            "bp": vt.bp,
            "a1": [str(x) for x in vt.a1],
            "a2": [str(x) for x in vt.a2],
        },
        "test": result.test.value,
        "rounds": result.rounds,
        "n_subjects": result.n_subjects,
    }
    for name in _PARTS:
        part = getattr(result, name)
        out[name] = (
            None
            if part is None
            else {f.name: getattr(part, f.name) for f in dataclasses.fields(part)}
        )
    return out


def result_from_plain(data: Mapping[str, Any]) -> GwasResult:
    """Inverse of :func:`result_to_plain` (only the result classes above; ProtocolError if
    malformed)."""
    try:
        v = data["variants"]
        variants = VariantTable(
            np.array(v["chrom"], dtype=np.str_),
            np.array(v["snp"], dtype=np.str_),
            np.asarray(v["cm"], dtype=np.float64),
            np.asarray(v["bp"], dtype=np.int64),
            np.array(v["a1"], dtype=np.str_),
            np.array(v["a2"], dtype=np.str_),
        )
        parts: dict[str, Any] = {}
        for name, cls in _PARTS.items():
            body = data[name]
            if body is None:
                parts[name] = None
                continue
            wanted = {f.name for f in dataclasses.fields(cls)}
            if set(body) != wanted:
                raise ProtocolError(f"result part {name!r} has fields {sorted(body)}")
            parts[name] = cls(**body)
        return GwasResult(
            variants,
            parts["qc"],
            Test(data["test"]),
            parts["assoc"],
            parts["trend"],
            parts["logistic"],
            parts["linear"],
            int(data["rounds"]),
            int(data["n_subjects"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ProtocolError(f"malformed GWAS result: {type(exc).__name__}: {exc}") from None


def dp_from_json(data: Mapping[str, Any]) -> Any:
    """The :class:`veil.gwas.dp_release.DpRelease` of its ``to_json()`` form."""
    from veil.dp import DPEventRecord
    from veil.gwas.dp_release import DpRelease

    try:
        hits = list(data["hits"])
        return DpRelease(
            epsilon=float(data["epsilon"]),
            epsilon_selection=float(data["epsilon_selection"]),
            epsilon_release=float(data["epsilon_release"]),
            k=int(data["k"]),
            sensitivity=float(data["sensitivity"]),
            mechanism=str(data["mechanism"]),
            noise=str(data["noise"]),
            chrom=tuple(str(h["CHR"]) for h in hits),
            snp=tuple(str(h["SNP"]) for h in hits),
            bp=tuple(int(h["BP"]) for h in hits),
            chisq=tuple(float(h["CHISQ"]) for h in hits),
            p=tuple(float(h["P"]) for h in hits),
            n_candidates=int(data["n_candidates"]),
            records=tuple(DPEventRecord.from_dict(dict(e)) for e in data["events"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ProtocolError(f"malformed DP release: {type(exc).__name__}: {exc}") from None


__all__ = ["dp_from_json", "result_from_plain", "result_to_plain"]

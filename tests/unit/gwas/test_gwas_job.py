"""The SPMD GWAS job: sums only on the wire, equal to the pooled run, options and results codec."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from gwas_synth import make_synthetic, write_sites

from veil.core import wire
from veil.errors import ConfigError
from veil.gwas.job import (
    GwasJobOptions,
    gwas_job,
    result_from_plain,
    result_to_plain,
)
from veil.gwas.plinkio import read_covariates, read_fileset, write_fileset
from veil.gwas.qc import QcOptions
from veil.gwas.secure_sum import SecureSum, encode, layout_for, pack_counts
from veil.gwas.session import GwasOptions, GwasResult, Test, prepare_local, run_local
from veil.gwas.site import SiteCovariates
from veil.gwas.variants import AbsentPolicy
from veil.runtime.context import Context
from veil.runtime.jobs import run_party
from veil.transport.base import Link
from veil.transport.memory import MemoryHub


class RecordingLink(Link):
    """Delegates to a real link and keeps a copy of every payload sent and received."""

    def __init__(self, inner: Link, log: list[tuple[str, str, str, Any]]) -> None:
        super().__init__(inner.party, inner.parties)
        self.inner = inner
        self.log = log

    def send_bytes(self, to: str, key: str, data: bytes | bytearray | memoryview) -> None:
        self.log.append(("sent", to, key, bytes(data)))
        self.inner.send_bytes(to, key, data)

    def recv_bytes(self, frm: str, key: str, timeout: float | None = None) -> bytes:
        data = self.inner.recv_bytes(frm, key, timeout)
        self.log.append(("recv", frm, key, data))
        return data

    def send_array(self, to: str, key: str, arr: np.ndarray) -> None:
        self.log.append(("sent", to, key, np.array(arr, copy=True)))
        self.inner.send_array(to, key, arr)

    def recv_array(self, frm: str, key: str, timeout: float | None = None) -> np.ndarray:
        arr = self.inner.recv_array(frm, key, timeout)
        self.log.append(("recv", frm, key, np.array(arr, copy=True)))
        return arr

    def close(self) -> None:
        self.inner.close()

    def abort(self, reason: str) -> None:
        self.inner.abort(reason)

    def stats(self) -> Any:
        return self.inner.stats()


def write_study(tmp: Path, seed: int = 41) -> tuple[dict[str, Path], dict[str, Path]]:
    syn = make_synthetic(seed=seed, n_variants=40)
    paths = write_sites(syn, tmp)
    sites = {f.site: p for (p, _), f in zip(paths, syn.sites, strict=True)}
    covs = {f.site: c for (_, c), f in zip(paths, syn.sites, strict=True)}
    return sites, covs


def pooled(
    sites: dict[str, Path], covs: dict[str, Path] | None, opts: GwasJobOptions
) -> GwasResult:
    filesets = [read_fileset(p, s) for s, p in sites.items()]
    cv = None
    if covs is not None:
        cv = []
        for f in filesets:
            values, names = read_covariates(covs[f.site], f.site, f.samples, opts.covar_names)
            cv.append(SiteCovariates(values, tuple(names)))
    local, al = prepare_local(filesets, cv, policy=opts.absent, mind=opts.gwas.qc.mind,
                              site_covariate=opts.site_covariate)  # fmt: skip
    return run_local(local, al.variants, opts.gwas)


def assert_same(ours: GwasResult, ref: GwasResult) -> None:
    np.testing.assert_array_equal(ours.variants.snp, ref.variants.snp)
    np.testing.assert_array_equal(ours.variants.a1, ref.variants.a1)
    assert ours.qc.removed == ref.qc.removed and ours.n_subjects == ref.n_subjects
    np.testing.assert_allclose(ours.statistic(), ref.statistic(), rtol=1e-9, atol=1e-12)


def test_only_masked_sums_travel_and_the_result_is_the_pooled_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sites, covs = write_study(tmp_path)
    names = list(sites)
    opts = GwasJobOptions(
        gwas=GwasOptions(test=Test.LOGISTIC, qc=QcOptions(maf=0.01, geno=0.2)),
        absent=AbsentPolicy.USE_AVAILABLE,
        site_covariate=True,
    )
    local: dict[str, list[tuple[str, np.ndarray, int | None]]] = {s: [] for s in names}
    exchange = SecureSum.exchange

    def spy(self: SecureSum, key: str, values: np.ndarray, bound: int | None = None) -> Any:
        local[self.me].append((key, values.copy(), bound))  # the site's plaintext statistics
        return exchange(self, key, values, bound)

    monkeypatch.setattr(SecureSum, "exchange", spy)
    hub = MemoryHub(names)
    logs: dict[str, list[tuple[str, str, str, Any]]] = {s: [] for s in names}
    ctxs = {s: Context(s, RecordingLink(hub.link(s, timeout=30), logs[s])) for s in names}
    outcomes: dict[str, Any] = {}

    def run(s: str) -> None:
        params = {"prefix": str(sites[s]), "covar": str(covs[s]), "sites": names,
                  **opts.to_params()}  # fmt: skip
        outcomes[s] = run_party(gwas_job, ctxs[s], params)

    threads = [threading.Thread(target=run, args=(s,)) for s in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(o.ok for o in outcomes.values()), [o.error for o in outcomes.values()]
    results = [result_from_plain(outcomes[s].result["result"]) for s in names]
    ref = pooled(sites, covs, opts)
    for r in results:
        assert_same(r, ref)
    assert ref.logistic is not None and np.isfinite(ref.logistic.z).sum() > 10

    payloads = [item for log in logs.values() for item in log]
    arrays = [p for *_, p in payloads if isinstance(p, np.ndarray)]
    blobs = [p for *_, p in payloads if isinstance(p, bytes)]
    assert arrays and all(a.dtype == np.uint64 for a in arrays)  # masked limbs only
    for blob in blobs:  # 32-byte public keys, or the plaintext variant lists (and nothing else)
        if len(blob) == 32:
            continue
        assert blob[:1] == b"v"
        assert set(wire.decode_value(blob[1:])) in (
            {"chrom", "snp", "a1", "a2", "cm", "bp", "covariates"},
            {"sha256", "n"},  # the digest of those, sent first
        )
    keys = {k for items in local.values() for k, _, _ in items}
    assert {"gwas/counts", "gwas/logistic/0", "gwas/logistic/null/0"} <= keys
    packed = {k for items in local.values() for k, _, bound in items if bound is not None}
    assert packed == {"gwas/counts", "gwas/logistic/nobs"}  # integer counts, packed
    wire_bytes = blobs + [a.tobytes() for a in arrays]
    checked = 0
    for s in names:
        for key, values, bound in local[s]:
            if not np.any(values):
                continue
            if bound is None:
                words = encode(values, layout_for(len(names))).ravel()
            else:
                words = pack_counts(values, bound)
            for a in arrays:  # no word of any message equals the site's encoded statistic
                if a.size == words.size:
                    assert np.count_nonzero((a == words) & (words != 0)) == 0, (s, key)
            raw = values.tobytes()
            as_float = values.astype(np.float64).tobytes()
            as_int = np.rint(values).astype(np.int64).tobytes()
            for b in wire_bytes:  # nor does the float64 (or integer) statistic appear anywhere
                assert raw not in b and as_float not in b, (s, key)
                if key in packed:
                    assert as_int not in b, (s, key)
            checked += 1
    assert checked >= 3 * 10


def test_job_options_round_trip_and_refusals() -> None:
    opts = GwasJobOptions(
        gwas=GwasOptions(test=Test.LINEAR, qc=QcOptions(maf=0.05, hwe=1e-6, mind=0.1), beta=True),
        absent=AbsentPolicy.USE_AVAILABLE,
        covar_names=("C1",),
        site_covariate=True,
    )
    assert GwasJobOptions.from_params(opts.to_params()) == opts
    assert GwasJobOptions.from_params({"absent": "available"}).absent is AbsentPolicy.USE_AVAILABLE
    assert GwasJobOptions.from_params({"covar_names": "C1,C2"}).covar_names == ("C1", "C2")
    for bad, match in [
        ({"test": "wald"}, "test must be"),
        ({"maf": 1.5}, "--maf"),
        ({"absent": "keep"}, "absent must be"),
        ({"colour": 1}, "unknown gwas job parameter"),
        ({"dp_epsilon": 1.0, "test": "logistic"}, "assoc only"),
        ({"dp_epsilon": -1.0}, "positive"),
        ({"beta": "yes"}, "true or false"),
    ]:
        with pytest.raises(ConfigError, match=match):
            GwasJobOptions.from_params(bad)


@pytest.mark.parametrize("test", [Test.ASSOC, Test.TREND, Test.LOGISTIC])
def test_results_travel_through_the_wire_codec(tmp_path: Path, test: Test) -> None:
    sites, covs = write_study(tmp_path, seed=43)
    res = pooled(sites, covs, GwasJobOptions(gwas=GwasOptions(test=test)))
    back = result_from_plain(wire.decode_value(wire.encode_value(result_to_plain(res))))
    assert back.test is res.test and back.rounds == res.rounds
    np.testing.assert_array_equal(back.variants.bp, res.variants.bp)
    np.testing.assert_array_equal(back.statistic(), res.statistic())
    np.testing.assert_array_equal(back.qc.keep, res.qc.keep)


def test_dp_release_is_ledgered_at_every_site_and_capped_by_the_budget(tmp_path: Path) -> None:
    from veil.errors import PartyFailed
    from veil.gwas.dp_release import DpRelease
    from veil.gwas.job import run_gwas

    sites, _ = write_study(tmp_path, seed=45)
    opts = GwasJobOptions(absent=AbsentPolicy.USE_AVAILABLE, dp_epsilon=1.0, dp_top=3)
    run = run_gwas(sites, options=opts, privacy_budget=(10.0, 1e-6))
    dp = run.dp
    assert isinstance(dp, DpRelease) and dp.k == 3 and dp.epsilon == pytest.approx(1.0)
    assert set(dp.snp) <= set(run.result.variants.snp)
    entries = [e for e in run.facts.ledger if e["tag"] == "gwas.dp_release"]
    assert sorted(e["party"] for e in entries) == sorted(sites)
    assert all(e["event"] == "dp_release" and e["dp"]["epsilon"] == 1.0 for e in entries)
    (owner,) = [e for e in entries if "events" in e["dp"]]
    assert owner["party"] == "h1" and owner["dp"]["spent"][0] >= 1.0
    assert len(owner["dp"]["events"]) == 2  # selection, then the noisy statistics
    with pytest.raises(PartyFailed, match="PrivacyBudgetExceeded"):
        run_gwas(sites, options=opts, privacy_budget=(0.5, 1e-6), timeout=20)


def test_identical_variant_lists_travel_as_digests_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same ``.bim`` everywhere: only SHA-256 digests of the lists are sent, and the result is
    the pooled one; one differing site makes every site send its full list."""
    syn = make_synthetic(seed=5, n_variants=30)
    ref_vt = syn.variants  # every site: the pooled twin's .bim, in the same order
    same = [
        dataclasses.replace(f, variants=ref_vt, genotypes=syn.pooled_geno[:, syn.pooled_site == i])
        for i, f in enumerate(syn.sites)
    ]
    syn = dataclasses.replace(syn, sites=same)
    paths = write_sites(syn, tmp_path)
    sites = {f.site: p for (p, _), f in zip(paths, syn.sites, strict=True)}
    covs = {f.site: c for (_, c), f in zip(paths, syn.sites, strict=True)}
    names = list(sites)
    opts = GwasJobOptions(gwas=GwasOptions(test=Test.LOGISTIC, qc=QcOptions(maf=0.01)))

    def run(prefixes: dict[str, Path]) -> tuple[list[dict[str, Any]], list[set[str]]]:
        hub = MemoryHub(names)
        logs: dict[str, list[tuple[str, str, str, Any]]] = {s: [] for s in names}
        ctxs = {s: Context(s, RecordingLink(hub.link(s, timeout=30), logs[s])) for s in names}
        outcomes: dict[str, Any] = {}

        def one(s: str) -> None:
            params = {"prefix": str(prefixes[s]), "covar": str(covs[s]), "sites": names,
                      **opts.to_params()}  # fmt: skip
            outcomes[s] = run_party(gwas_job, ctxs[s], params)

        threads = [threading.Thread(target=one, args=(s,)) for s in names]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert all(o.ok for o in outcomes.values()), [o.error for o in outcomes.values()]
        kinds = [
            set(wire.decode_value(p[1:]))
            for log in logs.values()
            for direction, *_, p in log
            if direction == "sent" and isinstance(p, bytes) and p[:1] == b"v"
        ]
        return [outcomes[s].result for s in names], kinds

    results, kinds = run(sites)
    assert kinds and all(k == {"sha256", "n"} for k in kinds)  # no variant list on the wire
    ref = pooled(sites, covs, opts)
    for r in results:
        assert_same(result_from_plain(r["result"]), ref)
        assert r["n_aligned"] == 30 and r["flipped"] == {s: 0 for s in names}
    # one site lists one variant's alleles swapped: the digests differ, the lists are sent
    flipped = ref_vt.take(np.arange(30))
    a1, a2 = flipped.a1.copy(), flipped.a2.copy()
    a1[4], a2[4] = ref_vt.a2[4], ref_vt.a1[4]
    f2 = syn.sites[2]
    geno = f2.genotypes.copy()
    geno[4] = np.where(geno[4] >= 0, 2 - geno[4], geno[4])
    other = tmp_path / "other" / f2.site
    other.parent.mkdir()
    write_fileset(other, dataclasses.replace(flipped, a1=a1, a2=a2), f2.samples, geno)
    results, kinds = run({**sites, f2.site: other})
    assert {"chrom", "snp", "a1", "a2", "cm", "bp", "covariates"} in kinds
    for r in results:
        assert_same(result_from_plain(r["result"]), ref)  # the flip is undone, same answer
        assert r["flipped"][f2.site] == 1

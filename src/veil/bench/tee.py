"""Benchmark ``tee``: attestation verification per platform, and LR training in the TEE.

Two kinds of records, printed as JSON lines (``veil bench tee [--what verify,lr]``):

- ``tee.verify``: :func:`veil.tee.verify_evidence` on each real vendor sample of
  ``tests/data/tee`` (SGX and TDX DCAP quotes, SEV-SNP Milan report, Nitro document) and on fresh
  simulated evidence, at the sample's pinned clock; ``seconds`` = median of ``--repeats``.
- ``lr.train``: the anchors' ``lr.train`` inputs (``lr_dataset()``, ``LR_CONFIG``: 100 000 rows ×
  30 features, batch 1024, 5 epochs, lr 0.1). ``veil-tee-sim``: a whole SPMD job over the memory
  link — bank holds the first 15 features and the labels, ext1 the other 15; both attest the
  simulated enclave hosted by bank, seal their columns to it, the enclave trains the anchors'
  float32 loop and releases (w, b) to bank only. ``seconds`` is the median job wall time (enclave
  start, attestation, sealing, training, release); ``train_seconds`` the training call alone.
  ``veil-numpy-f32``: the anchors' ``lr_train_numpy`` in this process, same run. ``max_abs_err``
  = max |(w, b) − (w, b) of the numpy float32 loop|; ``auc`` on the 20 000 test rows.
  ``veil-semi2k`` / ``veil-aby3`` (``--mpc``, default semi2k): veil's secret-shared LR
  (:mod:`veil.bench.lr`, ``engine: "mpc"``) on the same inputs, in the same run.

The TEE figures are for the **simulated** enclave (as trusted as a third party): they measure
veil's overhead around native-speed computation, not a hardware TEE.

    python -m veil.bench.tee [--what verify,lr] [--repeats 30] [--lr-repeats 3] [--mpc semi2k]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from veil.bench.common import anchor_inputs, emit, median, record
from veil.errors import ConfigError

#: Each sample: (platform, evidence file, collateral file, pinned time) — times inside the
#: validity windows documented in docs/tee.md.
SAMPLES = (
    ("sgx", "sgx_quote", "sgx_quote_collateral.json", "2025-06-20T12:00:00+00:00"),
    ("tdx", "tdx_quote", "tdx_quote_collateral.json", "2025-06-20T12:00:00+00:00"),
    ("sev-snp", "snp_milan_report.bin", "snp_milan_collateral.pem", "2026-09-01T00:00:00+00:00"),
    ("nitro", "nitro_doc.b64", None, "2024-09-17T20:48:00+00:00"),
)


def samples_dir() -> Path:
    """``tests/data/tee`` of the source tree."""
    for parent in Path(__file__).resolve().parents:
        cand = parent / "tests" / "data" / "tee"
        if cand.is_dir():
            return cand
    raise ConfigError("tests/data/tee not found: run the benchmark from a veil source checkout")


def _time(fn: Any, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def run_verify(repeats: int = 30) -> Iterator[dict[str, Any]]:
    """Verification time per platform on the real samples, and on simulated evidence."""
    from veil.tee import ProgramBundle, TrustAnchors, new_nonce, verify_evidence
    from veil.tee.binding import report_data
    from veil.tee.sim import SimRoot, expected_sim_measurement, sign_sim_evidence

    folder = samples_dir()
    for platform, ev_name, col_name, at in SAMPLES:
        evidence = (folder / ev_name).read_bytes()
        collateral = None if col_name is None else (folder / col_name).read_bytes()
        now = datetime.fromisoformat(at)

        def once(
            p: str = platform, e: bytes = evidence, c: Any = collateral, t: datetime = now
        ) -> None:
            verify_evidence(p, e, c, now=t)

        once()  # warm-up (imports)
        times = _time(once, repeats)
        yield record(
            "tee.verify",
            f"veil-tee-verify-{platform}",
            1,
            median(times),
            evidence_bytes=len(evidence),
            min_seconds=min(times),
            repeats=repeats,
        )
    root = SimRoot.generate()
    bundle = ProgramBundle.from_functions([lr_train_f32], dependencies=["numpy"])
    sim_ev = sign_sim_evidence(
        root,
        measurement=expected_sim_measurement(bundle),
        report_data=report_data(b"bench", new_nonce(), b"\1" * 32, bundle.digest()),
        timestamp_ms=int(time.time() * 1000),
    )
    anchors = TrustAnchors(sim_root_public_keys=frozenset({root.public_key}))
    now = datetime.now(UTC)
    times = _time(lambda: verify_evidence("sim", sim_ev, None, now=now, anchors=anchors), repeats)
    yield record(
        "tee.verify",
        "veil-tee-verify-sim",
        1,
        median(times),
        evidence_bytes=len(sim_ev),
        min_seconds=min(times),
        repeats=repeats,
        assurance="simulated: as trusted as a third party",
    )


def lr_train_f32(x_a: Any, x_b: Any, y: Any, batch: int, epochs: int, lr: float) -> Any:
    """The anchors' ``lr_train_numpy`` loop (float32) on vertically split features; (w, b)."""
    import numpy

    x = numpy.hstack([x_a, x_b]).astype(numpy.float32)
    y = numpy.asarray(y, numpy.float32)
    w, b = numpy.zeros(x.shape[1], numpy.float32), numpy.float32(0)
    rate = numpy.float32(lr)
    for _ in range(epochs):
        for s in range(0, len(x), batch):
            e = min(s + batch, len(x))
            g = 1 / (1 + numpy.exp(-(x[s:e] @ w + b))) - y[s:e]
            w = w - rate * (x[s:e].T @ g) / numpy.float32(e - s)
            b = b - rate * g.mean()
    return numpy.append(w, b)


def lr_tee_job(
    ctx: Any, sim_root: bytes, x: Any, y: Any, cfg: dict[str, Any]
) -> dict[str, Any] | None:
    """bank (its feature columns, the labels; hosts the enclave) and ext1 (its feature columns)
    train in the simulated TEE; (w, b) is released to bank only."""
    from veil.devices.tee import ReleasePolicy, sim_policy
    from veil.tee import ProgramBundle

    bank, ext1 = ctx.parties("bank", "ext1")
    bundle = ProgramBundle.from_functions([lr_train_f32], dependencies=["numpy"])
    t0 = time.perf_counter()
    with ctx.tee(
        bank,
        program=bundle,
        owners=[bank, ext1],
        release=ReleasePolicy(recipients=frozenset({"bank"})),
        policy=sim_policy(bundle),
        sim_root=sim_root,
    ) as tee:
        xa = bank(lambda: x)().to(tee)
        yb = bank(lambda: y)().to(tee)
        xb = ext1(lambda: x)().to(tee)
        t1 = time.perf_counter()
        wb = tee(lr_train_f32)(xa, xb, yb, cfg["batch"], cfg["epochs"], cfg["lr"])
        t2 = time.perf_counter()
        out = ctx.reveal(wb, to=bank, tag="model.weights")
        t3 = time.perf_counter()
    if ctx.party != "bank":
        return None
    return {
        "wb": out,
        "setup_seconds": t1 - t0,
        "train_seconds": t2 - t1,
        "release_seconds": t3 - t2,
    }


def run_lr(repeats: int = 3) -> Iterator[dict[str, Any]]:
    """LR training: simulated TEE job vs plaintext numpy float32, alternated ``repeats`` times."""
    import veil
    from veil.tee.sim import SimRoot

    inputs = anchor_inputs()
    cfg = dict(inputs.LR_CONFIG)
    x, y, x_test, y_test = inputs.lr_dataset()
    fingerprint = inputs.fingerprint(x, y, x_test, y_test)
    rows, feats = x.shape
    split = feats // 2
    root = SimRoot.generate().private_bytes()
    params = {
        "bank": {"sim_root": root, "x": x[:, :split], "y": y, "cfg": cfg},
        "ext1": {"sim_root": root, "x": x[:, split:], "y": None, "cfg": cfg},
    }
    numpy_times: list[float] = []
    tee_runs: list[tuple[float, dict[str, Any], int]] = []
    ref = np.zeros(feats + 1)
    for _ in range(repeats):
        t0 = time.perf_counter()
        w_ref, b_ref = inputs.lr_train_numpy(x, y, cfg["batch"], cfg["epochs"], cfg["lr"])
        numpy_times.append(time.perf_counter() - t0)
        ref = np.append(w_ref, b_ref)
        res = veil.simulate_detailed(
            lr_tee_job, ["bank", "ext1"], params=params, per_party_params=True
        )
        sent = sum(s["bytes_sent"] for s in res.stats.values())
        tee_runs.append((res.seconds, res.results["bank"], sent))
    auc_ref = inputs.auc(y_test, x_test @ ref[:-1] + ref[-1])
    yield record(
        "lr.train",
        "veil-numpy-f32",
        rows,
        median(numpy_times),
        max_abs_err=0.0,
        auc=auc_ref,
        features=feats,
        runs=repeats,
        plaintext=True,
        engine="plaintext",
        inputs_sha256=fingerprint,
    )
    wb = np.asarray(tee_runs[-1][1]["wb"])
    yield record(
        "lr.train",
        "veil-tee-sim",
        rows,
        median([t for t, _, _ in tee_runs]),
        bytes_=tee_runs[-1][2],
        rounds=None,
        max_abs_err=max(float(np.max(np.abs(np.asarray(r["wb"]) - ref))) for _, r, _ in tee_runs),
        auc=inputs.auc(y_test, x_test @ wb[:-1] + wb[-1]),
        auc_numpy_f32=auc_ref,
        train_seconds=median([r["train_seconds"] for _, r, _ in tee_runs]),
        setup_seconds=median([r["setup_seconds"] for _, r, _ in tee_runs]),
        release_seconds=median([r["release_seconds"] for _, r, _ in tee_runs]),
        numpy_f32_seconds=median(numpy_times),
        features=feats,
        runs=repeats,
        engine="tee-sim",
        inputs_sha256=fingerprint,
        assurance="simulated: as trusted as a third party",
    )


def run_lr_mpc(
    protocols: tuple[str, ...], rows: int = 100_000, epochs: int = 5
) -> Iterator[dict[str, Any]]:
    """veil's secret-shared LR (:mod:`veil.bench.lr`) on the same inputs, in the same run."""
    from veil.bench.lr import run as run_sslr

    for rec in run_sslr(protocols=protocols, rows=rows, epochs=epochs):
        rec["engine"] = "mpc"
        yield rec


def run(
    what: tuple[str, ...] = ("verify", "lr"),
    repeats: int = 30,
    lr_repeats: int = 3,
    mpc: tuple[str, ...] = (),
) -> Iterator[dict[str, Any]]:
    """All records of ``veil bench tee`` (``mpc``: protocols of the SS-LR comparison)."""
    unknown = set(what) - {"verify", "lr"}
    if unknown:
        raise ConfigError(f"unknown tee benchmark parts {sorted(unknown)}: use verify, lr")
    if "verify" in what:
        yield from run_verify(repeats)
    if "lr" in what:
        yield from run_lr(lr_repeats)
        if mpc:
            yield from run_lr_mpc(mpc)


def main(argv: list[str] | None = None) -> None:
    """``veil bench tee [--what verify,lr] [--repeats N]``."""
    parser = argparse.ArgumentParser(prog="veil bench tee", description=__doc__.split("\n")[0])
    parser.add_argument("--what", default="verify,lr", help="comma list: verify, lr")
    parser.add_argument("--repeats", type=int, default=30, help="verification repeats")
    parser.add_argument("--lr-repeats", type=int, default=3, help="LR training repeats")
    parser.add_argument(
        "--mpc", default="semi2k", help="SS-LR protocols in the same run (comma list, or none)"
    )
    args = parser.parse_args(argv)
    mpc = () if args.mpc == "none" else tuple(p for p in args.mpc.split(",") if p)
    what = tuple(w for w in args.what.split(",") if w)
    for rec in run(what, args.repeats, args.lr_repeats, mpc):
        emit(rec)


if __name__ == "__main__":
    main()

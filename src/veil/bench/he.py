"""HE benchmarks beside HEU: ``he.encrypt`` and ``he.histogram`` (``python -m veil.bench.he``).

Definitions mirror ``../shared/anchors/bench_he.py`` (same inputs from the anchors' ``inputs.py``,
same key size 2048, same timing boundaries):

* ``he.encrypt``: ``seconds`` = median of ``repeats`` encryptions of ``n`` int64 values
  (``he_ints(n)``) through the vector API; ``bytes`` = the serialized ciphertexts;
  ``max_abs_err`` = ``|decrypt - input|`` (0 = exact). Key generation and the worker pool's
  start-up (which builds the fixed-base tables, as HEU does at key set-up) are outside.
* ``he.histogram``: the label holder encrypts g and h (``2*rows`` ciphertexts, or ``rows``
  with ``pack=2``); the passive side, holding only the public key, loads them and sums them
  into features x bins buckets; the label holder decrypts. ``seconds`` = encrypt + bucket sums
  + decrypt (serialization listed apart); ``bytes`` = upload + returned histogram; rounds = 2.

Impl names: ``veil-paillier``, ``veil-ou``, with ``-packN`` when N values share a ciphertext.
``pack=None`` means no packing for ``he.encrypt`` and g, h of a sample in one ciphertext
(``-pack2``, veil's SecureBoost layout) for ``he.histogram``; ``pack=1`` there gives one
ciphertext per value, like HEU's default.
``threads`` is the number of worker processes (HEU: ``YACL_NUM_THREADS``).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from veil.bench.common import anchor_inputs, emit, median, record
from veil.errors import ConfigError
from veil.he import (
    SlotLayout,
    Workers,
    bucket_sum,
    decode_public_key,
    decrypt_ints,
    dumps,
    encode_public_key,
    encrypt,
    keygen,
    loads,
)
from veil.he.keys import PrivateKey, PublicKey

BENCHES = ("he.encrypt", "he.histogram")
SCHEMES = ("ou", "paillier")
KEY_BITS = 2048


def run(
    bench: str,
    *,
    scheme: str = "ou",
    n: int | None = None,
    threads: int = 2,
    repeats: int = 3,
    pack: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Run one HE benchmark and yield its JSON record(s)."""
    if scheme not in SCHEMES:
        raise ConfigError(f"unknown HE scheme {scheme!r}; use one of {', '.join(SCHEMES)}")
    if bench == "he.encrypt":
        yield _bench_encrypt(scheme, n or 10_000, threads, repeats, pack)
    elif bench == "he.histogram":
        yield _bench_histogram(scheme, n, threads, pack)
    else:
        raise ConfigError(f"unknown HE benchmark {bench!r}; use one of {', '.join(BENCHES)}")


def _impl(scheme: str, pack: int | None) -> str:
    return f"veil-{scheme}" + (f"-pack{pack}" if pack and pack > 1 else "")


def _keys(scheme: str) -> tuple[PublicKey, PrivateKey, float]:
    t0 = time.perf_counter()
    pk, sk = keygen(scheme, KEY_BITS)
    return pk, sk, time.perf_counter() - t0


def _pool(threads: int, sk: PrivateKey) -> tuple[Workers, float]:
    t0 = time.perf_counter()
    w = Workers(threads, keys=(sk.public,), owner_keys=(sk,))
    return w, time.perf_counter() - t0


def _bench_encrypt(
    scheme: str, n: int, threads: int, repeats: int, pack: int | None
) -> dict[str, Any]:
    inp = anchor_inputs()
    x = inp.he_ints(n)
    pk, sk, kg = _keys(scheme)
    layout: SlotLayout | None = None
    xs: np.ndarray = x
    if pack and pack > 1:
        layout = SlotLayout.for_sums(pk.plaintext_bits, pack, 2**63, 1)
        pad = -n % pack
        xs = np.concatenate([x, np.zeros(pad, np.int64)]).reshape(-1, pack)
    w, pool_s = _pool(threads, sk)
    try:
        ts: list[float] = []
        cpu: list[float] = []
        ct = None
        for _ in range(max(1, repeats)):
            c0 = w.cpu_seconds()
            t0 = time.perf_counter()
            ct = encrypt(sk, xs, layout=layout, workers=w)  # the key owner encrypts
            ts.append(time.perf_counter() - t0)
            cpu.append(w.cpu_seconds() - c0)
        assert ct is not None
        t0 = time.perf_counter()
        dec = decrypt_ints(sk, ct, workers=w).reshape(-1)[:n]
        dec_s = time.perf_counter() - t0
    finally:
        w.close()
    err = max(abs(int(a) - int(b)) for a, b in zip(dec.tolist(), x.tolist(), strict=True))
    blob = dumps(ct)
    sec = median(ts)
    return record(
        "he.encrypt",
        _impl(scheme, pack),
        n,
        sec,
        bytes_=len(blob),
        max_abs_err=err,
        runs=ts,
        cpu_seconds=median(cpu),
        keygen_seconds=kg,
        pool_start_seconds=pool_s,
        decrypt_seconds=dec_s,
        encrypt_per_s=n / sec,
        ciphertexts=ct.size,
        key_bits=KEY_BITS,
        r_bits=pk.r_bits,
        threads=threads,
        seed=inp.HE_SEED,
        inputs_sha256=inp.fingerprint(x),
    )


def _bench_histogram(scheme: str, n: int | None, threads: int, pack: int | None) -> dict[str, Any]:
    inp = anchor_inputs()
    cfg = inp.SB_CONFIG
    rows, bins, scale = int(n or cfg["rows"]), int(cfg["bins"]), int(cfg["scale"])
    g, h, bin_idx = inp.secureboost_inputs(inp.SB_SEED, rows=rows)
    ref = inp.secureboost_reference(g, h, bin_idx, bins)
    features = bin_idx.shape[1]
    pk, sk, kg = _keys(scheme)
    pub = decode_public_key(encode_public_key(pk))  # the passive party holds only this
    gh = np.stack([g, h], axis=1)
    layout: SlotLayout | None = None
    pack = 2 if pack is None else pack
    if pack > 1:
        if pack != 2:
            raise ConfigError("he.histogram packs g and h of one sample: pack must be 2")
        layout = SlotLayout.for_sums(pk.plaintext_bits, 2, scale, rows)
    w, pool_s = _pool(threads, sk)
    try:
        c0 = w.cpu_seconds()
        t0 = time.perf_counter()
        ct = encrypt(sk, gh, layout=layout, value_bound=scale, workers=w)
        t_enc = time.perf_counter() - t0
        t0 = time.perf_counter()
        blob = dumps(ct)
        ct_b = loads(blob, pub, sender="label holder")
        t_ser = time.perf_counter() - t0
        t0 = time.perf_counter()
        hist = bucket_sum(ct_b, bin_idx, bins, workers=w)
        t_hist = time.perf_counter() - t0
        hblob = dumps(hist)
        t0 = time.perf_counter()
        got = decrypt_ints(sk, loads(hblob, pk, sender="passive party"), workers=w)
        t_dec = time.perf_counter() - t0
        cpu = w.cpu_seconds() - c0  # includes the serialization round trip
    finally:
        w.close()
    got64 = np.asarray(got, dtype=np.int64).reshape(features * bins, 2)
    err = int(np.max(np.abs(got64 - ref)))
    return record(
        "he.histogram",
        _impl(scheme, pack),
        rows,
        t_enc + t_hist + t_dec,
        bytes_=len(blob) + len(hblob),
        rounds=2,
        max_abs_err=err,
        cpu_seconds=cpu,
        encrypt_seconds=t_enc,
        histogram_seconds=t_hist,
        decrypt_seconds=t_dec,
        serialize_roundtrip_seconds=t_ser,
        keygen_seconds=kg,
        pool_start_seconds=pool_s,
        ciphertexts=ct.size,
        features=features,
        bins=bins,
        scale=scale,
        pack=pack or 1,
        key_bits=KEY_BITS,
        r_bits=pk.r_bits,
        threads=threads,
        slot_bits=layout.slot_bits if layout else None,
        seed=inp.SB_SEED,
        inputs_sha256=inp.fingerprint(g, h, bin_idx),
    )


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m veil.bench.he BENCH [--scheme ou,paillier] [--n N] [--threads T] ...``."""
    ap = argparse.ArgumentParser(
        prog="python -m veil.bench.he",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("bench", choices=BENCHES)
    ap.add_argument("--scheme", default="ou,paillier", help="comma list of ou, paillier")
    ap.add_argument("--n", "--rows", dest="n", type=lambda v: int(float(v)), default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--pack", type=int, default=None, help="values per ciphertext")
    a = ap.parse_args(argv)
    for s in a.scheme.split(","):
        for rec in run(a.bench, scheme=s, n=a.n, threads=a.threads, repeats=a.repeats, pack=a.pack):
            emit(rec)


if __name__ == "__main__":
    main()

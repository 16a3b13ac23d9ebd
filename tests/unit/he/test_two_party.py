"""The SecureBoost histogram flow between two parties over the in-memory link (bytes only)."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

import veil.he as he
from veil.he.keys import PrivateKey, PublicKey
from veil.transport.memory import MemoryHub


def test_histogram_over_link(ou_keys: tuple[PublicKey, PrivateKey]) -> None:
    pk, sk = ou_keys
    rng = np.random.default_rng(3)
    rows, n_bins = 200, 6
    g = rng.integers(-(2**20), 2**20, rows)
    h = rng.integers(0, 2**18, rows)
    bins = rng.integers(0, n_bins, (rows, 2))  # held by the feature holder only
    hub = MemoryHub(["bank", "ext1"])
    result: dict[str, Any] = {}

    def bank() -> None:
        link = hub.link("bank")
        layout = he.SlotLayout.for_sums(pk.plaintext_bits, 2, 2**20, rows)
        ct = he.encrypt(sk, np.stack([g, h], 1), layout=layout, value_bound=2**20)
        link.send_bytes("ext1", "he/pk", he.encode_public_key(pk))
        link.send_bytes("ext1", "he/gh", he.dumps(ct))
        hist = he.loads(link.recv_bytes("ext1", "he/hist", timeout=30), pk, sender="ext1")
        result["hist"] = he.decrypt(sk, hist)

    def ext1() -> None:
        link = hub.link("ext1")
        pub = he.decode_public_key(link.recv_bytes("bank", "he/pk", timeout=30))
        ct = he.loads(link.recv_bytes("bank", "he/gh", timeout=30), pub, sender="bank")
        link.send_bytes("bank", "he/hist", he.dumps(he.bucket_sum(ct, bins, n_bins)))

    threads = [threading.Thread(target=f) for f in (bank, ext1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    ref = np.zeros((2, n_bins, 2), np.int64)
    for f in range(2):
        np.add.at(ref[f, :, 0], bins[:, f], g)
        np.add.at(ref[f, :, 1], bins[:, f], h)
    assert np.array_equal(result["hist"], ref)

"""Real vendor evidence (tests/data/tee, provenance in its README) at pinned clocks.

Shared by the tee tests (imported by name: the test folders are not packages).

Each clock is read from the sample's own validity windows, never from the system clock.
"""

from __future__ import annotations

import base64
import json
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cbor2
from cryptography import x509

DATA = Path(__file__).resolve().parents[2] / "data" / "tee"

SGX_MRENCLAVE = "33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb"
SGX_MRSIGNER = "815f42f11cf64430c30bab7816ba596a1da0130c3b028b673133a66cf9a3e0e6"
TDX_MRTD = (
    "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407"
    "de03ae6dc5f87f27428b2538873118b7"
)
TDX_OUTDATED_MRTD = (
    "273828c46252fcbdd8ad2dd907130222b03466d52a2911d70c1a5950895d6bd1"
    "ae451d382d5a9b1b4c0ed0e5ae9a3dbd"
)
SNP_MEASUREMENT = (
    "b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b"
    "6bdf8a9ece31a5a608eb0cf2e4872b01"
)
NITRO_PCR0 = "00" * 48


def read(name: str) -> bytes:
    return (DATA / name).read_bytes()


def _iso(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def dcap_window(collateral_name: str) -> tuple[datetime, datetime]:
    """The window in which the TCB info and the QE identity are both valid."""
    doc = json.loads(read(collateral_name))
    tcb, qe = json.loads(doc["tcb_info"]), json.loads(doc["qe_identity"])
    start = max(_iso(tcb["issueDate"]), _iso(qe["issueDate"]))
    end = min(_iso(tcb["nextUpdate"]), _iso(qe["nextUpdate"]))
    return start, end


def snp_window() -> tuple[datetime, datetime]:
    with warnings.catch_warnings():  # AMD's VCEK has a non-positive serial number
        warnings.simplefilter("ignore")
        vcek = x509.load_der_x509_certificate(read("snp_milan_vcek.der"))
    return vcek.not_valid_before_utc, vcek.not_valid_after_utc


def nitro_payload() -> dict[str, Any]:
    outer = cbor2.loads(base64.b64decode(read("nitro_doc.b64")))
    payload: dict[str, Any] = cbor2.loads(outer[2])
    return payload


def nitro_time() -> datetime:
    return datetime.fromtimestamp(nitro_payload()["timestamp"] / 1000, tz=UTC)


def nitro_window() -> tuple[datetime, datetime]:
    doc = nitro_payload()
    chain = [x509.load_der_x509_certificate(c) for c in [*doc["cabundle"], doc["certificate"]]]
    return max(c.not_valid_before_utc for c in chain), min(c.not_valid_after_utc for c in chain)


@dataclass(frozen=True)
class Sample:
    """One real piece of evidence, its collateral, its measurement and a time it is valid at."""

    platform: str
    evidence: bytes
    collateral: bytes | None
    measurement: str
    at: datetime
    window: tuple[datetime, datetime]


def _sgx() -> Sample:
    w = dcap_window("sgx_quote_collateral.json")
    return Sample(
        "sgx",
        read("sgx_quote"),
        read("sgx_quote_collateral.json"),
        SGX_MRENCLAVE,
        w[0] + timedelta(days=1),
        w,
    )


def _tdx() -> Sample:
    w = dcap_window("tdx_quote_collateral.json")
    return Sample(
        "tdx",
        read("tdx_quote"),
        read("tdx_quote_collateral.json"),
        TDX_MRTD,
        w[0] + timedelta(days=1),
        w,
    )


def _snp() -> Sample:
    w = snp_window()
    return Sample(
        "sev-snp",
        read("snp_milan_report.bin"),
        read("snp_milan_collateral.pem"),
        SNP_MEASUREMENT,
        w[0] + timedelta(days=1),
        w,
    )


def _nitro() -> Sample:
    return Sample(
        "nitro",
        read("nitro_doc.b64"),
        None,
        NITRO_PCR0,
        nitro_time() + timedelta(minutes=1),
        nitro_window(),
    )


SAMPLES = {"sgx": _sgx, "tdx": _tdx, "sev-snp": _snp, "nitro": _nitro}

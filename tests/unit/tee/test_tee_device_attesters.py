"""Real attesters against a FAKE of their file protocol (no TEE hardware on this machine).

What these tests cover is only the guest-side protocol: which files are created, written, read
and removed (configfs-tsm, Gramine ``/dev/attestation``), and the NSM ioctl framing. The "kernel"
is emulated by the test on files in ``tmp_path``; the bytes it serves are the real vendor
samples, so the attesters' output is checked by the real verifiers. Not a hardware test.
"""

from __future__ import annotations

import base64
import ctypes
import struct
import uuid
from pathlib import Path
from typing import Any

import cbor2
import pytest
from tee_samples import NITRO_PCR0, SAMPLES, SGX_MRENCLAVE, SNP_MEASUREMENT, read

from veil.errors import ProtocolError
from veil.tee import Platform, verify_evidence
from veil.tee.attesters import (
    HARDWARE_STATUS,
    NSM_IOCTL_RAW,
    AttesterUnavailable,
    ConfigfsTsmAttester,
    GramineAttester,
    NitroAttester,
    TsmFiles,
    snp_cert_table_to_pem,
)

REPORT_DATA = bytes(range(40))  # shorter than 64: zero-padded


def cert_table(certs: dict[str, bytes]) -> bytes:
    guids = {
        "VCEK": "63da758d-e664-4564-adc5-f4b93be8accd",
        "ASK": "4ab7b379-bbac-4fe4-a02f-05aef327c782",
        "ARK": "c0b406a4-a803-4952-9743-3fb6014cd0ae",
    }
    header = 24 * (len(certs) + 1)
    entries, blobs, offset = b"", b"", header
    for name, der in certs.items():
        entries += uuid.UUID(guids[name]).bytes + struct.pack("<II", offset, len(der))
        blobs += der
        offset += len(der)
    return entries + b"\0" * 24 + blobs


class FakeTsmKernel(TsmFiles):
    """Emulates the kernel side of configfs-tsm on a plain folder (FAKE: file protocol only)."""

    def __init__(self, provider: str, outblob: bytes, auxblob: bytes = b"", racer: bool = False):
        self.provider, self.outblob, self.auxblob, self.racer = provider, outblob, auxblob, racer
        self.inblob: bytes | None = None
        self.created: list[Path] = []

    def mkdir(self, path: Path) -> None:
        super().mkdir(path)  # the kernel then populates the attributes
        self.created.append(path)
        (path / "provider").write_text(self.provider + "\n")
        (path / "generation").write_text("0\n")
        (path / "outblob").write_bytes(b"")
        if self.auxblob:
            (path / "auxblob").write_bytes(self.auxblob)

    def rmdir(self, path: Path) -> None:
        for f in path.iterdir():
            f.unlink()
        super().rmdir(path)

    def write(self, path: Path, data: bytes) -> None:
        super().write(path, data)
        gen = int((path.parent / "generation").read_text()) + 1 + int(self.racer)
        (path.parent / "generation").write_text(f"{gen}\n")
        if path.name == "inblob":
            self.inblob = data
            (path.parent / "outblob").write_bytes(self.outblob)


def test_configfs_tsm_sev_snp_report_and_host_certificates(tmp_path: Path) -> None:
    certs = {n: read(f"snp_milan_{n.lower()}.der") for n in ("VCEK", "ASK", "ARK")}
    kernel = FakeTsmKernel("sev_guest", read("snp_milan_report.bin"), cert_table(certs))
    ev = ConfigfsTsmAttester(tmp_path, privlevel=0, files=kernel).attest(REPORT_DATA)
    assert kernel.inblob == REPORT_DATA.ljust(64, b"\0")
    assert list(tmp_path.iterdir()) == []  # the report entry was removed
    assert ev.platform is Platform.SEV_SNP and ev.status == HARDWARE_STATUS
    assert ev.source == "configfs-tsm:sev_guest" and ev.collateral is not None
    sample = SAMPLES["sev-snp"]()
    claims = verify_evidence("sev-snp", ev.evidence, ev.collateral, now=sample.at)
    assert claims.measurement.hex() == SNP_MEASUREMENT


def test_configfs_tsm_tdx_quote(tmp_path: Path) -> None:
    kernel = FakeTsmKernel("tdx_guest", read("tdx_quote"))
    ev = ConfigfsTsmAttester(tmp_path, files=kernel).attest(REPORT_DATA)
    assert ev.platform is Platform.TDX and ev.collateral is None
    sample = SAMPLES["tdx"]()
    claims = verify_evidence("tdx", ev.evidence, sample.collateral, now=sample.at)
    assert claims.measurement == bytes.fromhex(sample.measurement)


def test_configfs_tsm_refuses_races_unknown_providers_and_absence(tmp_path: Path) -> None:
    racing = FakeTsmKernel("tdx_guest", read("tdx_quote"), racer=True)
    with pytest.raises(ProtocolError, match="another writer"):
        ConfigfsTsmAttester(tmp_path, files=racing).attest(REPORT_DATA)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ProtocolError, match="not supported"):
        ConfigfsTsmAttester(tmp_path, files=FakeTsmKernel("cca_guest", b"x")).attest(b"")
    with pytest.raises(AttesterUnavailable, match="configfs-tsm"):
        ConfigfsTsmAttester(tmp_path / "absent").attest(REPORT_DATA)
    with pytest.raises(Exception, match="at most 64 bytes"):
        ConfigfsTsmAttester(tmp_path).attest(b"\1" * 65)


def test_snp_certificate_table_parsing() -> None:
    ark = read("snp_milan_ark.der")
    assert snp_cert_table_to_pem(cert_table({"ARK": ark})) is None  # no VCEK: fetch from KDS
    with pytest.raises(ProtocolError, match="terminated"):
        snp_cert_table_to_pem(b"\7" * 16 + struct.pack("<II", 24, 1) + b"x")
    bad = uuid.UUID("63da758d-e664-4564-adc5-f4b93be8accd").bytes + struct.pack("<II", 48, 999)
    with pytest.raises(ProtocolError, match="outside"):
        snp_cert_table_to_pem(bad + b"\0" * 24)


def test_gramine_sgx_quote(tmp_path: Path) -> None:
    (tmp_path / "attestation_type").write_text("dcap")
    (tmp_path / "user_report_data").write_bytes(b"")
    (tmp_path / "quote").write_bytes(read("sgx_quote"))
    ev = GramineAttester(tmp_path).attest(REPORT_DATA)
    assert (tmp_path / "user_report_data").read_bytes() == REPORT_DATA.ljust(64, b"\0")
    assert ev.platform is Platform.SGX and ev.status == HARDWARE_STATUS
    sample = SAMPLES["sgx"]()
    claims = verify_evidence("sgx", ev.evidence, sample.collateral, now=sample.at)
    assert claims.measurement.hex() == SGX_MRENCLAVE
    (tmp_path / "attestation_type").write_text("none")
    with pytest.raises(AttesterUnavailable, match="remote_attestation"):
        GramineAttester(tmp_path).attest(REPORT_DATA)
    with pytest.raises(AttesterUnavailable, match="Gramine"):
        GramineAttester(tmp_path / "absent").attest(REPORT_DATA)


class FakeNsmDriver:
    """Emulates the NSM driver's NSM_IOCTL_RAW (FAKE: framing and CBOR protocol only)."""

    def __init__(self, reply: Any) -> None:
        self.reply = reply
        self.request: Any = None

    def __call__(self, fd: int, request: int, raw: bytearray) -> int:
        assert request == NSM_IOCTL_RAW == 0xC0200A00
        req_addr, req_len, resp_addr, resp_cap = struct.unpack("=QQQQ", bytes(raw))
        self.request = cbor2.loads(ctypes.string_at(req_addr, req_len))
        out = cbor2.dumps(self.reply)
        assert len(out) <= resp_cap
        ctypes.memmove(resp_addr, out, len(out))
        raw[:] = struct.pack("=QQQQ", req_addr, req_len, resp_addr, len(out))
        return 0


def test_nitro_nsm_document(tmp_path: Path) -> None:
    device = tmp_path / "nsm"
    device.write_bytes(b"")
    doc = base64.b64decode(read("nitro_doc.b64"))
    driver = FakeNsmDriver({"Attestation": {"document": doc}})
    ev = NitroAttester(device, ioctl=driver).attest(REPORT_DATA, nonce=b"n" * 16)
    assert driver.request == {
        "Attestation": {
            "user_data": REPORT_DATA.ljust(64, b"\0"),
            "nonce": b"n" * 16,
            "public_key": None,
        }
    }
    assert ev.platform is Platform.NITRO and ev.evidence == doc
    sample = SAMPLES["nitro"]()
    claims = verify_evidence("nitro", ev.evidence, None, now=sample.at)
    assert claims.measurement.hex() == NITRO_PCR0
    with pytest.raises(ProtocolError, match="InvalidArgument"):
        NitroAttester(device, ioctl=FakeNsmDriver({"Error": "InvalidArgument"})).attest(b"")
    with pytest.raises(ProtocolError, match="no attestation document"):
        NitroAttester(device, ioctl=FakeNsmDriver({"Attestation": {}})).attest(b"")
    with pytest.raises(AttesterUnavailable, match="Nitro Enclave"):
        NitroAttester(tmp_path / "absent", ioctl=driver).attest(b"")

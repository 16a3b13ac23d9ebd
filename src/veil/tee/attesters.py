"""Evidence from real TEE hardware, through each platform's documented guest interface.

**Not yet run on hardware.** These attesters are written to the documented interfaces below and
tested only against a fake of the file protocol (files in a temporary folder, with the kernel's
side effects emulated by the test; the Nitro ioctl by a fake ``ioctl`` function). No test here
has touched a TDX, SEV-SNP, SGX or Nitro machine. Each one fails with
:class:`AttesterUnavailable` naming the missing device and what to do.

- :class:`ConfigfsTsmAttester` — Linux configfs-tsm (``Documentation/ABI/testing/configfs-tsm``,
  kernel ≥ 6.7) for TDX and SEV-SNP guests: ``mkdir /sys/kernel/config/tsm/report/<name>``,
  write 64 bytes to ``inblob`` (and optionally ``privlevel``), read ``outblob`` (the TDX quote or
  SEV-SNP report), ``auxblob`` (SEV-SNP: the host's certificate table), ``provider``
  (``tdx_guest`` / ``sev_guest``) and ``generation`` (incremented by every write: a different
  count than ours means another writer raced us, and the report is discarded), then ``rmdir``.
- :class:`GramineAttester` — Gramine's ``/dev/attestation`` pseudo-files for SGX enclaves:
  read ``attestation_type`` (``dcap``), write 64 bytes to ``user_report_data``, read ``quote``.
- :class:`NitroAttester` — the Nitro Secure Module ``/dev/nsm``: ioctl ``NSM_IOCTL_RAW``
  (``_IOWR(0x0A, 0, struct nsm_raw)``, two ``{u64 addr; u64 len}`` iovecs) carrying the CBOR
  request ``{"Attestation": {"user_data", "nonce", "public_key"}}``; the reply is
  ``{"Attestation": {"document": COSE_Sign1}}`` or ``{"Error": code}``.

Every attester puts the 64-byte :func:`veil.tee.binding.report_data` into the evidence; the
relying party still verifies everything (:func:`veil.tee.verify.attest`) — an attester is not
trusted, it only fetches.
"""

from __future__ import annotations

import base64
import ctypes
import os
import struct
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from veil.errors import ConfigError, ProtocolError
from veil.tee.claims import Platform

REPORT_DATA_BYTES = 64
HARDWARE_STATUS = "not yet run on hardware"

#: configfs-tsm report folder and the providers it names.
TSM_REPORT_ROOT = Path("/sys/kernel/config/tsm/report")
TSM_PROVIDERS = {"tdx_guest": Platform.TDX, "sev_guest": Platform.SEV_SNP}

#: SEV-SNP certificate table GUIDs (GHCB spec 2.03 §4.1.8.1; AMD sev-guest ``cert-table.c``).
SNP_CERT_GUIDS = {
    uuid.UUID("63da758d-e664-4564-adc5-f4b93be8accd"): "VCEK",
    uuid.UUID("4ab7b379-bbac-4fe4-a02f-05aef327c782"): "ASK",
    uuid.UUID("c0b406a4-a803-4952-9743-3fb6014cd0ae"): "ARK",
}
_CERT_ENTRY = struct.Struct("<16sII")

GRAMINE_ROOT = Path("/dev/attestation")

NSM_DEVICE = Path("/dev/nsm")
NSM_REQUEST_MAX = 0x1000
NSM_RESPONSE_MAX = 0x3000
_NSM_RAW = struct.Struct("=QQQQ")  # request {addr, len}, response {addr, len}
NSM_IOCTL_RAW = (3 << 30) | (_NSM_RAW.size << 16) | (0x0A << 8) | 0  # _IOWR(0x0A, 0, nsm_raw)


class AttesterUnavailable(ConfigError):
    """The TEE guest interface this attester needs is not present on this machine."""


@dataclass(frozen=True)
class Evidence:
    """What an attester fetched, ready for :func:`veil.tee.verify.attest`.

    Attributes
    ----------
    platform:
        Whose evidence it is.
    evidence:
        The quote, report or attestation document.
    collateral:
        SEV-SNP: the host-provided VCEK/ASK/ARK as a PEM bundle, when the host supplied its
        certificate table; ``None`` otherwise (fetch it from Intel PCS / AMD KDS).
    source:
        The interface it came from (e.g. ``configfs-tsm:sev_guest``).
    """

    platform: Platform
    evidence: bytes
    collateral: bytes | None
    source: str
    status: str = HARDWARE_STATUS


def _report_data(data: bytes) -> bytes:
    data = bytes(data)
    if len(data) > REPORT_DATA_BYTES:
        raise ConfigError(f"report data is at most {REPORT_DATA_BYTES} bytes, got {len(data)}")
    return data.ljust(REPORT_DATA_BYTES, b"\0")


def snp_cert_table_to_pem(table: bytes) -> bytes | None:
    """The VCEK, ASK and ARK of a SEV-SNP certificate table (``auxblob``) as one PEM bundle.

    Entries are ``GUID (16 bytes) || offset (u32 LE) || length (u32 LE)``, offsets from the
    table start, ended by an all-zero entry. Returns ``None`` if the table holds no VCEK.

    Raises
    ------
    ProtocolError
        If the table is malformed.
    """
    certs: dict[str, bytes] = {}
    pos = 0
    while True:
        if pos + _CERT_ENTRY.size > len(table):
            raise ProtocolError("SEV-SNP certificate table is not terminated by a zero entry")
        guid, offset, length = _CERT_ENTRY.unpack_from(table, pos)
        pos += _CERT_ENTRY.size
        if guid == b"\0" * 16 and offset == 0 and length == 0:
            break
        if offset + length > len(table) or length == 0:
            raise ProtocolError("SEV-SNP certificate table entry points outside the table")
        name = SNP_CERT_GUIDS.get(uuid.UUID(bytes=guid))
        if name is not None:
            certs[name] = table[offset : offset + length]
    if "VCEK" not in certs:
        return None
    return b"".join(_pem(certs[n]) for n in ("VCEK", "ASK", "ARK") if n in certs)


def _pem(der: bytes) -> bytes:
    body = base64.encodebytes(der).replace(b"\n", b"")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return b"-----BEGIN CERTIFICATE-----\n" + b"\n".join(lines) + b"\n-----END CERTIFICATE-----\n"


class TsmFiles:
    """The file operations configfs-tsm needs (the real ones; tests emulate the kernel)."""

    def mkdir(self, path: Path) -> None:
        path.mkdir()

    def rmdir(self, path: Path) -> None:
        path.rmdir()

    def read(self, path: Path) -> bytes:
        return path.read_bytes()

    def write(self, path: Path, data: bytes) -> None:
        with open(path, "wb", buffering=0) as f:
            f.write(data)


class ConfigfsTsmAttester:
    """TDX or SEV-SNP guest evidence through Linux configfs-tsm (**not yet run on hardware**).

    Parameters
    ----------
    root:
        The report folder (default ``/sys/kernel/config/tsm/report``).
    privlevel:
        SEV-SNP VMPL to request (``privlevel``); ``None`` leaves the kernel default.
    files:
        File operations (tests pass an emulation of the kernel's side effects).
    """

    def __init__(
        self,
        root: Path = TSM_REPORT_ROOT,
        *,
        privlevel: int | None = None,
        files: TsmFiles | None = None,
    ) -> None:
        self.root = Path(root)
        self.privlevel = privlevel
        self.files = files or TsmFiles()

    def attest(self, report_data: bytes) -> Evidence:
        """Ask the TSM for a report carrying ``report_data`` (up to 64 bytes, zero-padded).

        Raises
        ------
        AttesterUnavailable
            No configfs-tsm on this machine (not a TDX/SEV-SNP guest, kernel < 6.7, or configfs
            not mounted).
        ProtocolError
            Another writer raced this report, or the provider is unknown.
        """
        data = _report_data(report_data)
        if not self.root.is_dir():
            raise AttesterUnavailable(
                f"{self.root} does not exist: this is not a TDX/SEV-SNP guest with configfs-tsm "
                "(needs Linux >= 6.7 and `mount -t configfs none /sys/kernel/config`)"
            )
        entry = self.root / f"veil-{os.getpid()}-{os.urandom(4).hex()}"
        try:
            self.files.mkdir(entry)
        except OSError as exc:
            raise AttesterUnavailable(f"cannot create {entry}: {exc} (run as root?)") from exc
        try:
            before = self._generation(entry)
            writes = 0
            if self.privlevel is not None:
                self.files.write(entry / "privlevel", str(int(self.privlevel)).encode())
                writes += 1
            self.files.write(entry / "inblob", data)
            writes += 1
            outblob = self.files.read(entry / "outblob")
            provider = self.files.read(entry / "provider").decode(errors="replace").strip()
            aux_path = entry / "auxblob"
            auxblob = self.files.read(aux_path) if aux_path.exists() else b""
            after = self._generation(entry)
        finally:
            self.files.rmdir(entry)
        if after - before != writes:
            raise ProtocolError(
                f"configfs-tsm report {entry.name} was modified by another writer "
                f"(generation {before} -> {after}, expected {writes} writes); retry"
            )
        platform = TSM_PROVIDERS.get(provider)
        if platform is None:
            raise ProtocolError(f"configfs-tsm provider {provider!r} is not supported")
        if not outblob:
            raise ProtocolError(f"configfs-tsm returned an empty report ({provider})")
        collateral = (
            snp_cert_table_to_pem(auxblob) if platform is Platform.SEV_SNP and auxblob else None
        )
        return Evidence(platform, outblob, collateral, f"configfs-tsm:{provider}")

    def _generation(self, entry: Path) -> int:
        text = self.files.read(entry / "generation").decode(errors="replace").strip()
        try:
            return int(text)
        except ValueError:
            raise ProtocolError(f"configfs-tsm generation {text!r} is not a number") from None


class GramineAttester:
    """SGX DCAP quotes from inside a Gramine enclave (**not yet run on hardware**).

    Parameters
    ----------
    root:
        Gramine's attestation pseudo-filesystem (default ``/dev/attestation``).
    """

    def __init__(self, root: Path = GRAMINE_ROOT) -> None:
        self.root = Path(root)

    def attest(self, report_data: bytes) -> Evidence:
        """Write ``report_data`` (zero-padded to 64 bytes) and read the quote.

        Raises
        ------
        AttesterUnavailable
            Not inside Gramine, or Gramine was configured without remote attestation
            (``sgx.remote_attestation = "dcap"`` in the manifest).
        """
        data = _report_data(report_data)
        kind_path = self.root / "attestation_type"
        if not kind_path.exists():
            raise AttesterUnavailable(
                f"{kind_path} does not exist: not running inside a Gramine SGX enclave"
            )
        kind = kind_path.read_text().strip()
        if kind != "dcap":
            raise AttesterUnavailable(
                f'Gramine attestation type is {kind!r}: set sgx.remote_attestation = "dcap" in '
                "the manifest (EPID and 'none' are not verifiable by veil)"
            )
        with open(self.root / "user_report_data", "wb", buffering=0) as f:
            f.write(data)
        quote = (self.root / "quote").read_bytes()
        if not quote:
            raise ProtocolError("Gramine returned an empty quote")
        return Evidence(Platform.SGX, quote, None, "gramine:/dev/attestation")


IoctlFn = Callable[[int, int, Any], Any]


class NitroAttester:
    """AWS Nitro Enclaves attestation documents from ``/dev/nsm`` (**not yet run on hardware**).

    Parameters
    ----------
    device:
        The NSM device (default ``/dev/nsm``).
    ioctl:
        The ioctl call (default :func:`fcntl.ioctl`; tests pass a fake of the NSM driver).
    """

    def __init__(self, device: Path = NSM_DEVICE, *, ioctl: IoctlFn | None = None) -> None:
        self.device = Path(device)
        if ioctl is None:
            import fcntl

            ioctl = fcntl.ioctl
        self._ioctl = ioctl

    def attest(
        self, report_data: bytes, *, nonce: bytes | None = None, public_key: bytes | None = None
    ) -> Evidence:
        """Request a document whose ``user_data`` is ``report_data`` (64 bytes, zero-padded).

        Raises
        ------
        AttesterUnavailable
            ``/dev/nsm`` is absent (not inside a Nitro enclave).
        ProtocolError
            The NSM answered with an error or something other than a document.
        """
        from veil.tee.nitro import _load_cbor2  # the optional dependency, with its install hint

        cbor2 = _load_cbor2()
        data = _report_data(report_data)
        if not self.device.exists():
            raise AttesterUnavailable(
                f"{self.device} does not exist: not running inside an AWS Nitro Enclave"
            )
        request = cbor2.dumps(
            {"Attestation": {"user_data": data, "nonce": nonce, "public_key": public_key}}
        )
        if len(request) > NSM_REQUEST_MAX:
            raise ConfigError("NSM request too large")
        req_buf = ctypes.create_string_buffer(request, len(request))
        resp_buf = ctypes.create_string_buffer(NSM_RESPONSE_MAX)
        raw = bytearray(
            _NSM_RAW.pack(
                ctypes.addressof(req_buf),
                len(request),
                ctypes.addressof(resp_buf),
                NSM_RESPONSE_MAX,
            )
        )
        fd = os.open(self.device, os.O_RDWR)
        try:
            self._ioctl(fd, NSM_IOCTL_RAW, raw)
        except OSError as exc:
            raise ProtocolError(f"NSM ioctl on {self.device} failed: {exc}") from exc
        finally:
            os.close(fd)
        resp_len = _NSM_RAW.unpack(bytes(raw))[3]
        if not 0 < resp_len <= NSM_RESPONSE_MAX:
            raise ProtocolError(f"NSM returned a response of {resp_len} bytes")
        try:
            reply = cbor2.loads(resp_buf.raw[:resp_len])
        except Exception as exc:  # a decoder of device output
            raise ProtocolError(f"NSM response is not CBOR: {exc}") from exc
        if isinstance(reply, dict) and "Error" in reply:
            raise ProtocolError(f"NSM refused the attestation request: {reply['Error']}")
        doc = reply.get("Attestation", {}).get("document") if isinstance(reply, dict) else None
        if not isinstance(doc, bytes) or not doc:
            raise ProtocolError("NSM response carries no attestation document")
        return Evidence(Platform.NITRO, doc, None, "nsm:/dev/nsm")


__all__ = [
    "HARDWARE_STATUS",
    "NSM_IOCTL_RAW",
    "AttesterUnavailable",
    "ConfigfsTsmAttester",
    "Evidence",
    "GramineAttester",
    "NitroAttester",
    "TsmFiles",
    "snp_cert_table_to_pem",
]

"""The ``hardware`` runtime: the enclave state lives in the host's own process, inside the TEE.

**Not yet run on hardware.** For deployments where the host's whole process already runs inside
the TEE — a confidential VM (TDX or SEV-SNP guest, evidence from configfs-tsm), a Gramine SGX
enclave (``/dev/attestation``) or an AWS Nitro Enclave (``/dev/nsm``) — there is no separate
enclave process to start: :class:`HardwareEnclave` keeps the same state as the simulated worker
(sessions, sealed inputs, release checks; :class:`veil.tee.sim_worker.SimEnclaveState`) in
process, and answers attestation requests with evidence from a
:mod:`veil.tee.attesters` attester whose report data binds the session, the relying party's
nonce, the session key and the program hash (:func:`veil.tee.binding.report_data`).

The measurement relying parties pin is the platform's (MRTD, launch measurement, MRENCLAVE,
PCR0): it covers the VM image or enclave that contains veil and this code; the program is bound
by its hash in the report data. The enclave learns its own measurement by verifying its own
evidence once at start (the channel binds it into every AAD).

Threat model: as for hardware evidence in :mod:`veil.tee.channel`; the image/enclave measured by
the platform must be one the owners reviewed (it decides what this process does with the data).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from veil.errors import ProtocolError, RevealDenied
from veil.tee.anchors import TrustAnchors
from veil.tee.attesters import Evidence
from veil.tee.binding import report_data
from veil.tee.enclave_client import EnclaveClient
from veil.tee.program import ProgramBundle
from veil.tee.sim_worker import SimEnclaveState, load_program
from veil.tee.verify import verify_evidence

CollateralFetcher = Callable[[str, bytes], bytes | None]
"""``fetch(platform, evidence) -> collateral`` (e.g. Intel PCS / AMD KDS through a cache)."""

SELF_CHECK_DOMAIN = b"veil/tee/self-measure/v1"


class Attester(Protocol):
    """Anything that fetches evidence carrying 64 bytes of report data."""

    def attest(self, report_data: bytes) -> Evidence: ...


class _HardwareState(SimEnclaveState):
    """The simulated worker's state with evidence from a hardware attester."""

    attester: Attester | None = None

    def _attest(self, req: dict[str, Any]) -> dict[str, Any]:
        assert self.attester is not None
        sid, nonce = bytes(req["session_id"]), bytes(req["nonce"])
        pk = self.session_key(sid)
        ev = self.attester.attest(report_data(sid, nonce, pk, self.program_hash))
        return {
            "evidence": ev.evidence,
            "public_key": pk,
            "platform": ev.platform.value,
            "collateral": ev.collateral,
        }


class HardwareEnclave(EnclaveClient):
    """The enclave of the ``hardware`` runtime (same host-facing API as ``SimEnclave``).

    Parameters
    ----------
    attester:
        Where evidence comes from (:mod:`veil.tee.attesters`).
    bundle:
        The program to run.
    fetch_collateral:
        Collateral for the self-check when the evidence carries none (SGX/TDX: Intel PCS).
    anchors:
        Roots for the self-check (default: the vendors').
    clock:
        Time of the self-check (default: now, UTC).

    Raises
    ------
    AttesterUnavailable
        No TEE interface on this machine.
    AttestationError
        The enclave's own evidence does not verify.
    """

    def __init__(
        self,
        attester: Attester,
        bundle: ProgramBundle,
        *,
        fetch_collateral: CollateralFetcher | None = None,
        anchors: TrustAnchors | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        canonical = bundle.canonical_bytes()
        self.program_hash = hashlib.sha256(canonical).digest()
        ev = attester.attest(hashlib.sha512(SELF_CHECK_DOMAIN + self.program_hash).digest())
        collateral = ev.collateral
        if collateral is None and fetch_collateral is not None:
            collateral = fetch_collateral(ev.platform.value, ev.evidence)
        claims = verify_evidence(
            ev.platform,
            ev.evidence,
            collateral,
            now=(clock or (lambda: datetime.now(UTC)))(),
            anchors=anchors,
        )
        self.platform = ev.platform
        self.measurement: bytes = claims.measurement
        self._state = _HardwareState(
            measurement=claims.measurement,
            program_hash=self.program_hash,
            functions=load_program(canonical),
        )
        self._state.attester = attester

    def _request(self, req: dict[str, Any]) -> dict[str, Any]:
        try:
            return self._state.handle(req)
        except (RevealDenied, ProtocolError):
            raise
        except Exception as exc:  # the in-process twin of the worker's error reply
            raise ProtocolError(
                f"enclave refused {req.get('op')!r}: {type(exc).__name__}: {exc}"
            ) from exc

    def attest_full(self, session_id: bytes, nonce: bytes) -> dict[str, Any]:
        """Evidence, session public key, platform and collateral for one relying party."""
        return self._request({"op": "attest", "session_id": session_id, "nonce": nonce})

    def close(self) -> None:
        """Drop every session's keys and values."""
        self._state.sessions.clear()


__all__ = ["Attester", "CollateralFetcher", "HardwareEnclave"]

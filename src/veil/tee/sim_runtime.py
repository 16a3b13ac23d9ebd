"""Host side of the simulated enclave: start it, ask it for evidence, relay sealed data.

**Simulated: as trusted as a third party.** :class:`SimEnclave` starts
``python -m veil.tee.sim_worker`` as a subprocess and relays length-prefixed
:mod:`veil.core.wire` frames. The host is untrusted in the protocol's eyes: everything it relays
is either evidence the owners verify or ciphertext sealed to the attested key, so a host that
tampers only makes verification or decryption fail (tests inject exactly that).
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any, cast

from veil.core.wire import decode_value, encode_value
from veil.errors import ProtocolError, RevealDenied
from veil.tee.enclave_client import EnclaveClient
from veil.tee.program import ProgramBundle
from veil.tee.sim import SimRoot
from veil.tee.sim_worker import read_frame, write_frame


class SimEnclave(EnclaveClient):
    """A simulated enclave process running one program bundle.

    Parameters
    ----------
    root:
        The deployment's development root (the process signs evidence with it).
    bundle:
        The program the enclave runs; it measures it together with its own runtime source.
    """

    def __init__(self, root: SimRoot, bundle: ProgramBundle) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "veil.tee.sim_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        try:
            reply = self._request(
                {"op": "init", "root_key": root.private_bytes(), "bundle": bundle.canonical_bytes()}
            )
        except BaseException:
            self.close()
            raise
        self.measurement: bytes = bytes(reply["measurement"])
        self.program_hash: bytes = bytes(reply["program_hash"])

    def _request(self, req: dict[str, Any]) -> dict[str, Any]:
        proc = self._proc
        if proc.stdin is None or proc.stdout is None or proc.poll() is not None:
            raise ProtocolError("the simulated enclave process is not running")
        try:
            write_frame(proc.stdin, encode_value(req))
            frame = read_frame(proc.stdout)
        except (OSError, ValueError) as exc:
            raise ProtocolError(f"simulated enclave I/O failed: {exc}") from exc
        if frame is None:
            raise ProtocolError(f"the simulated enclave exited (code {proc.poll()})")
        reply = cast(dict[str, Any], decode_value(frame))
        if not reply.get("ok"):
            if reply.get("kind") == "RevealDenied":
                raise RevealDenied(
                    f"the simulated enclave refused the release: {reply.get('error')}"
                )
            raise ProtocolError(
                f"simulated enclave refused {req.get('op')!r}: {reply.get('error')}"
            )
        return reply

    def attest(self, session_id: bytes, nonce: bytes) -> tuple[bytes, bytes]:
        """Evidence binding the session's enclave key to ``nonce``, and that public key."""
        reply = self._request({"op": "attest", "session_id": session_id, "nonce": nonce})
        return bytes(reply["evidence"]), bytes(reply["public_key"])

    def attest_full(self, session_id: bytes, nonce: bytes) -> dict[str, Any]:
        """Evidence, session public key, platform (``sim``) and collateral (``None``)."""
        reply = self._request({"op": "attest", "session_id": session_id, "nonce": nonce})
        return {k: reply[k] for k in ("evidence", "public_key", "platform", "collateral")}

    def call(
        self,
        session_id: bytes,
        function: str,
        inputs: list[str],
        *,
        job_id: str,
        output_name: str,
        recipients: dict[str, bytes],
    ) -> dict[str, bytes]:
        """Run ``function`` on received inputs; the result comes back sealed per recipient."""
        reply = self._request(
            {
                "op": "call",
                "session_id": session_id,
                "function": function,
                "inputs": inputs,
                "job_id": job_id,
                "output_name": output_name,
                "recipients": recipients,
            }
        )
        return {str(k): bytes(v) for k, v in dict(reply["results"]).items()}

    def close(self) -> None:
        """Stop the process (closing its input ends its loop)."""
        if self._proc.stdin is not None and not self._proc.stdin.closed:
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()


__all__ = ["SimEnclave"]

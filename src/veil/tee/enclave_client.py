"""The host's side of an enclave runtime: the requests it relays, whatever carries them.

:class:`EnclaveClient` builds the ``put`` / ``apply`` / ``release`` requests that both runtimes
share (the simulated enclave process and the hardware enclave); a subclass says how a request
travels (:meth:`EnclaveClient._request`) and how the enclave is torn down (:meth:`close`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import Any, Self


class EnclaveClient(ABC):
    """Requests to an enclave; every reply is a dict (a refusal raises in ``_request``)."""

    @abstractmethod
    def _request(self, req: dict[str, Any]) -> dict[str, Any]:
        """Send one request to the enclave and return its reply."""

    @abstractmethod
    def close(self) -> None:
        """Tear the enclave down (idempotent)."""

    def put(
        self, session_id: bytes, sealed: bytes, *, job_id: str, input_name: str, owner: str
    ) -> None:
        """Relay an input sealed by its owner; the enclave opens it or refuses."""
        self._request(
            {
                "op": "put",
                "session_id": session_id,
                "sealed": sealed,
                "job_id": job_id,
                "input_name": input_name,
                "owner": owner,
            }
        )

    def apply(
        self,
        session_id: bytes,
        function: str,
        args: list[str | None],
        public: bytes,
        *,
        output_name: str,
    ) -> tuple[tuple[int, ...], str]:
        """Run ``function`` inside; the result stays in the enclave as ``output_name``.

        ``args`` names enclave values (``None`` where the argument is public); ``public`` is
        the :func:`veil.core.wire.encode_value` of ``{"args": [...], "kwargs": {...}}``.
        Returns the result's shape and dtype (the only things the host learns about it).
        """
        reply = self._request(
            {
                "op": "apply",
                "session_id": session_id,
                "function": function,
                "args": args,
                "public": public,
                "output_name": output_name,
            }
        )
        return tuple(int(d) for d in reply["shape"]), str(reply["dtype"])

    def release(
        self,
        session_id: bytes,
        value: str,
        *,
        job_id: str,
        output_name: str,
        recipients: dict[str, bytes],
        approvals: dict[str, bytes],
    ) -> dict[str, bytes]:
        """Ask the enclave to seal ``value`` to ``recipients`` (name → result key).

        The enclave checks every contributing owner's sealed release policy and approval
        (:func:`veil.tee.release.check_release`) and refuses otherwise.
        """
        reply = self._request(
            {
                "op": "release",
                "session_id": session_id,
                "value": value,
                "job_id": job_id,
                "output_name": output_name,
                "recipients": recipients,
                "approvals": approvals,
            }
        )
        return {str(k): bytes(v) for k, v in dict(reply["results"]).items()}

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

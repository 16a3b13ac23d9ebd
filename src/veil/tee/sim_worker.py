"""The simulated enclave process (``python -m veil.tee.sim_worker``).

**Simulated: as trusted as a third party.** This process plays the enclave: it measures the code
it runs (this file's source and the canonical program bundle it is given), holds one ephemeral
X25519 key per session, signs evidence binding that key with the deployment's development root,
opens inputs sealed to that key, runs the registered functions, and seals each result to its
recipient. Its host can read all of it; it exists so the attestation, binding and channel path
runs end to end without TEE hardware.

Protocol on stdin/stdout: frames of a 4-byte big-endian length and a :mod:`veil.core.wire`
``encode_value`` payload (msgpack, never pickle). Requests are maps with an ``op``; replies are
maps with ``ok`` and either the results or an ``error`` string.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from veil.core.wire import decode_value, encode_value
from veil.tee.binding import report_data
from veil.tee.channel import EnclaveInbox, raw_public_key, seal_result
from veil.tee.program import FORMAT as PROGRAM_FORMAT
from veil.tee.sim import SimRoot, sign_sim_evidence, sim_measurement

MAX_FRAME = 1 << 30


def read_frame(stream: IO[bytes]) -> bytes | None:
    """One length-prefixed frame, or ``None`` at end of stream."""
    head = stream.read(4)
    if len(head) < 4:
        return None
    n = int.from_bytes(head, "big")
    if n > MAX_FRAME:
        raise ValueError(f"frame of {n} bytes exceeds {MAX_FRAME}")
    body = stream.read(n)
    if len(body) != n:
        raise ValueError("truncated frame")
    return body


def write_frame(stream: IO[bytes], payload: bytes) -> None:
    """Write one length-prefixed frame and flush."""
    stream.write(len(payload).to_bytes(4, "big") + payload)
    stream.flush()


@dataclass
class _Session:
    key: X25519PrivateKey
    inbox: EnclaveInbox
    values: dict[str, Any] = field(default_factory=dict)


@dataclass
class SimEnclaveState:
    """Everything the simulated enclave holds; one per process."""

    root: SimRoot | None = None
    measurement: bytes = b""
    program_hash: bytes = b""
    functions: dict[str, Callable[..., Any]] = field(default_factory=dict)
    sessions: dict[bytes, _Session] = field(default_factory=dict)

    def handle(self, req: dict[str, Any]) -> dict[str, Any]:
        """Serve one request."""
        op = req.get("op")
        if op == "init":
            return self._init(req)
        if self.root is None:
            raise RuntimeError("the enclave is not initialized")
        if op == "attest":
            return self._attest(req)
        if op == "put":
            return self._put(req)
        if op == "call":
            return self._call(req)
        raise ValueError(f"unknown op {op!r}")

    def _init(self, req: dict[str, Any]) -> dict[str, Any]:
        import hashlib

        bundle = bytes(req["bundle"])
        doc = json.loads(bundle)
        if doc.get("format") != PROGRAM_FORMAT:
            raise ValueError("not a veil program bundle")
        namespace: dict[str, Any] = {"__name__": "veil_tee_program"}
        for qualname, source in doc["functions"]:
            exec(compile(source, f"<veil program {qualname}>", "exec"), namespace)
            self.functions[qualname] = namespace[qualname.rsplit(".", 1)[-1]]
        self.root = SimRoot.from_private_bytes(bytes(req["root_key"]))
        self.measurement = sim_measurement(Path(__file__).read_bytes(), bundle)
        self.program_hash = hashlib.sha256(bundle).digest()
        return {"measurement": self.measurement, "program_hash": self.program_hash}

    def _attest(self, req: dict[str, Any]) -> dict[str, Any]:
        assert self.root is not None
        sid, nonce = bytes(req["session_id"]), bytes(req["nonce"])
        if sid not in self.sessions:
            key = X25519PrivateKey.generate()
            inbox = EnclaveInbox(key, sid, self.program_hash, self.measurement)
            self.sessions[sid] = _Session(key, inbox)
        pk = raw_public_key(self.sessions[sid].key)
        evidence = sign_sim_evidence(
            self.root,
            measurement=self.measurement,
            report_data=report_data(sid, nonce, pk, self.program_hash),
            timestamp_ms=int(time.time() * 1000),
        )
        return {"evidence": evidence, "public_key": pk}

    def _session(self, req: dict[str, Any]) -> _Session:
        sid = bytes(req["session_id"])
        if sid not in self.sessions:
            raise ValueError("unknown session: attest first")
        return self.sessions[sid]

    def _put(self, req: dict[str, Any]) -> dict[str, Any]:
        s = self._session(req)
        name = str(req["input_name"])
        plain = s.inbox.open(
            bytes(req["sealed"]),
            job_id=str(req["job_id"]),
            input_name=name,
            owner=str(req["owner"]),
        )
        s.values[name] = decode_value(plain)
        return {}

    def _call(self, req: dict[str, Any]) -> dict[str, Any]:
        s = self._session(req)
        fn = self.functions.get(str(req["function"]))
        if fn is None:
            raise ValueError(f"function {req['function']!r} is not in the program bundle")
        missing = [n for n in req["inputs"] if n not in s.values]
        if missing:
            raise ValueError(f"inputs not received yet: {missing}")
        result = encode_value(fn(*(s.values[n] for n in req["inputs"])))
        sealed = {
            str(name): seal_result(
                s.key,
                bytes(pk),
                result,
                session_id=bytes(req["session_id"]),
                job_id=str(req["job_id"]),
                output_name=str(req["output_name"]),
                recipient=str(name),
                program_hash=self.program_hash,
                measurement=self.measurement,
            )
            for name, pk in dict(req["recipients"]).items()
        }
        return {"results": sealed}


def main() -> int:
    """Serve requests from stdin until it closes."""
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # user code may print; keep the protocol stream clean
    state = SimEnclaveState()
    while True:
        frame = read_frame(inp)
        if frame is None:
            return 0
        try:
            reply = {"ok": True, **state.handle(decode_value(frame))}
        except Exception as exc:  # report any failure to the host; the process stays up
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        write_frame(out, encode_value(reply))


if __name__ == "__main__":
    sys.exit(main())

"""The simulated enclave process (``python -m veil.tee.sim_worker``).

**Simulated: as trusted as a third party.** This process plays the enclave: it measures the code
it runs (this file's source and the canonical program bundle it is given), holds one ephemeral
X25519 key per session, signs evidence binding that key with the deployment's development root,
opens inputs sealed to that key (each with its owner's release policy, :mod:`veil.tee.release`),
runs the registered functions, keeps their results inside, and seals a result to a recipient only
when every contributing owner's policy lists that recipient and key and every owner approved that
release. Its host can read all of it; it exists so the attestation, binding and channel path
runs end to end without TEE hardware.

Protocol on stdin/stdout: frames of a 4-byte big-endian length and a :mod:`veil.core.wire`
``encode_value`` payload (msgpack, never pickle). Requests are maps with an ``op``; replies are
maps with ``ok`` and either the results or an ``error`` string.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from veil.core.wire import decode_value, encode_value
from veil.errors import RevealDenied
from veil.tee.binding import report_data
from veil.tee.channel import EnclaveInbox, raw_public_key, seal_result
from veil.tee.program import FORMAT as PROGRAM_FORMAT
from veil.tee.release import (
    GOVERNED_FORMAT,
    RESULT_FORMAT,
    Governance,
    apply_lineage,
    check_release,
    count_releases,
    dp_from_wire,
    input_lineage,
    sealed_digest,
)
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


def load_program(bundle: bytes) -> dict[str, Callable[..., Any]]:
    """The functions of a canonical program bundle, by qualified name (exec of their source)."""
    doc = json.loads(bundle)
    if not isinstance(doc, dict) or doc.get("format") != PROGRAM_FORMAT:
        raise ValueError("not a veil program bundle")
    namespace: dict[str, Any] = {"__name__": "veil_tee_program"}
    functions: dict[str, Callable[..., Any]] = {}
    for qualname, source in doc["functions"]:
        exec(compile(source, f"<veil program {qualname}>", "exec"), namespace)
        functions[qualname] = namespace[qualname.rsplit(".", 1)[-1]]
    return functions


@dataclass
class _Session:
    key: X25519PrivateKey
    inbox: EnclaveInbox
    values: dict[str, Any] = field(default_factory=dict)
    governance: dict[str, Governance] = field(default_factory=dict)
    lineage: dict[str, bytes] = field(default_factory=dict)
    released: set[str] = field(default_factory=set)
    release_counts: dict[bytes, int] = field(default_factory=dict)

    def new_name(self, name: str) -> str:
        if name in self.values:
            raise ValueError(f"value {name!r} already exists in this session")
        return name


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
        if not self.program_hash:
            raise RuntimeError("the enclave is not initialized")
        if op == "attest":
            return self._attest(req)
        if op == "put":
            return self._put(req)
        if op == "call":
            return self._call(req)
        if op == "apply":
            return self._apply(req)
        if op == "release":
            return self._release(req)
        raise ValueError(f"unknown op {op!r}")

    def _init(self, req: dict[str, Any]) -> dict[str, Any]:
        bundle = bytes(req["bundle"])
        self.functions = load_program(bundle)
        self.root = SimRoot.from_private_bytes(bytes(req["root_key"]))
        self.measurement = sim_measurement(Path(__file__).read_bytes(), bundle)
        self.program_hash = hashlib.sha256(bundle).digest()
        return {"measurement": self.measurement, "program_hash": self.program_hash}

    def session_key(self, session_id: bytes) -> bytes:
        """The session's enclave public key (the session is created on first use)."""
        if session_id not in self.sessions:
            key = X25519PrivateKey.generate()
            inbox = EnclaveInbox(key, session_id, self.program_hash, self.measurement)
            self.sessions[session_id] = _Session(key, inbox)
        return raw_public_key(self.sessions[session_id].key)

    def _attest(self, req: dict[str, Any]) -> dict[str, Any]:
        assert self.root is not None
        sid, nonce = bytes(req["session_id"]), bytes(req["nonce"])
        pk = self.session_key(sid)
        evidence = sign_sim_evidence(
            self.root,
            measurement=self.measurement,
            report_data=report_data(sid, nonce, pk, self.program_hash),
            timestamp_ms=int(time.time() * 1000),
        )
        return {"evidence": evidence, "public_key": pk, "platform": "sim", "collateral": None}

    def _session(self, req: dict[str, Any]) -> _Session:
        sid = bytes(req["session_id"])
        if sid not in self.sessions:
            raise ValueError("unknown session: attest first")
        return self.sessions[sid]

    def _put(self, req: dict[str, Any]) -> dict[str, Any]:
        s = self._session(req)
        name, job_id, owner = str(req["input_name"]), str(req["job_id"]), str(req["owner"])
        plain = s.inbox.open(bytes(req["sealed"]), job_id=job_id, input_name=name, owner=owner)
        s.new_name(name)
        decoded = decode_value(plain)
        if isinstance(decoded, dict) and decoded.get("format") == GOVERNED_FORMAT:
            release = decoded.get("release")
            if not isinstance(release, dict):
                raise ValueError(f"the release policy sealed by {owner!r} is malformed")
            s.values[name] = decoded.get("value")
            s.governance[name] = Governance(((owner, release),))
        else:  # sealed without a policy through the low-level API: released by `call` only
            s.values[name] = decoded
            s.governance[name] = Governance()
        s.lineage[name] = input_lineage(job_id, name, owner, sealed_digest(bytes(req["sealed"])))
        return {}

    def _call(self, req: dict[str, Any]) -> dict[str, Any]:
        s = self._session(req)
        fn = self.functions.get(str(req["function"]))
        if fn is None:
            raise ValueError(f"function {req['function']!r} is not in the program bundle")
        missing = [n for n in req["inputs"] if n not in s.values]
        if missing:
            raise ValueError(f"inputs not received yet: {missing}")
        if Governance.union(s.governance[n] for n in req["inputs"]).policies:
            raise ValueError("inputs sealed with a release policy leave only through 'release'")
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

    def _apply(self, req: dict[str, Any]) -> dict[str, Any]:
        """Run a registered function on enclave values and public arguments; keep the result."""
        s = self._session(req)
        name = str(req["function"])
        fn = self.functions.get(name)
        if fn is None:
            raise ValueError(f"function {name!r} is not in the program bundle")
        out = s.new_name(str(req["output_name"]))
        refs = [None if r is None else str(r) for r in req["args"]]
        missing = [r for r in refs if r is not None and r not in s.values]
        if missing:
            raise ValueError(f"values not in the enclave: {missing}")
        public = bytes(req["public"])
        pub = decode_value(public)
        if not isinstance(pub, dict) or len(pub.get("args", ())) != len(refs):
            raise ValueError("public arguments do not match the argument list")
        args = [pub["args"][i] if r is None else s.values[r] for i, r in enumerate(refs)]
        result = fn(*args, **dict(pub.get("kwargs", {})))
        s.values[out] = result
        s.governance[out] = Governance.union(s.governance[r] for r in refs if r is not None)
        s.lineage[out] = apply_lineage(
            name, [None if r is None else s.lineage[r] for r in refs], public
        )
        dtype = getattr(result, "dtype", None)
        return {
            "shape": [int(d) for d in np.shape(result)],
            "dtype": str(dtype) if dtype is not None else type(result).__name__,
        }

    def _release(self, req: dict[str, Any]) -> dict[str, Any]:
        """Seal a value to recipients, if every owner's sealed policy and approval allow it."""
        s = self._session(req)
        name = str(req["value"])
        if name not in s.values:
            raise ValueError(f"value {name!r} is not in the enclave")
        output = str(req["output_name"])
        if output in s.released:
            # Approvals bind the output name: one release (one DP draw) per approval.
            raise RevealDenied(f"output {output!r} was already released in this session")
        recipients = {str(k): bytes(v) for k, v in dict(req["recipients"]).items()}
        dp = check_release(
            s.governance[name],
            recipients,
            lineage=s.lineage[name],
            output_name=output,
            approvals={str(k): bytes(v) for k, v in dict(req["approvals"]).items()},
        )
        count_releases(s.governance[name], s.release_counts)
        s.released.add(output)
        value, record = s.values[name], None
        if dp is not None:
            from veil.dp import release as dp_release

            value, event = dp_release(value, dp_from_wire(dp))
            record = event.to_dict()
        payload = encode_value(
            {"format": RESULT_FORMAT, "value": value, "lineage": s.lineage[name], "dp": record}
        )
        sealed = {
            r: seal_result(
                s.key,
                pk,
                payload,
                session_id=bytes(req["session_id"]),
                job_id=str(req["job_id"]),
                output_name=output,
                recipient=r,
                program_hash=self.program_hash,
                measurement=self.measurement,
            )
            for r, pk in recipients.items()
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
            reply = {
                "ok": False,
                "error": f"{type(exc).__name__}: {exc}",
                "kind": type(exc).__name__,
            }
        write_frame(out, encode_value(reply))


if __name__ == "__main__":
    sys.exit(main())

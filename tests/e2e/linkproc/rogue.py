"""A rogue cluster member, as its own process: opens the link stream with a VALID cluster
certificate and writes one kind of bad frame. Prints the status the node answered with.

Usage: ``rogue.py PORT TLS_DIR TARGET CASE...`` with each CASE one of :data:`CASES`; the case
name is also the identity (certificate) used for it, so each case is a distinct cluster member.
"""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import grpc

from veil.transport import frames as fr
from veil.transport.grpc_server import METHOD_PATH


class _Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (print, ("unpickled!",))


PICKLE = pickle.dumps(_Evil(), protocol=5)
BODY = fr.control_frame(fr.Kind.BYTES, "k", b"x" * 100)
CASES = {
    "garbage": b"\xde\xad\xbe\xef garbage bytes" * 10,
    "truncated": BODY[:30],
    "oversized": fr.HEADER.pack(fr.MAGIC, fr.VERSION, fr.Kind.ARRAY, 1, 0, 1, 1 << 42) + b"k",
    "pickle": PICKLE,
    "pickle-in-array": fr.control_frame(fr.Kind.ARRAY, "k", PICKLE),
}


def main() -> int:
    port, tls_dir, target, *cases = sys.argv[1:]
    d = Path(tls_dir)
    for case in cases:
        creds = grpc.ssl_channel_credentials(
            (d / "ca.pem").read_bytes(), (d / f"{case}.key").read_bytes(),
            (d / f"{case}.pem").read_bytes(),
        )  # fmt: skip
        hello = fr.control_frame(fr.Kind.HELLO, target, case.encode())
        options = [("grpc.ssl_target_name_override", target)]
        with grpc.secure_channel(f"127.0.0.1:{port}", creds, options=options) as ch:
            call = ch.stream_unary(METHOD_PATH, request_serializer=None, response_deserializer=None)
            try:
                call(iter([hello, CASES[case]]), timeout=10, wait_for_ready=True)
                print(f"STATUS {case} OK", flush=True)
            except grpc.RpcError as exc:
                print(f"STATUS {case} {exc.code().name} {exc.details()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

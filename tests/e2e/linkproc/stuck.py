"""A party stuck while starting, as its own process: it holds a party's port with that party's
VALID certificate (TLS handshakes succeed, so peers see it up) but never answers the connection
check and never opens a stream, like a node whose Python side hangs in start-up.

Usage: ``stuck.py PORT TLS_DIR PARTY``. Prints ``READY`` once listening, then waits to be killed.
"""

from __future__ import annotations

import sys
import threading
import time
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc

from veil.transport.certs import TlsFiles
from veil.transport.grpc_server import SERVICE


def main() -> int:
    port, tls_dir, party = int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    material = TlsFiles.in_dir(tls_dir, party).load()
    hang = threading.Event()

    def ping(request: bytes, context: Any) -> bytes:
        hang.wait()  # never set: the check is never answered
        return b""

    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=8),
        handlers=[
            grpc.method_handlers_generic_handler(
                SERVICE, {"Ping": grpc.unary_unary_rpc_method_handler(ping)}
            )
        ],
    )
    creds = grpc.ssl_server_credentials(
        [(material.key_pem, material.cert_pem)],
        root_certificates=material.ca_pem,
        require_client_auth=True,
    )
    if server.add_secure_port(f"127.0.0.1:{port}", creds) == 0:
        return 2
    server.start()
    sys.stdout.write("READY\n")
    sys.stdout.flush()
    time.sleep(120)
    return 0


if __name__ == "__main__":
    sys.exit(main())

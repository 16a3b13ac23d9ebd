"""A rogue gRPC client for link tests: writes raw frames on the link's stream with a given cert."""

from __future__ import annotations

from collections.abc import Iterable

import grpc

from veil.transport.certs import TlsFiles
from veil.transport.frames import Kind, control_frame
from veil.transport.grpc_server import METHOD_PATH


def hello(sender: str, target: str) -> bytes:
    """The HELLO frame a well-behaved ``sender`` opens its stream to ``target`` with."""
    return control_frame(Kind.HELLO, target, sender.encode())


def send_raw(
    port: int, tls: TlsFiles, target: str, frames: Iterable[bytes], timeout: float = 10.0
) -> tuple[grpc.StatusCode, str]:
    """Open one stream to ``target`` on 127.0.0.1:``port``, write ``frames``, end the stream.

    Returns the final status code and details the server answered with.
    """
    creds = grpc.ssl_channel_credentials(
        tls.ca_cert.read_bytes(), tls.key.read_bytes(), tls.cert.read_bytes()
    )
    options = [("grpc.ssl_target_name_override", target), ("grpc.use_local_subchannel_pool", 1)]
    with grpc.secure_channel(f"127.0.0.1:{port}", creds, options=options) as channel:
        call = channel.stream_unary(
            METHOD_PATH, request_serializer=None, response_deserializer=None
        )
        try:
            call(iter(list(frames)), timeout=timeout, wait_for_ready=True)
        except grpc.RpcError as exc:
            return exc.code(), exc.details() or ""
        return grpc.StatusCode.OK, ""

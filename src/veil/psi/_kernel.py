"""Byte-level X25519 kernels and the worker process running them (stdlib + vetted libraries only).

Two interchangeable implementations of the RFC 7748 X25519 function, both vetted libraries:

* ``openssl`` — ``cryptography``'s ``X25519PrivateKey.exchange`` (OpenSSL), one point per call,
  everywhere.
* ``ipp-mb`` — ``mbx_x25519_mb8`` of Intel's Cryptography Primitives Library (``crypto_mb``,
  PyPI ``ipp-crypto``; its runtime needs ``intel-cmplr-lib-rt``): eight points per call on
  AVX-512 IFMA, called through ``ctypes`` (which releases the GIL). The same library SecretFlow
  uses for its Curve25519 PSI on such CPUs. Results are bit-identical (tests check it).

:mod:`veil.psi.curve` wraps these for numpy; :mod:`veil.psi.parallel` starts this file as a
script (``python -P .../_kernel.py``) so a worker imports no numpy and no veil, and never
re-imports the parent's ``__main__`` (which ``multiprocessing``'s spawn/forkserver would).

Worker protocol on stdin/stdout, little-endian, no pickle::

    request  = "VPK2" | op u8 | kernel u8 | out_bytes u8 | salt_len u8 | width u8 | count u32
               | key[32] | salt[salt_len] | data[count·width]
    response = status u8 (0 ok, 1 small-order point, 2 error) | length u32 | data[length]

``op`` 1 hashes digests to u-coordinates and masks them; ``op`` 2 masks u-coordinates.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import struct
import sys
from array import array
from typing import BinaryIO, Protocol

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

POINT_BYTES = 32
HASH_DOMAIN = b"veil/psi/ecdh-x25519/v1/hash-to-u"
OP_HASH_AND_MASK = 1
OP_MASK = 2
OPENSSL = 0
IPP_MB = 1
KERNEL_NAMES = {OPENSSL: "openssl", IPP_MB: "ipp-mb"}
REQUEST = struct.Struct("<4sBBBBBI")
RESPONSE = struct.Struct("<BI")
MAGIC = b"VPK2"
_ZERO = bytes(POINT_BYTES)
_NINE = b"\x09" + bytes(POINT_BYTES - 1)  # the base point: filler for unused lanes
_CLEAR_TOP_BIT = bytes(b & 0x7F for b in range(256))
#: Shared libraries ``crypto_mb`` needs (Intel compiler runtime), loaded first when present.
_MB_DEPS = ("libintlc.so.5", "libimf.so", "libsvml.so", "libirng.so")
#: RFC 7748 section 6.1 (Alice's key, Bob's public key, shared secret): a load-time self-test.
_KAT = (
    bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"),
    bytes.fromhex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"),
    bytes.fromhex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"),
)


class SmallOrderPoint(ValueError):
    """A point of small order was given to X25519 (its result would be all zeros)."""

    def __init__(self, index: int) -> None:
        super().__init__(f"point {index} of the batch is of small order")
        self.index = index


class Kernel(Protocol):
    """``mask(key, points, out_bytes)``: ``X25519(key, u)[:out_bytes]`` for each 32-byte u."""

    kind: int

    def mask(self, key: bytes, points: bytes, out_bytes: int) -> bytes: ...


def hash_to_u(salt: bytes, digests: bytes, width: int) -> bytes:
    """``SHA-256(domain ‖ len(salt) ‖ salt ‖ d)``, bit 255 cleared, for each ``width``-byte d."""
    base = hashlib.sha256(HASH_DOMAIN + len(salt).to_bytes(1, "big") + salt)
    parts: list[bytes] = []
    for i in range(0, len(digests), width):
        h = base.copy()
        h.update(digests[i : i + width])
        parts.append(h.digest())
    out = bytearray(b"".join(parts))
    out[31::POINT_BYTES] = out[31::POINT_BYTES].translate(_CLEAR_TOP_BIT)
    return bytes(out)


def _truncate(full: bytes | bytearray, n: int, out_bytes: int) -> bytes:
    if out_bytes == POINT_BYTES:
        return bytes(full[: n * POINT_BYTES])
    mv = memoryview(full)
    return b"".join([mv[i : i + out_bytes] for i in range(0, n * POINT_BYTES, POINT_BYTES)])


class OpenSSLKernel:
    """X25519 through ``cryptography`` (OpenSSL), one point per call."""

    kind = OPENSSL

    def mask(self, key: bytes, points: bytes, out_bytes: int) -> bytes:
        exchange = X25519PrivateKey.from_private_bytes(key).exchange
        from_bytes = X25519PublicKey.from_public_bytes
        parts: list[bytes] = []
        try:
            for i in range(0, len(points), POINT_BYTES):
                parts.append(exchange(from_bytes(points[i : i + POINT_BYTES]))[:out_bytes])
        except ValueError:
            raise SmallOrderPoint(len(parts)) from None
        return b"".join(parts)


def _lib_dirs() -> list[str]:
    dirs = [os.environ.get("VEIL_CRYPTO_MB_DIR", ""), os.path.join(sys.prefix, "lib")]
    return [d for d in dirs if d and os.path.isdir(d)]


def _cpu_has_ifma() -> bool:
    """Whether the CPU advertises AVX-512 IFMA (``/proc/cpuinfo``; elsewhere trust crypto_mb)."""
    try:
        with open("/proc/cpuinfo") as f:
            return "avx512ifma" in f.read()
    except OSError:
        return True


class IppMbKernel:
    """X25519 through Intel ``crypto_mb`` ``mbx_x25519_mb8``: eight points per call.

    Raises ``OSError`` if the library is missing, the CPU lacks AVX-512 IFMA, or the RFC 7748
    known answer does not come out.
    """

    kind = IPP_MB

    def __init__(self) -> None:
        lib = None
        for d in _lib_dirs():
            path = os.path.join(d, "libcrypto_mb.so")
            if os.path.exists(path):
                for dep in _MB_DEPS:
                    dep_path = os.path.join(d, dep)
                    if os.path.exists(dep_path):
                        ctypes.CDLL(dep_path, mode=ctypes.RTLD_GLOBAL)
                lib = ctypes.CDLL(path)
                break
        if lib is None:
            raise OSError("libcrypto_mb.so not found (pip install ipp-crypto intel-cmplr-lib-rt)")
        applicable = lib.mbx_is_crypto_mb_applicable
        applicable.argtypes = [ctypes.c_uint64]
        applicable.restype = ctypes.c_int
        if not applicable(0) or not _cpu_has_ifma():
            raise OSError("this CPU lacks AVX-512 IFMA, which crypto_mb's X25519 needs")
        fn = lib.mbx_x25519_mb8
        fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
        fn.restype = ctypes.c_uint32
        self._fn = fn
        self._lib = lib
        key, point, shared = _KAT
        if self.mask(key, point * 3, POINT_BYTES) != shared * 3:
            raise OSError("crypto_mb's X25519 failed the RFC 7748 known-answer self-test")

    def mask(self, key: bytes, points: bytes, out_bytes: int) -> bytes:
        n = len(points) // POINT_BYTES
        lanes = -(-n // 8) * 8
        inp = bytearray(points) + _NINE * (lanes - n)
        out = bytearray(lanes * POINT_BYTES)
        if not lanes:
            return b""
        key_buf = ctypes.create_string_buffer(key, POINT_BYTES)
        in_base = ctypes.addressof((ctypes.c_char * len(inp)).from_buffer(inp))
        out_base = ctypes.addressof((ctypes.c_char * len(out)).from_buffer(out))
        keys = array("Q", [ctypes.addressof(key_buf)] * 8)
        ins = array("Q", range(in_base, in_base + len(inp), POINT_BYTES))
        outs = array("Q", range(out_base, out_base + len(out), POINT_BYTES))
        k_addr, i_addr, o_addr = keys.buffer_info()[0], ins.buffer_info()[0], outs.buffer_info()[0]
        fn = self._fn
        for c in range(lanes // 8):
            status = fn(o_addr + 64 * c, k_addr, i_addr + 64 * c)
            if status:
                lane = next(j for j in range(8) if (status >> (4 * j)) & 0xF)
                raise SmallOrderPoint(8 * c + lane)
        if _ZERO in out:  # X25519 of a small-order point is all zeros
            for i in range(n):
                if out[i * POINT_BYTES : (i + 1) * POINT_BYTES] == _ZERO:
                    raise SmallOrderPoint(i)
        return _truncate(out, n, out_bytes)


def find_ipp_mb() -> IppMbKernel | None:
    """The ``ipp-mb`` kernel if this machine can run it, else ``None``."""
    try:
        return IppMbKernel()
    except (OSError, AttributeError):
        return None


def make_kernel(kind: int) -> Kernel:
    """A kernel of ``kind`` (``OPENSSL`` or ``IPP_MB``; raises ``OSError`` if unavailable)."""
    if kind == IPP_MB:
        return IppMbKernel()
    if kind == OPENSSL:
        return OpenSSLKernel()
    raise ValueError(f"unknown kernel kind {kind}")


def run(
    kernel: Kernel, op: int, key: bytes, salt: bytes, data: bytes, width: int, out_bytes: int
) -> bytes:
    """Apply ``op`` to ``data`` with ``kernel``."""
    if op == OP_HASH_AND_MASK:
        return kernel.mask(key, hash_to_u(salt, data, width), out_bytes)
    if op == OP_MASK:
        return kernel.mask(key, data, out_bytes)
    raise ValueError(f"unknown kernel op {op}")


def encode_request(
    op: int, kind: int, key: bytes, salt: bytes, data: bytes, width: int, out_bytes: int
) -> bytes:
    """One request frame."""
    head = REQUEST.pack(MAGIC, op, kind, out_bytes, len(salt), width, len(data) // width)
    return head + key + salt + data


def _read_exact(f: BinaryIO, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = f.read(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return bytes(buf)


def serve(inp: BinaryIO, out: BinaryIO) -> None:
    """Answer requests until the parent closes stdin."""
    kernels: dict[int, Kernel] = {}
    while True:
        try:
            head = _read_exact(inp, REQUEST.size)
        except EOFError:
            return
        magic, op, kind, out_bytes, salt_len, width, count = REQUEST.unpack(head)
        if magic != MAGIC:
            raise SystemExit("veil psi worker: bad request frame")
        key = _read_exact(inp, 32)
        salt = _read_exact(inp, salt_len)
        data = _read_exact(inp, count * width)
        try:
            if kind not in kernels:
                kernels[kind] = make_kernel(kind)
            res, status = run(kernels[kind], op, key, salt, data, width, out_bytes), 0
        except SmallOrderPoint as exc:
            res, status = str(exc.index).encode(), 1
        except Exception as exc:  # reported to the parent, which raises
            res, status = f"{type(exc).__name__}: {exc}".encode(), 2
        out.write(RESPONSE.pack(status, len(res)) + res)
        out.flush()


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)

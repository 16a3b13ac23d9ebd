"""Scalar multiplications spread over worker processes.

OpenSSL's X25519 holds the GIL (measured: two threads run 1.18× faster than one), so batches are
split across worker processes. A :class:`Masker` belongs to one PSI run (a context manager); its
workers start lazily on the first batch of at least ``parallel_min_rows`` points. Each worker is
``python -P veil/psi/_kernel.py``: it imports only ``cryptography``, talks a small binary frame
protocol over its stdin/stdout (no pickle), and never re-imports the parent's ``__main__`` (so a
job script without an ``if __name__ == "__main__"`` guard is safe, unlike ``multiprocessing``).
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import numpy as np

from veil.errors import ConfigError, ProtocolError, VeilError
from veil.psi import _kernel, curve
from veil.psi.options import Backend

_KERNEL_SCRIPT = Path(_kernel.__file__).resolve()


def _read_exact(f: IO[bytes], n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = f.read(n - len(buf))
        if not chunk:
            raise VeilError("a PSI worker process died (out of memory or killed?); re-run")
        buf += chunk
    return bytes(buf)


def peak_rss_mb(pid: int | str = "self") -> float:
    """Peak resident memory (``VmHWM``) of process ``pid`` in MB; 0 where ``/proc`` is missing."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def select_kernel(backend: Backend) -> _kernel.Kernel:
    """The X25519 kernel for ``backend`` (``AUTO``: ``ipp-mb`` if it runs here, else OpenSSL)."""
    if backend is Backend.OPENSSL:
        return _kernel.OpenSSLKernel()
    mb = _kernel.find_ipp_mb()
    if mb is not None:
        return mb
    if backend is Backend.IPP_MB:
        raise ConfigError(
            "PSI backend ipp-mb needs Intel crypto_mb (pip install ipp-crypto "
            "intel-cmplr-lib-rt) and a CPU with AVX-512 IFMA; use Backend.AUTO or OPENSSL"
        )
    return _kernel.OpenSSLKernel()


class Masker:
    """Hash-and-mask and mask batches of points, in-process or across ``workers`` processes.

    Parameters
    ----------
    workers:
        Number of worker processes (1: always in-process).
    parallel_min_rows:
        Batches with fewer rows are computed in-process.
    backend:
        Which X25519 implementation to use (:class:`~veil.psi.options.Backend`).

    Raises
    ------
    ConfigError
        ``Backend.IPP_MB`` was asked for but cannot run here.
    """

    def __init__(
        self, workers: int = 1, parallel_min_rows: int = 40_000, backend: Backend = Backend.AUTO
    ) -> None:
        self.workers = max(1, int(workers))
        self.parallel_min_rows = parallel_min_rows
        self._procs: list[subprocess.Popen[bytes]] = []
        self.kernel = select_kernel(backend)
        #: Largest peak RSS of a worker process, in MB (Linux; 0 if unknown or none ran).
        self.worker_peak_rss_mb = 0.0

    @property
    def backend_name(self) -> str:
        """``"openssl"`` or ``"ipp-mb"``."""
        return _kernel.KERNEL_NAMES[self.kernel.kind]

    def __enter__(self) -> Masker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the worker processes (idempotent); records their peak RSS first."""
        procs, self._procs = self._procs, []
        for p in procs:
            self.worker_peak_rss_mb = max(self.worker_peak_rss_mb, peak_rss_mb(p.pid))
        for p in procs:
            if p.stdin is not None:
                with contextlib.suppress(OSError):  # a dead worker: nothing left to flush
                    p.stdin.close()
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            if p.stdout is not None:
                p.stdout.close()

    def _workers(self) -> list[subprocess.Popen[bytes]]:
        if not self._procs:
            self._procs = [
                subprocess.Popen(
                    [sys.executable, "-P", str(_KERNEL_SCRIPT)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                )
                for _ in range(self.workers)
            ]
        return self._procs

    def _split(self, rows: int) -> list[tuple[int, int]] | None:
        if self.workers == 1 or rows < max(self.parallel_min_rows, 2):
            return None
        parts = min(self.workers, rows)
        bounds = np.linspace(0, rows, parts + 1).astype(int)
        return [(int(bounds[i]), int(bounds[i + 1])) for i in range(parts)]

    def _parallel(
        self,
        op: int,
        key: bytes,
        salt: bytes,
        data: np.ndarray[Any, Any],
        out_bytes: int,
        parts: list[tuple[int, int]],
    ) -> np.ndarray[Any, Any]:
        procs = self._workers()
        width = int(data.shape[1])
        for (a, b), p in zip(parts, procs, strict=False):
            assert p.stdin is not None
            kind = self.kernel.kind
            request = _kernel.encode_request(
                op, kind, key, salt, data[a:b].tobytes(), width, out_bytes
            )
            try:
                p.stdin.write(request)
                p.stdin.flush()
            except OSError as exc:
                raise VeilError(f"a PSI worker process is gone ({exc}); re-run") from None
        out = np.empty((data.shape[0], out_bytes), dtype=np.uint8)
        errors: list[Exception] = []
        for (a, b), p in zip(parts, procs, strict=False):
            assert p.stdout is not None
            status, length = _kernel.RESPONSE.unpack(_read_exact(p.stdout, _kernel.RESPONSE.size))
            body = _read_exact(p.stdout, length)
            if status == 0:
                out[a:b] = np.frombuffer(body, dtype=np.uint8).reshape(b - a, out_bytes)
            elif status == 1:
                errors.append(curve.small_order_error(a + int(body)))
            else:
                errors.append(ProtocolError(f"PSI worker failed: {body.decode(errors='replace')}"))
        if errors:
            raise errors[0]
        return out

    def hash_and_mask(
        self, key: bytes, salt: bytes, digests: np.ndarray[Any, Any]
    ) -> np.ndarray[Any, Any]:
        """``X25519(key, H(salt, d))`` for each digest row: ``(k, 32)`` uint8."""
        d = np.ascontiguousarray(digests, dtype=np.uint8)
        parts = self._split(d.shape[0])
        if parts is None:
            return curve.hash_and_mask(key, salt, d, kernel=self.kernel)
        return self._parallel(_kernel.OP_HASH_AND_MASK, key, salt, d, curve.POINT_BYTES, parts)

    def mask(
        self, key: bytes, points: np.ndarray[Any, Any], out_bytes: int
    ) -> np.ndarray[Any, Any]:
        """``X25519(key, u)`` for each point row, truncated to ``out_bytes``."""
        p = curve.check_points(points, out_bytes)
        parts = self._split(p.shape[0])
        if parts is None:
            return curve.mask(key, p, out_bytes, kernel=self.kernel)
        return self._parallel(_kernel.OP_MASK, key, b"", p, out_bytes, parts)

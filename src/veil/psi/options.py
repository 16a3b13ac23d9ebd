"""Options and results of a PSI run (frozen dataclasses; no strings-as-enums)."""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from veil.errors import ConfigError

#: Protocol identifier carried in every hello; parties refuse to talk across versions.
PROTOCOL = "veil-psi/ecdh-x25519/v1"
#: Bytes of a doubly-masked value kept for the final comparison. Two distinct ids are mistaken
#: for each other with probability about n_a·n_b / 2^128 (≈ 3e-25 at 10^7 × 10^7).
COMPARE_BYTES = 16


class Backend(enum.Enum):
    """Which vetted X25519 implementation does the scalar multiplications (same results)."""

    #: ``IPP_MB`` when it can run here, else ``OPENSSL``.
    AUTO = "auto"
    #: ``cryptography`` (OpenSSL), one point per call: everywhere, ~25 µs per point.
    OPENSSL = "openssl"
    #: Intel ``crypto_mb`` (PyPI ``ipp-crypto`` + ``intel-cmplr-lib-rt``), eight points per call
    #: with AVX-512 IFMA: ~4-7 µs per point.
    IPP_MB = "ipp-mb"


@dataclass(frozen=True)
class PsiOptions:
    """How ids are normalised and how the protocol runs. Every party must use the same values
    for the fields marked *agreed* (the leader checks them and names the party that differs).

    Parameters
    ----------
    strip:
        *Agreed.* Remove leading and trailing whitespace from every id (Unicode ``str.strip``).
    casefold:
        *Agreed.* Compare ids case-insensitively (Unicode ``str.casefold``).
    dedupe:
        Keep only the first row of an id that occurs more than once instead of failing with a
        :class:`~veil.errors.DataError` (the dropped rows are not in the output).
    receiver_only:
        *Agreed.* Only the leader (the first party) learns the intersection; the other parties
        learn nothing but the leader's set size, and write no aligned file.
    workers:
        Processes for the scalar multiplications (``None``: one per CPU core; 1: in-process).
    parallel_min_rows:
        Batches smaller than this are masked in-process (a process pool costs ~0.2 s to start).
    chunk_rows:
        Rows per message and per file chunk. Memory per chunk in flight is ``32·chunk_rows`` B.
    timeout:
        Seconds to wait for one message from a peer (``None``: the link's default).
    backend:
        X25519 implementation (:class:`Backend`); parties may use different ones.
    """

    strip: bool = True
    casefold: bool = False
    dedupe: bool = False
    receiver_only: bool = False
    workers: int | None = None
    parallel_min_rows: int = 40_000
    chunk_rows: int = 1 << 16
    timeout: float | None = 600.0
    backend: Backend = Backend.AUTO

    def __post_init__(self) -> None:
        if self.workers is not None and self.workers < 1:
            raise ConfigError(f"PsiOptions.workers must be >= 1 or None, got {self.workers}")
        if self.chunk_rows < 1:
            raise ConfigError(f"PsiOptions.chunk_rows must be >= 1, got {self.chunk_rows}")
        if self.parallel_min_rows < 0:
            raise ConfigError("PsiOptions.parallel_min_rows must be >= 0")

    def n_workers(self) -> int:
        """Worker processes to use."""
        return self.workers if self.workers is not None else max(1, os.cpu_count() or 1)

    def agreed(self, parties: tuple[str, ...]) -> dict[str, Any]:
        """The settings every party must share (sent in the hello, compared by the leader)."""
        return {
            "protocol": PROTOCOL,
            "compare_bytes": COMPARE_BYTES,
            "strip": self.strip,
            "casefold": self.casefold,
            "receiver_only": self.receiver_only,
            "parties": list(parties),
        }


@dataclass(frozen=True)
class PsiResult:
    """What one party got out of a PSI run.

    Attributes
    ----------
    party:
        This party.
    n_input:
        Rows read (before dropping duplicates).
    n_intersection:
        Size of the intersection, or ``None`` if this party learns nothing (receiver-only mode,
        not the leader).
    seconds:
        Wall time of the whole call (reading, protocol, writing).
    bytes_sent, bytes_received, messages_sent, messages_received:
        Traffic of this run with every peer (frame headers included).
    n_duplicates_dropped:
        Rows dropped by ``dedupe``.
    out_path:
        The aligned file written, or ``None``.
    stage_seconds:
        Wall time per stage: ``read`` (ids to digests), ``psi`` (the protocol), ``write``.
    backend:
        The X25519 implementation used (``"openssl"`` or ``"ipp-mb"``).
    peak_rss_mb, worker_peak_rss_mb:
        Peak resident memory (``VmHWM``, MB; 0 where unknown) of this process at the end of the
        call (it includes whatever the process held before) and of its largest worker.
    """

    party: str
    n_input: int
    n_intersection: int | None
    seconds: float
    bytes_sent: int
    bytes_received: int
    messages_sent: int
    messages_received: int
    n_duplicates_dropped: int = 0
    out_path: Path | None = None
    stage_seconds: dict[str, float] = field(default_factory=dict)
    backend: str = ""
    peak_rss_mb: float = 0.0
    worker_peak_rss_mb: float = 0.0

    def summary(self) -> dict[str, Any]:
        """A JSON-ready dict (for ``veil psi``'s summary file)."""
        return {
            "party": self.party,
            "n_input": self.n_input,
            "n_intersection": self.n_intersection,
            "seconds": round(self.seconds, 6),
            "bytes_sent": self.bytes_sent,
            "bytes_received": self.bytes_received,
            "messages_sent": self.messages_sent,
            "messages_received": self.messages_received,
            "n_duplicates_dropped": self.n_duplicates_dropped,
            "out_path": str(self.out_path) if self.out_path is not None else None,
            "stage_seconds": {k: round(v, 6) for k, v in self.stage_seconds.items()},
            "backend": self.backend,
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "worker_peak_rss_mb": round(self.worker_peak_rss_mb, 1),
        }

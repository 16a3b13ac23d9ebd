"""Links between parties: a small ABC, an in-memory twin and gRPC with mutual TLS."""

from veil.transport.base import Link, LinkStats
from veil.transport.memory import MemoryHub, MemoryLink

__all__ = ["Link", "LinkStats", "MemoryHub", "MemoryLink"]

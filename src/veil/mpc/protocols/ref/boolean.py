"""ref boolean: bitwise operations on the plaintext words."""

from __future__ import annotations

from typing import Any

import numpy as np


def and_words(x: np.ndarray[Any, Any], y: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Bitwise AND (the secure protocols' AND gate)."""
    out: np.ndarray[Any, Any] = np.bitwise_and(x, y)
    return out


__all__ = ["and_words"]

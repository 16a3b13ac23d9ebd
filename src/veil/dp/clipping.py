"""Per-client L2 clipping of model updates, and adaptive clipping (Andrew et al., NeurIPS 2021).

Clipping bounds what one client can move the aggregate by — the sensitivity every client-level
DP guarantee in :mod:`veil.dp.fedavg` and :mod:`veil.dp.distributed` rests on. It runs on the
client, on its own update, before encoding; it reveals nothing.

Adaptive clipping tracks a target quantile ``gamma`` of the update norms: every client also
contributes ``b_i - 1/2`` with ``b_i = [||update_i|| <= C]`` to a noisy sum (sensitivity 1/2),
and the aggregator moves the bound geometrically, ``C <- C exp(-eta (b_mean - gamma))``. The
bit sum is a second Gaussian release; Andrew et al. (Thm. 1) show that noising the update sum
with multiplier ``z_update`` and the bit sum with stddev ``sigma_b`` is exactly as private as one
Gaussian release with ``z = (z_update^-2 + (2 sigma_b)^-2)^-1/2``: so for a planned ``z``
(what the accountant sees) use :meth:`AdaptiveClipping.update_noise_multiplier`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from veil.errors import ConfigError, DataError


def l2_norm(update: ArrayLike | Sequence[ArrayLike]) -> float:
    """Global L2 norm of an array, or of a list of arrays taken as one flat vector."""
    parts = _parts(update)
    total = math.fsum(float(np.dot(p.ravel(), p.ravel())) for p in parts)
    return math.sqrt(total)


def _parts(update: ArrayLike | Sequence[ArrayLike]) -> list[np.ndarray]:
    if isinstance(update, list | tuple) and update and isinstance(update[0], np.ndarray):
        parts = [np.asarray(p, dtype=np.float64) for p in update]
    else:
        parts = [np.asarray(update, dtype=np.float64)]
    for p in parts:
        if not np.all(np.isfinite(p)):
            raise DataError("update contains NaN or infinity: it cannot be clipped or released")
    return parts


def _check_clip(clip_norm: float) -> float:
    c = float(clip_norm)
    if not math.isfinite(c) or c <= 0.0:
        raise ConfigError(f"clip_norm must be positive and finite, got {clip_norm}")
    return c


def clip_l2(update: ArrayLike, clip_norm: float) -> tuple[np.ndarray, float]:
    """Scale ``update`` to L2 norm at most ``clip_norm``.

    Returns
    -------
    (clipped, norm)
        A new float64 array ``update * min(1, clip_norm / norm)`` and the original norm.
    """
    c = _check_clip(clip_norm)
    arr = _parts(update)[0]
    norm = l2_norm(arr)
    factor = 1.0 if norm <= c else c / norm
    return arr * factor, norm


def clip_l2_list(update: Sequence[np.ndarray], clip_norm: float) -> tuple[list[np.ndarray], float]:
    """Clip a list of arrays (one model's parameters) by their *global* L2 norm."""
    c = _check_clip(clip_norm)
    parts = _parts(list(update))
    norm = l2_norm(parts)
    factor = 1.0 if norm <= c else c / norm
    return [p * factor for p in parts], norm


@dataclass(frozen=True)
class AdaptiveClipping:
    """Geometric quantile tracking of the clipping bound (Andrew et al. 2021).

    Parameters
    ----------
    target_quantile:
        ``gamma`` in (0, 1): fraction of updates that should be unclipped (0.5: the median).
    learning_rate:
        ``eta`` > 0 of the geometric update (0.2 in the paper).
    count_stddev:
        ``sigma_b``: stddev of the Gaussian noise on the sum of the bits (the paper suggests
        about ``expected_clients / 20``). Must exceed ``z / 2`` for the planned ``z``.
    """

    target_quantile: float = 0.5
    learning_rate: float = 0.2
    count_stddev: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 < float(self.target_quantile) < 1.0:
            raise ConfigError(f"target_quantile must be in (0, 1), got {self.target_quantile}")
        if not float(self.learning_rate) > 0.0:
            raise ConfigError(f"learning_rate must be positive, got {self.learning_rate}")
        if not float(self.count_stddev) > 0.0:
            raise ConfigError(f"count_stddev must be positive, got {self.count_stddev}")

    @staticmethod
    def client_bit(norm: float, clip_norm: float) -> float:
        """What a client adds to the bit sum: ``+1/2`` if unclipped, ``-1/2`` otherwise."""
        return 0.5 if float(norm) <= float(clip_norm) else -0.5

    def update_noise_multiplier(self, noise_multiplier: float) -> float:
        """``z_update = (z^-2 - (2 sigma_b)^-2)^-1/2`` so that the pair is as private as ``z``."""
        z = float(noise_multiplier)
        inv = z**-2 - (2.0 * float(self.count_stddev)) ** -2
        if not inv > 0.0:
            raise ConfigError(
                f"count_stddev {self.count_stddev} is too small for noise multiplier {z}: "
                f"adaptive clipping needs count_stddev > z / 2 = {z / 2:g}"
            )
        return float(inv**-0.5)

    def next_clip(self, clip_norm: float, noisy_bit_sum: float, expected_clients: float) -> float:
        """New bound from the noisy sum of ``client_bit`` values over ``expected_clients``.

        ``b_mean = noisy_bit_sum / expected_clients + 1/2`` estimates the unclipped fraction;
        ``C <- C exp(-eta (b_mean - gamma))``.
        """
        c = _check_clip(clip_norm)
        if not float(expected_clients) > 0.0:
            raise ConfigError(f"expected_clients must be positive, got {expected_clients}")
        b_mean = float(noisy_bit_sum) / float(expected_clients) + 0.5
        return c * math.exp(-float(self.learning_rate) * (b_mean - float(self.target_quantile)))


__all__ = ["AdaptiveClipping", "clip_l2", "clip_l2_list", "l2_norm"]

"""Distributed discrete Gaussian noise for secure aggregation (client-level DP without trust).

Each client clips its update to L2 norm ``C``, encodes it on the integer ring (``rint(s * x)``)
and adds its own discrete Gaussian noise ``N_Z(0, sigma_c^2)`` before masking; secure
aggregation reveals only the sum, which carries the noise of every honest client. No party —
the aggregator included — ever sees an un-noised sum or another client's noise.

Threat model
------------
The aggregator and up to ``max_colluding`` clients are semi-honest and may pool what they know;
colluding clients know their own noise, so only the ``n - max_colluding`` honest survivors'
noise counts. The per-client scale is fixed before the round so that the *fewest* honest
contributions a completed round can hold (``min_clients - max_colluding``, ``min_clients``
being the secure-aggregation threshold) already carry the target noise.

Exact guarantee (what is accounted, and why it is conservative)
---------------------------------------------------------------
The sum of ``m`` independent ``N_Z(0, sigma_c^2)`` is *not* a discrete Gaussian. Kairouz, Liu &
Steinke (ICML 2021, "The Distributed Discrete Gaussian Mechanism", Proposition 14) bound it: for
``sigma_c >= 1/2``, L2 sensitivity ``D`` (ring units) and dimension ``d``, adding the sum is
``(alpha, alpha * D^2 / (2 m sigma_c^2) + tau * d)``-RDP for every ``alpha >= 1`` with
``tau = 10 * sum_{k=1}^{m-1} exp(-2 pi^2 sigma_c^2 k / (k + 1))``. That is exactly
``dp_accounting.ZCDpEvent(rho=D^2 / (2 m sigma_c^2), xi=tau * d)``, which the RDP accountant
composes over rounds. It is an upper bound (conservative); ``tau`` is astronomically small for
the scales used here (``sigma_c`` is in ring units, typically >> 1).

* Sensitivity after rounding: ``||rint(s x)||_2 <= s C + sqrt(d) / 2`` (each coordinate moves
  by at most 1/2), so ``D = s C + sqrt(d) / 2`` — no randomised rounding is needed.
* No amplification by client sampling is claimed: the aggregator picks the sampled clients, so
  against it there is nothing secret about the sample. Ignoring sampling is valid (an upper
  bound) whatever sampling the FL loop does.
* Dropouts: accounting uses the actual number of honest survivors (``event(n_survivors)``);
  more survivors than the minimum only add noise.

Ring interplay
--------------
Values live in ``Z_{2^ring_bits}`` (``ring_bits = 64``: numpy ``uint64`` wrap-around). Only the
final sum must lie in ``(-2^(ring_bits-1), 2^(ring_bits-1))`` for its centred lift to decode:
``|sum_j| <= n (s C + 1/2) + T`` where ``T = sqrt(n) sigma_c sqrt(2 ln(2 d / beta))`` bounds the
noise of all ``d`` coordinates except with probability ``beta`` (the discrete Gaussian is
``sigma``-subgaussian, Canonne, Kamath & Steinke 2020). :meth:`DistributedNoise.check_headroom`
refuses a configuration whose bound does not fit.

Integer sums (e.g. per-variant allele counts summed over hospitals, unit = one patient) use
:meth:`DistributedNoise.for_integer_sums`: the data are already integers, so there is no
rounding term (``D`` is the per-unit L2 sensitivity itself) and the headroom uses an explicit
per-coordinate bound of one contribution instead of the clip norm.

Noise comes from OpenDP's exact discrete Gaussian sampler
(``opendp.measurements.make_gaussian(vector_domain(atom_domain(T="i64")), l2_distance(T="i64"),
scale=sigma_c)`` applied to zeros: integer addition is exact, so no floating-point concern). It
draws ~100k values/s on one core here, so a 10^6-parameter update costs ~10 s of noise per client.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from veil.dp import _deps
from veil.dp.accounting import calibrate_noise_multiplier, compose_epsilon
from veil.dp.spec import DPEventRecord, EventKind
from veil.errors import ConfigError, DataError, ProtocolError

#: Values drawn per OpenDP call (bounds the temporary Python list).
_CHUNK = 1 << 16


def kls_tau(n_summands: int, sigma: float) -> float:
    """``tau`` of Kairouz-Liu-Steinke Prop. 14.

    ``tau = 10 sum_{k=1}^{n-1} exp(-2 pi^2 sigma^2 k / (k + 1))``.
    """
    c = 2.0 * math.pi**2 * float(sigma) ** 2
    return 10.0 * math.fsum(math.exp(-c * k / (k + 1)) for k in range(1, int(n_summands)))


def discrete_gaussian(size: int, sigma: float) -> np.ndarray:
    """``size`` independent ``N_Z(0, sigma^2)`` draws (int64) from OpenDP's exact sampler."""
    dp = _deps.opendp()
    meas = dp.m.make_gaussian(
        dp.vector_domain(dp.atom_domain(T="i64")), dp.l2_distance(T="i64"), scale=float(sigma)
    )
    out = np.empty(int(size), dtype=np.int64)
    for start in range(0, out.size, _CHUNK):
        stop = min(out.size, start + _CHUNK)
        out[start:stop] = np.asarray(meas([0] * (stop - start)), dtype=np.int64)
    return out


def distributed_noise_multiplier(target_epsilon: float, delta: float, releases: int = 1) -> float:
    """Smallest ``z`` with ``releases`` x ``ZCDp(rho = 1 / (2 z^2))`` within ``target_epsilon``.

    The planning number for :class:`DistributedNoise` (RDP accountant, dp-accounting's
    calibration). The ``xi = tau d`` term of the exact event is omitted here: ``tau <= 10 (m - 1)
    exp(-pi^2 sigma_c^2)``, below ``1e-16 (m - 1)`` once the per-client stddev is 2 ring units
    (and 0.0 in float64 at the usual fixed-point scales); :meth:`DistributedNoise.event` reports
    the exact epsilon.
    """
    if int(releases) < 1:
        raise ConfigError(f"releases must be >= 1, got {releases}")
    dpa = _deps.dp_accounting()

    def make_event(z: float) -> Any:
        ev = dpa.ZCDpEvent(rho=1.0 / (2.0 * float(z) ** 2))
        return dpa.SelfComposedDpEvent(ev, int(releases)) if int(releases) > 1 else ev

    return calibrate_noise_multiplier(make_event, target_epsilon, delta, "rdp")


@dataclass(frozen=True)
class DistributedNoise:
    """Calibration and sampling of per-client discrete Gaussian noise on the secure-agg ring.

    Parameters
    ----------
    noise_multiplier:
        ``z``: standard deviation of the guaranteed total noise over the L2 sensitivity (ring
        units), as in DP-FedAvg: plan it with :func:`distributed_noise_multiplier` or
        ``dpfedavg_noise_multiplier(..., mode="distributed")``.
    clip_norm:
        ``C``: L2 bound of one client's update (real units); clip with
        :func:`veil.dp.clipping.clip_l2` first.
    scale:
        ``s``: ring units per real unit (the fixed-point factor of the secure aggregation).
    dimension:
        ``d``: number of coordinates of the flattened update.
    min_clients:
        Fewest contributions a completed round can hold (the secure-aggregation threshold).
    max_colluding:
        Clients that may collude with the aggregator (their noise does not count).
    ring_bits:
        The ring is ``Z_{2^ring_bits}``, ``1 <= ring_bits <= 64``.
    overflow_probability:
        ``beta`` of the headroom bound.
    integer_data:
        Set by :meth:`for_integer_sums`: contributions are integers, ``clip_norm`` is the L2
        sensitivity of one unit (in ring units) and ``value_bound`` bounds a contribution's
        coordinates for the headroom.
    value_bound:
        Per-coordinate bound of one contribution (``integer_data`` only).
    """

    noise_multiplier: float
    clip_norm: float
    scale: float
    dimension: int
    min_clients: int
    max_colluding: int = 0
    ring_bits: int = 64
    overflow_probability: float = 2.0**-40
    integer_data: bool = False
    value_bound: float | None = None

    @classmethod
    def for_integer_sums(
        cls,
        noise_multiplier: float,
        l2_sensitivity: float,
        value_bound: float,
        dimension: int,
        min_clients: int,
        max_colluding: int = 0,
        ring_bits: int = 64,
    ) -> DistributedNoise:
        """Noise for secure sums of integer vectors (counts), no fixed-point scaling.

        Parameters
        ----------
        l2_sensitivity:
            How much one unit of privacy (e.g. one patient) can move the summed vector, in L2.
        value_bound:
            Bound on ``|x_j|`` of any one party's contribution (for the ring headroom).
        """
        return cls(
            noise_multiplier=noise_multiplier,
            clip_norm=l2_sensitivity,
            scale=1.0,
            dimension=dimension,
            min_clients=min_clients,
            max_colluding=max_colluding,
            ring_bits=ring_bits,
            integer_data=True,
            value_bound=value_bound,
        )

    def __post_init__(self) -> None:
        for name in ("noise_multiplier", "clip_norm", "scale", "overflow_probability"):
            value = float(getattr(self, name))
            if not math.isfinite(value) or value <= 0.0:
                raise ConfigError(f"DistributedNoise.{name} must be positive and finite")
        if int(self.dimension) < 1:
            raise ConfigError(f"DistributedNoise.dimension must be >= 1, got {self.dimension}")
        if not 0 <= int(self.max_colluding) < int(self.min_clients):
            raise ConfigError(
                f"need 0 <= max_colluding ({self.max_colluding}) < min_clients "
                f"({self.min_clients}): at least one honest client must add noise"
            )
        if self.integer_data and (
            self.scale != 1.0 or self.value_bound is None or not float(self.value_bound) >= 0.0
        ):
            raise ConfigError("integer sums need scale=1 and a value_bound >= 0")
        if not 1 <= int(self.ring_bits) <= 64:
            raise ConfigError(f"ring_bits must be in [1, 64], got {self.ring_bits}")
        if self.client_stddev < 0.5:
            raise ConfigError(
                f"per-client discrete Gaussian stddev {self.client_stddev:.3g} < 1/2 ring unit: "
                "the distributed-noise guarantee needs sigma >= 1/2; increase `scale`"
            )

    # -- calibration -----------------------------------------------------------------------

    @property
    def sensitivity(self) -> float:
        """L2 sensitivity in ring units: ``s C + sqrt(d)/2`` (``C`` for integer data)."""
        if self.integer_data:
            return float(self.clip_norm)
        return self.scale * self.clip_norm + math.sqrt(self.dimension) / 2.0

    @property
    def target_stddev(self) -> float:
        """Standard deviation (ring units) the fewest honest survivors' noise reaches."""
        return self.noise_multiplier * self.sensitivity

    @property
    def client_stddev(self) -> float:
        """``sigma_c``: stddev (ring units) each client adds."""
        honest = int(self.min_clients) - int(self.max_colluding)
        return self.target_stddev / math.sqrt(honest)

    def sum_stddev(self, n_clients: int) -> float:
        """Stddev (ring units) of the noise in a sum of ``n_clients`` contributions."""
        return math.sqrt(int(n_clients)) * self.client_stddev

    # -- sampling and encoding -------------------------------------------------------------

    def client_noise(
        self,
        shape: int | tuple[int, ...],
        n_clients: int | None = None,
        *,
        rng_seed: int | None = None,
    ) -> np.ndarray:
        """One client's noise: int64 ``N_Z(0, sigma_c^2)`` of ``shape``, to add on the ring.

        Parameters
        ----------
        shape:
            Shape of the encoded update (its size must equal ``dimension``).
        n_clients:
            Clients selected this round, if known: refused when below ``min_clients`` (no round
            with fewer contributions can complete, so the calibration would not hold).
        rng_seed:
            Not supported: OpenDP's sampler draws from the OS CSPRNG and cannot be seeded, on
            purpose (seeded DP noise is predictable noise). Passing one raises.

        Returns
        -------
        numpy.ndarray
            int64 noise; add it to the encoded update modulo ``2^ring_bits`` (for 64 bits,
            ``view(np.uint64)`` and add: wrap-around is the ring).
        """
        if rng_seed is not None:
            raise ConfigError(
                "DistributedNoise draws from OpenDP's CSPRNG, which cannot be seeded: "
                "drop rng_seed (seeded privacy noise would be predictable)"
            )
        if n_clients is not None and int(n_clients) < int(self.min_clients):
            raise ConfigError(
                f"round has {n_clients} clients, fewer than min_clients={self.min_clients} that "
                "the distributed noise was calibrated for"
            )
        shp = (int(shape),) if isinstance(shape, int | np.integer) else tuple(int(s) for s in shape)
        size = math.prod(shp)
        if size != int(self.dimension):
            raise ConfigError(
                f"noise shape {shp} has {size} coordinates, configured dimension is "
                f"{self.dimension}"
            )
        return discrete_gaussian(size, self.client_stddev).reshape(shp)

    def encode(self, update: ArrayLike) -> np.ndarray:
        """``rint(scale * update)`` as int64, after checking ``||update||_2 <= clip_norm``.

        For integer data: the values themselves, after checking they are integers within
        ``value_bound``.
        """
        arr = np.asarray(update, dtype=np.float64)
        if arr.size != int(self.dimension):
            raise DataError(f"update has {arr.size} coordinates, expected {self.dimension}")
        if not np.all(np.isfinite(arr)):
            raise DataError("update contains NaN or infinity: it cannot be encoded")
        if self.integer_data:
            bound = float(self.value_bound or 0.0)
            if np.any(arr != np.rint(arr)) or np.any(np.abs(arr) > bound):
                raise DataError(f"integer-sum contribution must be integers within +-{bound:g}")
            return arr.astype(np.int64)
        norm = float(np.linalg.norm(arr.ravel()))
        if norm > self.clip_norm * (1.0 + 1e-9):
            raise DataError(
                f"update L2 norm {norm:.6g} exceeds clip_norm {self.clip_norm:g}: clip it with "
                "veil.dp.clipping.clip_l2 before encoding"
            )
        return np.rint(arr * self.scale).astype(np.int64)

    def to_ring(self, values: np.ndarray) -> np.ndarray:
        """int64 values reduced into the ring as uint64 (``mod 2^ring_bits``)."""
        ring = np.asarray(values, dtype=np.int64).view(np.uint64)
        if int(self.ring_bits) == 64:
            return ring.copy()
        return ring & np.uint64((1 << int(self.ring_bits)) - 1)

    def decode(self, ring_sum: np.ndarray) -> np.ndarray:
        """Centred lift of a ring sum (uint64 or int64) divided by ``scale`` (float64)."""
        bits = int(self.ring_bits)
        raw = np.asarray(ring_sum)
        if raw.dtype == np.int64:
            raw = raw.view(np.uint64)
        u = raw.astype(np.uint64, copy=False)
        if bits < 64:
            u = u & np.uint64((1 << bits) - 1)
            half = np.uint64(1 << (bits - 1))
            signed = u.astype(np.int64) - np.where(u >= half, np.int64(1 << bits), np.int64(0))
        else:
            signed = u.view(np.int64)
        return signed.astype(np.float64) / self.scale

    # -- headroom --------------------------------------------------------------------------

    def headroom_bound(self, n_clients: int) -> float:
        """Bound on ``|sum_j|`` in ring units, exceeded with probability <= overflow_probability."""
        n = int(n_clients)
        if self.integer_data:
            data = n * float(self.value_bound or 0.0)
        else:
            data = n * (self.scale * self.clip_norm + 0.5)
        tail = self.sum_stddev(n) * math.sqrt(
            2.0 * math.log(2.0 * self.dimension / self.overflow_probability)
        )
        return data + tail

    def check_headroom(self, n_clients: int) -> float:
        """Raise :class:`ConfigError` if a sum over ``n_clients`` may wrap; return the bound."""
        bound = self.headroom_bound(n_clients)
        limit = float(2 ** (int(self.ring_bits) - 1) - 1)
        if not bound < limit:
            raise ConfigError(
                f"a sum of {n_clients} clipped updates plus noise may reach {bound:.3g} ring "
                f"units, beyond the {self.ring_bits}-bit ring's {limit:.3g}: lower `scale` or "
                "`clip_norm`, or use a larger ring"
            )
        return bound

    # -- accounting ------------------------------------------------------------------------

    def event(
        self, n_survivors: int, delta: float, rounds: int = 1, *, unit: str = "client"
    ) -> DPEventRecord:
        """The accounted event of ``rounds`` rounds whose sums held ``n_survivors`` clients.

        ``ZCDpEvent(rho = D^2 / (2 m sigma_c^2), xi = tau(m, sigma_c) d)`` with ``m =
        n_survivors - max_colluding`` (Kairouz-Liu-Steinke Prop. 14); its epsilon at ``delta``
        from dp-accounting's RDP accountant.
        """
        honest = int(n_survivors) - int(self.max_colluding)
        if int(n_survivors) < int(self.min_clients):
            raise ProtocolError(
                f"a sum of {n_survivors} survivors is below min_clients={self.min_clients}: "
                "it must not have been released"
            )
        sigma = self.client_stddev
        rho = self.sensitivity**2 / (2.0 * honest * sigma**2)
        xi = kls_tau(honest, sigma) * int(self.dimension)
        base = DPEventRecord(
            kind=EventKind.ZCDP,
            mechanism="distributed-discrete-gaussian",
            epsilon=float("nan"),
            delta=float(delta),
            sensitivity=self.sensitivity,
            noise_scale=math.sqrt(honest) * sigma,
            noise_multiplier=math.sqrt(honest) * sigma / self.sensitivity,
            shape=(int(self.dimension),),
            count=int(rounds),
            rho=rho,
            xi=xi,
            query="secure-aggregation-sum",
            unit=unit,
            extra=(
                ("n_survivors", int(n_survivors)),
                ("max_colluding", int(self.max_colluding)),
                ("client_stddev", sigma),
                ("scale", float(self.scale)),
                ("clip_norm", float(self.clip_norm)),
                ("ring_bits", int(self.ring_bits)),
            ),
        )
        eps = compose_epsilon([base], float(delta), "rdp")
        return replace(base, epsilon=eps)


__all__ = ["DistributedNoise", "discrete_gaussian", "distributed_noise_multiplier", "kls_tau"]

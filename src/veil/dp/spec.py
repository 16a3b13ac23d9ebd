"""Immutable descriptions of differentially private releases.

Two frozen dataclasses, read by everything else in :mod:`veil.dp`:

* :class:`DPSpec` — what the caller asks for: a mechanism, a target ``(epsilon, delta)`` and the
  sensitivity of the query (given directly, or derived from explicit bounds by the
  ``count``/``sum``/``mean``/``histogram`` constructors).
* :class:`DPEventRecord` — what actually happened: the mechanism, its noise scale, the shape of
  the released value and the parameters an accountant needs. :meth:`DPEventRecord.to_dict` is the
  plain-JSON form written to the audit ledger; :func:`veil.dp.accounting.to_dp_event` turns it
  into a ``dp_accounting`` event (STYLE 13: DP as immutable event data read by accountants).

Sensitivities are stated for a *unit of privacy* (``unit``: one record, one client) and a
neighbouring relation (``neighbouring``): ``add_remove`` (a neighbour has one unit more or less)
or ``replace`` (a neighbour has one unit changed; used by :meth:`DPSpec.mean`, whose ``n`` is
public). Bounds are a promise: the data owner must clamp each unit's contribution to them
*before* aggregation (:func:`veil.dp.mechanisms.clamp`); a release cannot clamp an aggregate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from veil.errors import ConfigError, DataError


class Mechanism(StrEnum):
    """Additive noise mechanisms for a single release."""

    LAPLACE = "laplace"  # pure epsilon-DP, noise scale from the L1 sensitivity
    GAUSSIAN = "gaussian"  # (epsilon, delta)-DP, noise scale from the L2 sensitivity


class Neighbouring(StrEnum):
    """Which datasets count as neighbours for a stated sensitivity."""

    ADD_REMOVE = "add_remove"
    REPLACE = "replace"


class EventKind(StrEnum):
    """How an accountant must read a :class:`DPEventRecord`."""

    LAPLACE = "laplace"  # Laplace(noise_multiplier), pure DP
    GAUSSIAN = "gaussian"  # Gaussian(noise_multiplier)
    SUBSAMPLED_GAUSSIAN = "subsampled_gaussian"  # Poisson(sampling_rate) then Gaussian
    ZCDP = "zcdp"  # (xi, rho)-zCDP: RDP(alpha) <= xi + rho * alpha (RDP accountant only)


def _check_positive(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value) or value <= 0.0:
        raise ConfigError(f"DP parameter {name} must be a positive finite number, got {value!r}")
    return value


@dataclass(frozen=True)
class DPSpec:
    """A request for one differentially private release.

    Parameters
    ----------
    mechanism:
        :attr:`Mechanism.LAPLACE` (requires ``delta == 0``) or :attr:`Mechanism.GAUSSIAN`
        (requires ``0 < delta < 1``).
    epsilon, delta:
        The target guarantee of this release alone.
    sensitivity:
        The query's sensitivity in the units of the released value: the L1 norm for Laplace, the
        L2 norm for Gaussian (for a scalar both are the absolute change).
    query:
        A label for the ledger ("count", "sum", "mean", "histogram", or the caller's own).
    unit, neighbouring:
        The unit of privacy and the neighbouring relation the sensitivity was derived for.
    shape:
        The shape of the value the sensitivity was computed for (``None``: any shape, e.g. a
        histogram); :func:`veil.dp.release` refuses a value of another shape.
    """

    mechanism: Mechanism
    epsilon: float
    delta: float = 0.0
    sensitivity: float = 1.0
    query: str = "custom"
    unit: str = "record"
    neighbouring: Neighbouring = Neighbouring.ADD_REMOVE
    shape: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "mechanism", Mechanism(self.mechanism))
        object.__setattr__(self, "neighbouring", Neighbouring(self.neighbouring))
        if self.shape is not None:
            object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        _check_positive("epsilon", self.epsilon)
        _check_positive("sensitivity", self.sensitivity)
        delta = float(self.delta)
        if self.mechanism is Mechanism.LAPLACE and delta != 0.0:
            raise ConfigError(
                f"the Laplace mechanism is pure epsilon-DP: set delta=0 (got {delta}) "
                "or choose mechanism='gaussian'"
            )
        if self.mechanism is Mechanism.GAUSSIAN and not 0.0 < delta < 1.0:
            raise ConfigError(f"the Gaussian mechanism needs 0 < delta < 1, got delta={delta}")

    # -- constructors deriving the sensitivity from explicit bounds -------------------------

    @classmethod
    def count(cls, epsilon: float, delta: float = 0.0, *, unit: str = "record") -> DPSpec:
        """A count where each unit contributes at most 1 (add/remove: sensitivity 1)."""
        return cls(_default_mechanism(delta), epsilon, delta, 1.0, "count", unit, shape=())

    @classmethod
    def histogram(cls, epsilon: float, delta: float = 0.0, *, unit: str = "record") -> DPSpec:
        """Bin counts where each unit falls in exactly one bin (add/remove: L1 = L2 = 1)."""
        return cls(_default_mechanism(delta), epsilon, delta, 1.0, "histogram", unit)

    @classmethod
    def sum(
        cls,
        epsilon: float,
        lower: ArrayLike,
        upper: ArrayLike,
        delta: float = 0.0,
        *,
        shape: tuple[int, ...] = (),
        unit: str = "record",
    ) -> DPSpec:
        """A sum (of shape ``shape``) of per-unit contributions clamped to ``[lower, upper]``.

        The bounds broadcast to ``shape``. Under add/remove a unit changes coordinate ``j`` by at
        most ``max(|lower_j|, |upper_j|)``; the L1 / L2 sensitivity is the L1 / L2 norm of that
        vector.
        """
        lo, hi = _bounds(lower, upper, shape)
        per_coord = np.maximum(np.abs(lo), np.abs(hi))
        mech = _default_mechanism(delta)
        sens = _norm(per_coord, mech)
        return cls(mech, epsilon, delta, sens, "sum", unit, shape=tuple(shape))

    @classmethod
    def mean(
        cls,
        epsilon: float,
        lower: ArrayLike,
        upper: ArrayLike,
        n: int,
        delta: float = 0.0,
        *,
        shape: tuple[int, ...] = (),
        unit: str = "record",
    ) -> DPSpec:
        """A mean (of shape ``shape``) over a *public* number ``n`` of clamped units.

        ``n`` being public, neighbours differ by replacing one unit: coordinate ``j`` moves by at
        most ``(upper_j - lower_j) / n``.
        """
        if int(n) < 1:
            raise ConfigError(f"a DP mean needs a public count n >= 1, got {n}")
        lo, hi = _bounds(lower, upper, shape)
        mech = _default_mechanism(delta)
        sens = _norm((hi - lo) / int(n), mech)
        return cls(mech, epsilon, delta, sens, "mean", unit, Neighbouring.REPLACE, tuple(shape))


def _default_mechanism(delta: float) -> Mechanism:
    return Mechanism.LAPLACE if float(delta) == 0.0 else Mechanism.GAUSSIAN


def _bounds(
    lower: ArrayLike, upper: ArrayLike, shape: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    try:
        lo = np.broadcast_to(np.asarray(lower, dtype=np.float64), shape)
        hi = np.broadcast_to(np.asarray(upper, dtype=np.float64), shape)
    except ValueError:
        raise ConfigError(f"DP bounds do not broadcast to the value's shape {shape}") from None
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
        raise ConfigError("DP bounds must be finite numbers")
    if np.any(hi < lo):
        raise ConfigError("DP bounds need lower <= upper in every coordinate")
    return lo, hi


def _norm(per_coord: np.ndarray, mechanism: Mechanism) -> float:
    if mechanism is Mechanism.LAPLACE:
        return float(np.sum(per_coord))
    return float(np.sqrt(np.sum(per_coord * per_coord)))


@dataclass(frozen=True)
class DPEventRecord:
    """One accounted DP event: a release, a training round, or a whole run of steps.

    Attributes
    ----------
    kind:
        How an accountant reads it (:class:`EventKind`).
    mechanism:
        Human-readable mechanism name for the ledger ("laplace", "gaussian", "dpfedavg-central",
        "distributed-discrete-gaussian", "dp-sgd", ...).
    epsilon, delta:
        The guarantee of this event alone (``epsilon`` at ``delta``), as computed when it was made.
    sensitivity:
        Sensitivity the noise was calibrated to (L1 for Laplace, L2 otherwise), in the units of
        the released value (ring units for distributed noise).
    noise_scale:
        Laplace scale ``b`` or Gaussian standard deviation ``sigma`` of the total noise.
    noise_multiplier:
        ``noise_scale / sensitivity`` as an accountant reads it.
    shape:
        Shape of the released array (``()`` for a scalar).
    count:
        Number of identical compositions this record stands for (rounds, steps).
    sampling_rate:
        Poisson sampling probability (1.0 = no sampling).
    rho, xi:
        zCDP parameters for :attr:`EventKind.ZCDP` (zero otherwise).
    query, unit, neighbouring:
        Labels copied from the request.
    """

    kind: EventKind
    mechanism: str
    epsilon: float
    delta: float
    sensitivity: float
    noise_scale: float
    noise_multiplier: float
    shape: tuple[int, ...] = ()
    count: int = 1
    sampling_rate: float = 1.0
    rho: float = 0.0
    xi: float = 0.0
    query: str = "custom"
    unit: str = "record"
    neighbouring: Neighbouring = Neighbouring.ADD_REMOVE
    extra: tuple[tuple[str, float | int | str], ...] = field(default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", EventKind(self.kind))
        object.__setattr__(self, "neighbouring", Neighbouring(self.neighbouring))
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        if int(self.count) < 1:
            raise ConfigError(f"a DP event must compose at least once, got count={self.count}")
        if not 0.0 < float(self.sampling_rate) <= 1.0:
            raise ConfigError(f"sampling_rate must be in (0, 1], got {self.sampling_rate}")

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form for the audit ledger (str, float, int, list, dict only)."""
        out: dict[str, Any] = {
            "kind": str(self.kind),
            "mechanism": self.mechanism,
            "epsilon": float(self.epsilon),
            "delta": float(self.delta),
            "sensitivity": float(self.sensitivity),
            "noise_scale": float(self.noise_scale),
            "noise_multiplier": float(self.noise_multiplier),
            "shape": list(self.shape),
            "count": int(self.count),
            "sampling_rate": float(self.sampling_rate),
            "query": self.query,
            "unit": self.unit,
            "neighbouring": str(self.neighbouring),
        }
        if self.kind is EventKind.ZCDP:
            out["rho"] = float(self.rho)
            out["xi"] = float(self.xi)
        if self.extra:
            out["extra"] = {k: v for k, v in self.extra}
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DPEventRecord:
        """Rebuild a record from :meth:`to_dict` output or a budget ledger entry.

        The keys a :class:`~veil.dp.budget.PrivacyBudget` adds to a ledger entry
        (``epsilon_spent``, ``epsilon_budget``, ``delta_budget``, ``accountant``,
        ``release_index``) are ignored; any other unknown key is an error.
        """
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known - _LEDGER_KEYS
        if unknown:
            raise DataError(f"DP event record has unknown fields {sorted(unknown)}")
        try:
            kwargs: dict[str, Any] = {k: data[k] for k in known if k in data and k != "extra"}
            kwargs["shape"] = tuple(int(x) for x in data.get("shape", ()))
            kwargs["extra"] = tuple(dict(data.get("extra", {})).items())
            return cls(**kwargs)
        except (TypeError, ValueError) as exc:
            raise DataError(f"malformed DP event record: {exc}") from exc


#: Keys :meth:`veil.dp.budget.PrivacyBudget.spend` adds to a record's dict.
_LEDGER_KEYS = frozenset(
    {"epsilon_spent", "epsilon_budget", "delta_budget", "accountant", "release_index"}
)

"""A job's privacy budget: refuses any release that would exceed it.

:class:`PrivacyBudget` keeps the list of recorded :class:`~veil.dp.spec.DPEventRecord` and, for
every check, composes *all* of them plus the candidate through a fresh dp-accounting accountant
(identical events grouped with a count, see :mod:`veil.dp.accounting`). Spending is
all-or-nothing: :meth:`PrivacyBudget.spend` either records the event and returns its ledger
entry, or raises :class:`~veil.errors.PrivacyBudgetExceeded` and records nothing.

The budget is per unit of privacy: every event must use the budget's ``unit`` (e.g. "record"
for statistics over patients, "client" for DP-FedAvg); mixing units in one budget is refused,
because the composed number would mean nothing.

Thread-safe (a lock around check-and-record); it holds no secret and never leaves its party.
"""

from __future__ import annotations

import math
import threading
from typing import Any

from veil.dp.accounting import AccountantKind, compose_epsilon
from veil.dp.spec import DPEventRecord
from veil.errors import ConfigError, DataError, PrivacyBudgetExceeded

#: Relative slack when comparing a composed epsilon with the budget (float noise of accountants).
_RTOL = 1e-9


class PrivacyBudget:
    """A total ``(epsilon, delta)`` guarantee that the releases of a job may not exceed.

    Parameters
    ----------
    epsilon:
        Total epsilon allowed (> 0).
    delta:
        The delta at which the composed epsilon is evaluated, in ``[0, 1)``. With ``delta == 0``
        only pure (Laplace) releases can be afforded.
    accountant:
        ``"rdp"`` (fast, slightly loose; needed for distributed discrete Gaussian noise) or
        ``"pld"`` (tight, slower).
    unit:
        The unit of privacy every recorded event must protect.
    """

    def __init__(
        self,
        epsilon: float,
        delta: float,
        accountant: AccountantKind | str = AccountantKind.RDP,
        *,
        unit: str | None = None,
    ) -> None:
        epsilon = float(epsilon)
        delta = float(delta)
        if not math.isfinite(epsilon) or epsilon <= 0.0:
            raise ConfigError(f"privacy budget epsilon must be positive and finite, got {epsilon}")
        if not 0.0 <= delta < 1.0:
            raise ConfigError(f"privacy budget delta must be in [0, 1), got {delta}")
        try:
            self._accountant = AccountantKind(accountant)
        except ValueError:
            raise ConfigError(f"unknown accountant {accountant!r}: use 'rdp' or 'pld'") from None
        self._epsilon = epsilon
        self._delta = delta
        self._unit = unit
        self._events: list[DPEventRecord] = []
        self._spent_epsilon = 0.0
        self._lock = threading.Lock()

    @property
    def epsilon(self) -> float:
        """Total epsilon of the budget."""
        return self._epsilon

    @property
    def delta(self) -> float:
        """Delta of the budget."""
        return self._delta

    @property
    def accountant(self) -> AccountantKind:
        """The accountant composing the events."""
        return self._accountant

    @property
    def events(self) -> tuple[DPEventRecord, ...]:
        """Events spent so far, in order."""
        with self._lock:
            return tuple(self._events)

    def _candidate_epsilon(self, event: DPEventRecord) -> float:
        if self._unit is not None and event.unit != self._unit:
            raise ConfigError(
                f"DP event protects unit {event.unit!r} but this budget is per {self._unit!r}; "
                "use one PrivacyBudget per unit of privacy"
            )
        return compose_epsilon([*self._events, event], self._delta, self._accountant)

    def _refuse_if_over(self, event: DPEventRecord, total: float) -> None:
        if not total <= self._epsilon * (1.0 + _RTOL):
            raise PrivacyBudgetExceeded(
                f"{event.mechanism} release ({event.query}, epsilon {event.epsilon:.4g} alone) "
                f"would bring the spent epsilon from {self._spent_epsilon:.4g} to {total:.4g} at "
                f"delta={self._delta:g} ({self._accountant} accountant), over the budget of "
                f"{self._epsilon:g}: nothing was released; add noise, release less, or raise the "
                "budget"
            )

    def check(self, event: DPEventRecord) -> float:
        """Return the total epsilon if ``event`` were spent; raise if it would exceed the budget.

        Raises
        ------
        PrivacyBudgetExceeded
            When the composed epsilon would exceed the budget (nothing is recorded).
        """
        with self._lock:
            total = self._candidate_epsilon(event)
            self._refuse_if_over(event, total)
            return total

    def spend(self, event: DPEventRecord) -> dict[str, Any]:
        """Record ``event`` if it fits and return its ledger entry (plain JSON dict).

        The entry is ``event.to_dict()`` plus ``epsilon_spent`` (total after this event),
        ``epsilon_budget``, ``delta_budget``, ``accountant`` and ``release_index``.

        Raises
        ------
        PrivacyBudgetExceeded
            When the composed epsilon would exceed the budget; nothing is recorded.
        """
        with self._lock:
            total = self._candidate_epsilon(event)
            self._refuse_if_over(event, total)
            self._events.append(event)
            self._spent_epsilon = total
            entry = event.to_dict()
            entry.update(
                epsilon_spent=total,
                epsilon_budget=self._epsilon,
                delta_budget=self._delta,
                accountant=str(self._accountant),
                release_index=len(self._events) - 1,
            )
            return entry

    def spent(self) -> tuple[float, float]:
        """``(epsilon, delta)`` spent so far: epsilon of all events composed at the budget's delta.

        ``(0.0, 0.0)`` before any release.
        """
        with self._lock:
            if not self._events:
                return 0.0, 0.0
            return self._spent_epsilon, self._delta

    def state(self) -> dict[str, Any]:
        """Plain-JSON state for a checkpoint: restore it with :meth:`from_state` on resume.

        A job that resumes after a crash must restore its budget, not start a fresh one:
        otherwise the epsilon already spent would be forgotten.
        """
        with self._lock:
            return {
                "epsilon": self._epsilon,
                "delta": self._delta,
                "accountant": str(self._accountant),
                "unit": self._unit,
                "events": [e.to_dict() for e in self._events],
            }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> PrivacyBudget:
        """Rebuild a budget from :meth:`state`; the events are re-composed and re-checked."""
        try:
            budget = cls(
                state["epsilon"], state["delta"], state["accountant"], unit=state.get("unit")
            )
            events = [DPEventRecord.from_dict(e) for e in state["events"]]
        except (KeyError, TypeError) as exc:
            raise DataError(f"malformed privacy-budget checkpoint: {exc}") from exc
        if events:
            total = compose_epsilon(events, budget.delta, budget.accountant)
            if not total <= budget.epsilon * (1.0 + _RTOL):
                raise DataError(
                    f"privacy-budget checkpoint records epsilon {total:.4g}, over its own budget "
                    f"{budget.epsilon:g}: the checkpoint is corrupt or was edited"
                )
            budget._events = events
            budget._spent_epsilon = total
        return budget

    def remaining(self) -> float:
        """Epsilon left before the budget is exhausted (composition is not additive: indicative)."""
        return max(0.0, self._epsilon - self.spent()[0])

    def __repr__(self) -> str:
        eps, _ = self.spent()
        return (
            f"PrivacyBudget(epsilon={self._epsilon:g}, delta={self._delta:g}, "
            f"accountant={str(self._accountant)!r}, spent={eps:.4g}, events={len(self._events)})"
        )


__all__ = ["PrivacyBudget"]

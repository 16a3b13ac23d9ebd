"""The reveal policy: what may be revealed to whom.

Every ``ctx.reveal`` and plaintext move is checked against the policy of the party executing it
*before* any byte leaves, and the decision is written to the audit ledger. In a deployment each
institution's node enforces its own policy on the reveals it takes part in: a party whose policy
refuses raises :class:`veil.errors.RevealDenied` and sends nothing, so the value is not opened.

A policy is an ordered list of rules and a default. The first rule that matches a request decides
it. A request is described by:

* ``tag`` — a name the job gives the value (``"model.weights"``, ``"metrics.auc"``); untagged
  reveals have tag ``"untagged"``;
* ``to`` — the recipient parties;
* ``kind`` — where the value lives: ``"plain"`` (a party's plaintext), ``"mpc"``, ``"he"``,
  ``"tee"``.

A rule matches when its tag glob matches, every recipient is in its ``to`` set (``"*"`` = any),
and the kind is in its kinds (``"*"`` = any).

The default policy allows what the job asks (the job is the program all parties agreed to run)
and records it; institutions narrow it with rules, e.g. ``RevealPolicy.deny_all().allow(
"model.*", to=["bank"]).allow("metrics.*")``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from veil.errors import ConfigError


class Effect(StrEnum):
    """What a rule does with a matching request."""

    ALLOW = "allow"
    DENY = "deny"


@dataclass(frozen=True)
class Rule:
    """One policy rule (see module docstring for matching)."""

    effect: Effect
    tag: str = "*"
    to: frozenset[str] | None = None  # None = any recipient
    kinds: frozenset[str] | None = None  # None = any kind

    def matches(self, tag: str, to: Sequence[str], kind: str) -> bool:
        if not fnmatch.fnmatchcase(tag, self.tag):
            return False
        if self.to is not None and not set(to) <= self.to:
            return False
        return self.kinds is None or kind in self.kinds

    def describe(self) -> str:
        to = "any party" if self.to is None else ",".join(sorted(self.to))
        kinds = "any kind" if self.kinds is None else ",".join(sorted(self.kinds))
        return f"{self.effect.value} tag={self.tag!r} to={to} kind={kinds}"


@dataclass(frozen=True)
class Decision:
    """The outcome of a policy check, with the rule that decided it."""

    allowed: bool
    reason: str


@dataclass(frozen=True)
class RevealPolicy:
    """Ordered rules + default effect. Immutable: ``allow``/``deny`` return new policies."""

    rules: tuple[Rule, ...] = ()
    default: Effect = Effect.ALLOW
    name: str = "default (allow what the job asks, record everything)"

    @classmethod
    def allow_all(cls) -> RevealPolicy:
        return cls()

    @classmethod
    def deny_all(cls) -> RevealPolicy:
        return cls(default=Effect.DENY, name="deny unless a rule allows")

    def _with(self, rule: Rule) -> RevealPolicy:
        return RevealPolicy((*self.rules, rule), self.default, self.name)

    def allow(
        self, tag: str = "*", *, to: Iterable[str] | None = None, kinds: Iterable[str] | None = None
    ) -> RevealPolicy:
        """A copy with a rule allowing ``tag`` to ``to`` (any when ``None``)."""
        return self._with(_rule(Effect.ALLOW, tag, to, kinds))

    def deny(
        self, tag: str = "*", *, to: Iterable[str] | None = None, kinds: Iterable[str] | None = None
    ) -> RevealPolicy:
        """A copy with a rule denying ``tag`` to ``to`` (any when ``None``)."""
        return self._with(_rule(Effect.DENY, tag, to, kinds))

    def check(self, tag: str, to: Sequence[str], kind: str) -> Decision:
        """Decide a request. Never raises; the caller records and enforces the decision."""
        for rule in self.rules:
            if rule.matches(tag, to, kind):
                return Decision(rule.effect is Effect.ALLOW, f"rule: {rule.describe()}")
        return Decision(self.default is Effect.ALLOW, f"policy default: {self.default.value}")

    def to_mapping(self) -> dict[str, Any]:
        """The ``[policy]`` table of a cluster config (inverse of :meth:`from_mapping`)."""
        rules = []
        for r in self.rules:
            entry: dict[str, Any] = {"effect": r.effect.value, "tag": r.tag}
            if r.to is not None:
                entry["to"] = sorted(r.to)
            if r.kinds is not None:
                entry["kinds"] = sorted(r.kinds)
            rules.append(entry)
        return {"default": self.default.value, "rule": rules}

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str = "policy") -> RevealPolicy:
        """Build from the ``[policy]`` table of a cluster config.

        ``default = "allow"|"deny"`` and ``[[policy.rule]]`` entries with ``effect``, ``tag``,
        optional ``to`` (list of parties) and ``kinds`` (list).
        """
        try:
            default = Effect(str(data.get("default", "allow")))
        except ValueError:
            raise ConfigError(f"{source}: default must be 'allow' or 'deny'") from None
        rules = []
        for i, r in enumerate(data.get("rule", [])):
            if not isinstance(r, Mapping):
                raise ConfigError(f"{source}: rule {i} must be a table")
            try:
                effect = Effect(str(r["effect"]))
            except (KeyError, ValueError):
                raise ConfigError(f"{source}: rule {i} needs effect = 'allow' or 'deny'") from None
            rules.append(_rule(effect, str(r.get("tag", "*")), r.get("to"), r.get("kinds")))
        return cls(tuple(rules), default, name=f"{source} ({len(rules)} rules)")


def _rule(effect: Effect, tag: str, to: Iterable[str] | None, kinds: Iterable[str] | None) -> Rule:
    if isinstance(to, str):
        to = [to]
    if isinstance(kinds, str):
        kinds = [kinds]
    return Rule(
        effect,
        tag,
        None if to is None else frozenset(to),
        None if kinds is None else frozenset(kinds),
    )

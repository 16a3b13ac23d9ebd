import pytest

from veil.errors import ConfigError
from veil.runtime.policy import RevealPolicy


def test_default_allows():
    assert RevealPolicy().check("anything", ["a"], "mpc").allowed


def test_first_matching_rule_wins():
    p = RevealPolicy.deny_all().allow("model.*", to=["bank"]).allow("metrics.*")
    assert p.check("model.weights", ["bank"], "mpc").allowed
    assert not p.check("model.weights", ["bank", "ext1"], "mpc").allowed
    assert p.check("metrics.auc", ["bank", "ext1"], "plain").allowed
    d = p.check("features.raw", ["bank"], "plain")
    assert not d.allowed and "default" in d.reason


def test_kinds_filter():
    p = RevealPolicy().deny("*", kinds=["plain"])
    assert not p.check("x", ["a"], "plain").allowed
    assert p.check("x", ["a"], "mpc").allowed


def test_from_mapping():
    p = RevealPolicy.from_mapping(
        {"default": "deny", "rule": [{"effect": "allow", "tag": "m.*", "to": ["bank"]}]}
    )
    assert p.check("m.w", ["bank"], "mpc").allowed
    assert not p.check("m.w", ["ext"], "mpc").allowed


@pytest.mark.parametrize(
    "data",
    [
        {"default": "maybe"},
        {"rule": [{"tag": "x"}]},
        {"rule": [{"effect": "perhaps"}]},
        {"rule": [1]},
    ],
)
def test_bad_policy_tables(data):
    with pytest.raises(ConfigError):
        RevealPolicy.from_mapping(data)

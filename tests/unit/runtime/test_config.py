from pathlib import Path

import pytest

from veil.errors import ConfigError
from veil.runtime.config import load_config, write_config


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "cluster.toml"
    p.write_text(text)
    return p


GOOD = """
[cluster]
name = "t"
ca = "certs/ca.pem"
[timeouts]
connect = 5
recv = 7.5
[parties.alice]
address = "127.0.0.1:7001"
cert = "certs/alice.pem"
key = "certs/alice.key"
[parties.bob]
address = "127.0.0.1:7002"
cert = "certs/bob.pem"
[policy]
default = "deny"
[[policy.rule]]
effect = "allow"
tag = "metrics.*"
"""


def test_parse_good(tmp_path):
    cfg = load_config(write(tmp_path, GOOD))
    assert cfg.party_names == ("alice", "bob")
    assert cfg.party("alice").port == 7001
    assert cfg.party("alice").cert == tmp_path / "certs/alice.pem"
    assert cfg.party("bob").key is None
    assert (cfg.connect_timeout, cfg.recv_timeout) == (5.0, 7.5)
    assert cfg.policy.check("metrics.auc", ["bob"], "mpc").allowed
    assert not cfg.policy.check("model", ["bob"], "mpc").allowed


def test_unknown_party_is_one_line(tmp_path):
    cfg = load_config(write(tmp_path, GOOD))
    with pytest.raises(ConfigError, match="'carol' is not in the cluster config") as ei:
        cfg.party("carol")
    assert "\n" not in str(ei.value)


def test_missing_cert_file_named(tmp_path):
    cfg = load_config(write(tmp_path, GOOD))
    with pytest.raises(ConfigError, match="ca.pem.*veil certs init"):
        cfg.check_files("alice")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace('address = "127.0.0.1:7002"', 'address = "127.0.0.1"'), "host:port"),
        (lambda t: t.replace("7002", "7001"), "also 'alice'"),
        (lambda t: t.replace('ca = "certs/ca.pem"', ""), "needs 'ca'"),
        (lambda t: t.replace("[parties.bob]", '[parties."b0b!"]'), "party names"),
        (lambda t: t.replace("recv = 7.5", "recv = -1"), "positive"),
        (lambda t: t + "\n[[[", "not valid TOML"),
        (
            lambda t: t.replace('address = "127.0.0.1:7002"', 'adress = "127.0.0.1:7002"'),
            r"\[parties.bob\]: unknown key\(s\) \['adress'\]; known: address, cert, key",
        ),
        (
            lambda t: t.replace('address = "127.0.0.1:7002"', ""),
            r"\[parties.bob\]: needs address = \"host:port\"",
        ),
        (lambda t: t.replace("[timeouts]", "[timeout]"), r"unknown key\(s\) \['timeout'\]"),
        (lambda t: t.replace("recv = 7.5", "recieve = 7.5"), r"\[timeouts\]: unknown key"),
        (lambda t: t.replace('name = "t"', 'nmae = "t"'), r"\[cluster\]: unknown key"),
    ],
)
def test_bad_configs(tmp_path, edit, message):
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, edit(GOOD)))


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml")


def test_write_then_load_roundtrip(tmp_path):
    p = tmp_path / "c.toml"
    write_config(
        p,
        name="x",
        ca=Path("ca.pem"),
        parties=[
            ("a", "127.0.0.1:1", Path("a.pem"), Path("a.key")),
            ("b", "h:2", Path("b.pem"), None),
        ],
    )
    cfg = load_config(p)
    assert cfg.party("b").host == "h" and cfg.party("a").key == tmp_path / "a.key"

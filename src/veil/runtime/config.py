"""Cluster configuration: who the parties are, where they listen, which certificates they use.

A cluster config is a TOML file that every institution holds a copy of (each with only its own
private key on disk)::

    [cluster]
    name = "risk-pilot"
    ca = "certs/ca.pem"            # the cluster CA (``veil certs init``)

    [timeouts]                     # seconds; all optional
    connect = 60                   # how long peers may take to come up
    recv = 300                     # longest wait for one message
    keepalive = 5                  # liveness pings on every connection, this often
    keepalive_timeout = 5          # a ping unanswered this long: the connection is dead
    dead_after = 1                 # a peer seen up whose port refuses this long: it died

    [parties.bank]
    address = "10.0.0.5:7100"      # host:port this party listens on and peers dial
    cert = "certs/bank.pem"
    key = "certs/bank.key"         # only needed on the bank's own machine

    [policy]                       # optional reveal policy (see veil.runtime.policy)
    default = "deny"
    [[policy.rule]]
    effect = "allow"
    tag = "metrics.*"

Relative paths are relative to the config file. Every problem is a one-line
:class:`veil.errors.ConfigError` naming the file, the party and what to do.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from veil.errors import ConfigError
from veil.runtime.policy import RevealPolicy

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True)
class PartyConfig:
    """One party's entry in the cluster config."""

    name: str
    host: str
    port: int
    cert: Path
    key: Path | None


@dataclass(frozen=True)
class ClusterConfig:
    """A parsed and validated cluster config."""

    name: str
    ca: Path
    parties: Mapping[str, PartyConfig]
    connect_timeout: float = 60.0
    recv_timeout: float = 300.0
    keepalive: float = 5.0
    keepalive_timeout: float = 5.0
    dead_after: float = 1.0
    policy: RevealPolicy = field(default_factory=RevealPolicy)
    source: Path | None = None

    @property
    def party_names(self) -> tuple[str, ...]:
        return tuple(self.parties)

    def party(self, name: str) -> PartyConfig:
        """The entry of ``name``; a one-line error if it is not in the cluster."""
        try:
            return self.parties[name]
        except KeyError:
            raise ConfigError(
                f"party {name!r} is not in the cluster config {self.source or ''}: "
                f"it lists {', '.join(self.parties)}"
            ) from None

    def check_files(self, party: str) -> None:
        """Check that the files ``party`` needs to run exist and are readable."""
        me = self.party(party)
        need = [("cluster CA certificate", self.ca), (f"{party}'s certificate", me.cert)]
        if me.key is None:
            raise ConfigError(f"{self.source}: party {party!r} has no 'key' path for its own node")
        need.append((f"{party}'s private key", me.key))
        for what, path in need:
            if not path.is_file():
                raise ConfigError(
                    f"{what} not found at {path} (from {self.source}); create certificates with "
                    "`veil certs init --parties ... --out DIR` or fix the path"
                )
            try:
                path.open("rb").close()
            except OSError as exc:
                raise ConfigError(f"cannot read {what} at {path}: {exc.strerror}") from None


def _check_keys(table: Mapping[str, Any], known: Sequence[str], where: str) -> None:
    """A misspelt key would otherwise be ignored silently (a default used in its place)."""
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where}: must be a table")
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {unknown}; known: {', '.join(known)} (check the spelling)"
        )


def _parse_address(text: Any, where: str) -> tuple[str, int]:
    if text is None:
        raise ConfigError(f'{where}: needs address = "host:port" (where this party listens)')
    if not isinstance(text, str) or ":" not in text:
        raise ConfigError(f"{where}: address must be 'host:port', got {text!r}")
    host, _, port_s = text.rpartition(":")
    host = host.strip("[]")
    try:
        port = int(port_s)
    except ValueError:
        raise ConfigError(f"{where}: port in {text!r} is not a number") from None
    if not 0 < port < 65536:
        raise ConfigError(f"{where}: port {port} out of range 1-65535")
    return host, port


#: Liveness knobs of ``[timeouts]`` and their defaults (see ``docs/transport.md``, Liveness).
_LIVENESS = {"keepalive": 5.0, "keepalive_timeout": 5.0, "dead_after": 1.0}


def load_config(path: Path) -> ClusterConfig:
    """Read and validate a cluster config file."""
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"cluster config {path} not found") from None
    except OSError as exc:
        raise ConfigError(f"cannot read cluster config {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"cluster config {path} is not valid TOML: {exc}") from None
    return parse_config(data, base=path.parent, source=path)


def parse_config(
    data: Mapping[str, Any], *, base: Path, source: Path | None = None
) -> ClusterConfig:
    """Validate a config already read as a mapping (paths relative to ``base``)."""
    src = str(source or "cluster config")
    _check_keys(data, ("cluster", "timeouts", "parties", "policy"), src)
    cluster = data.get("cluster", {})
    _check_keys(cluster, ("name", "ca"), f"{src} [cluster]")
    if "ca" not in cluster:
        raise ConfigError(f"{src}: [cluster] needs 'ca' (path of the cluster CA certificate)")
    parties_raw = data.get("parties")
    if not isinstance(parties_raw, Mapping) or len(parties_raw) < 2:
        raise ConfigError(f"{src}: needs at least two [parties.NAME] tables")
    parties: dict[str, PartyConfig] = {}
    seen: dict[tuple[str, int], str] = {}
    for name, p in parties_raw.items():
        where = f"{src} [parties.{name}]"
        if not _NAME.match(name):
            raise ConfigError(f"{where}: party names use letters, digits, '-' and '_' (max 64)")
        if not isinstance(p, Mapping):
            raise ConfigError(f"{where}: must be a table")
        _check_keys(p, ("address", "cert", "key"), where)
        host, port = _parse_address(p.get("address"), where)
        if (host, port) in seen:
            raise ConfigError(f"{where}: address {host}:{port} is also {seen[(host, port)]!r}'s")
        seen[(host, port)] = name
        if "cert" not in p:
            raise ConfigError(f"{where}: needs 'cert' (path of the party's certificate)")
        key = p.get("key")
        parties[name] = PartyConfig(
            name, host, port, base / str(p["cert"]), base / str(key) if key else None
        )
    timeouts = data.get("timeouts", {})
    _check_keys(timeouts, ("connect", "recv", *_LIVENESS), f"{src} [timeouts]")
    try:
        connect = float(timeouts.get("connect", 60.0))
        recv = float(timeouts.get("recv", 300.0))
        live = {k: float(timeouts.get(k, d)) for k, d in _LIVENESS.items()}
    except (TypeError, ValueError):
        raise ConfigError(f"{src}: [timeouts] values must be numbers of seconds") from None
    if connect <= 0 or recv <= 0 or live["dead_after"] <= 0:
        raise ConfigError(f"{src}: [timeouts] must be positive")
    if live["keepalive"] < 1 or live["keepalive_timeout"] < 0.5:
        raise ConfigError(
            f"{src}: [timeouts] keepalive must be at least 1 s and keepalive_timeout at least 0.5 s"
        )
    policy = RevealPolicy.from_mapping(data.get("policy", {}), source=f"{src} [policy]")
    return ClusterConfig(
        name=str(cluster.get("name", "veil")),
        ca=base / str(cluster["ca"]),
        parties=parties,
        connect_timeout=connect,
        recv_timeout=recv,
        keepalive=live["keepalive"],
        keepalive_timeout=live["keepalive_timeout"],
        dead_after=live["dead_after"],
        policy=policy,
        source=source,
    )


def write_config(
    path: Path,
    *,
    name: str,
    ca: Path,
    parties: Sequence[tuple[str, str, Path, Path | None]],
    connect_timeout: float = 60.0,
    recv_timeout: float = 300.0,
    policy: RevealPolicy | None = None,
) -> None:
    """Write a cluster config: ``parties`` is a list of (name, "host:port", cert, key)."""
    doc: dict[str, Any] = {
        "cluster": {"name": name, "ca": str(ca)},
        "timeouts": {"connect": connect_timeout, "recv": recv_timeout},
        "parties": {},
    }
    for pname, address, cert, key in parties:
        entry: dict[str, Any] = {"address": address, "cert": str(cert)}
        if key is not None:
            entry["key"] = str(key)
        doc["parties"][pname] = entry
    if policy is not None:
        doc["policy"] = policy.to_mapping()
    path.write_text(tomli_w.dumps(doc))

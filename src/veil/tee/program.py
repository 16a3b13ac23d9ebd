"""Program identity: a hash of what the enclave will run, stable across machines and Pythons.

The identity of a TEE job is the SHA-256 of a canonical *program bundle*: the source text of
every registered function (by qualified name), a dependency lock (distribution → version) and
the veil version. It is never a hash of pickled bytes, which change with the Python version,
the pickle protocol and object addresses and so break attestation across machines.

Canonical form: UTF-8 JSON with sorted keys and no whitespace, of
``{"format": "veil/program/v1", "functions": [[name, source], ...], "dependencies":
[[name, version], ...], "veil": version}``, functions and dependencies sorted by name; sources
dedented, with ``\\n`` line endings and trailing whitespace removed.

What it does not cover: modules a registered function imports beyond the lock, and globals it
reads at run time. Register every function the job calls, and lock every dependency.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import inspect
import json
import re
import textwrap
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from veil.errors import ConfigError

FORMAT = "veil/program/v1"


def normalize_source(source: str) -> str:
    """Dedent, use ``\\n`` line endings, strip trailing whitespace and blank edge lines."""
    text = textwrap.dedent(source.replace("\r\n", "\n").replace("\r", "\n"))
    lines = [line.rstrip() for line in text.split("\n")]
    return "\n".join(lines).strip("\n") + "\n"


def normalize_dist(name: str) -> str:
    """PEP 503 normalized distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


JOB_MODULE = "job"
"""Module name used for functions of a job *file* (see :func:`function_name`)."""


def function_name(fn: Callable[..., Any]) -> str:
    """The name a function has in a program bundle: ``module.qualname``.

    Functions defined in a job file loaded by path (``veil node --job job.py``: module
    ``veil_job_<hash of the path>``) or run as ``__main__`` get the module name ``job``: their
    module name depends on where each institution keeps the file, which must not change the
    program's identity.
    """
    module = str(getattr(fn, "__module__", "?"))
    if module == "__main__" or module.startswith("veil_job_"):
        module = JOB_MODULE
    return f"{module}.{getattr(fn, '__qualname__', '?')}"


def function_source(fn: Callable[..., Any]) -> tuple[str, str]:
    """``(qualified name, normalized source)`` of a plain ``def`` function.

    Raises
    ------
    ConfigError
        For lambdas, closures, builtins and functions whose source is unavailable: their
        behaviour is not fully determined by text veil can hash.
    """
    name = function_name(fn)
    if not inspect.isfunction(fn):
        raise ConfigError(f"{name}: only plain Python functions can be registered for a TEE job")
    if fn.__name__ == "<lambda>":
        raise ConfigError(f"{name}: register a named `def` function, not a lambda")
    if fn.__closure__:
        raise ConfigError(
            f"{name} captures variables from an enclosing scope, which its source does not show: "
            "pass them as arguments instead"
        )
    try:
        source = inspect.getsource(fn)
    except (OSError, TypeError) as exc:
        raise ConfigError(
            f"{name}: its source is not available ({exc}); define it in a file"
        ) from exc
    return name, normalize_source(source)


@dataclass(frozen=True)
class ProgramBundle:
    """The canonical description of a TEE program.

    Attributes
    ----------
    functions:
        ``(qualified name, normalized source)`` pairs, sorted by name.
    dependencies:
        ``(normalized distribution name, version)`` pairs, sorted by name.
    veil_version:
        The veil version that runs the program.
    """

    functions: tuple[tuple[str, str], ...]
    dependencies: tuple[tuple[str, str], ...]
    veil_version: str

    def __post_init__(self) -> None:
        fns = tuple(sorted((str(n), normalize_source(s)) for n, s in self.functions))
        deps = tuple(sorted((normalize_dist(n), str(v)) for n, v in self.dependencies))
        if not fns:
            raise ConfigError("a TEE program needs at least one registered function")
        for what, pairs in (("function", fns), ("dependency", deps)):
            names = [n for n, _ in pairs]
            if len(set(names)) != len(names):
                raise ConfigError(f"duplicate {what} name in the program bundle: {names}")
        object.__setattr__(self, "functions", fns)
        object.__setattr__(self, "dependencies", deps)

    @classmethod
    def from_functions(
        cls,
        functions: Iterable[Callable[..., Any]],
        *,
        dependencies: Mapping[str, str] | Iterable[str] = (),
        veil_version: str | None = None,
    ) -> ProgramBundle:
        """Bundle functions with a dependency lock.

        Parameters
        ----------
        functions:
            The functions the job runs in the enclave.
        dependencies:
            Distribution names (their installed version is locked) or a name → version map.
        veil_version:
            Defaults to the installed veil version.
        """
        if isinstance(dependencies, Mapping):
            lock = dict(dependencies)
        else:
            lock = {}
            for dist in dependencies:
                try:
                    lock[dist] = importlib.metadata.version(dist)
                except importlib.metadata.PackageNotFoundError:
                    raise ConfigError(
                        f"dependency {dist!r} is not installed: install it or lock its version"
                    ) from None
        if veil_version is None:
            try:
                veil_version = importlib.metadata.version("veil")
            except importlib.metadata.PackageNotFoundError:
                raise ConfigError("veil is not installed as a package: pip install -e .") from None
        return cls(
            functions=tuple(function_source(fn) for fn in functions),
            dependencies=tuple(lock.items()),
            veil_version=veil_version,
        )

    def canonical_bytes(self) -> bytes:
        """The canonical UTF-8 JSON encoding that is hashed."""
        doc = {
            "format": FORMAT,
            "functions": [list(p) for p in self.functions],
            "dependencies": [list(p) for p in self.dependencies],
            "veil": self.veil_version,
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    def digest(self) -> bytes:
        """SHA-256 of :meth:`canonical_bytes`: the program hash bound into the report data."""
        return hashlib.sha256(self.canonical_bytes()).digest()


__all__ = [
    "FORMAT",
    "JOB_MODULE",
    "ProgramBundle",
    "function_name",
    "function_source",
    "normalize_dist",
    "normalize_source",
]

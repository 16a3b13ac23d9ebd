"""Finding a job function and running one party of it.

A job is a top-level function ``job(ctx, **params)``. It is named either as ``module:function``
(an importable module) or as ``path/to/file.py[:function]`` (default function name ``job``).
Loading a file runs its top-level code, like running it as a script: keep side effects under
``if __name__ == "__main__":``.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from veil.errors import ConfigError, PeerError
from veil.runtime.context import Context
from veil.runtime.party import PartyObject

JobFn = Callable[..., Any]


@dataclass(frozen=True)
class JobRef:
    """Where a job function lives: a file path or a module name, and the function's name."""

    target: str
    function: str = "job"

    @property
    def is_file(self) -> bool:
        return self.target.endswith(".py") or "/" in self.target

    def spec(self) -> str:
        """The ``target:function`` text form, accepted by :func:`parse_job_ref`."""
        return f"{self.target}:{self.function}"


def parse_job_ref(text: str) -> JobRef:
    """Parse ``file.py``, ``file.py:fn`` or ``package.module:fn``."""
    target, sep, fn = text.rpartition(":")
    if not sep or target == "" or "/" in fn or fn.endswith(".py"):
        target, fn = text, "job"
    return JobRef(target, fn or "job")


def ref_of(job: JobFn) -> JobRef:
    """The :class:`JobRef` of a function object, so other processes can load the same job."""
    name = getattr(job, "__qualname__", "")
    if not name or "<" in name or "." in name:
        raise ConfigError(
            f"job {getattr(job, '__name__', job)!r} must be a top-level function (not a lambda, "
            "closure or method) to run as separate processes"
        )
    module = getattr(job, "__module__", None)
    if module and module != "__main__":
        mod = sys.modules.get(module)
        spec = getattr(mod, "__spec__", None)
        if spec is not None and spec.name == module and not module.startswith("veil_job_"):
            return JobRef(module, name)
    source = inspect.getsourcefile(job)
    if source is None:
        raise ConfigError(f"cannot find the source file of job {name!r}")
    return JobRef(str(Path(source).resolve()), name)


def load_job(ref: JobRef) -> JobFn:
    """Import the job function named by ``ref``."""
    if ref.is_file:
        path = Path(ref.target).resolve()
        if not path.is_file():
            raise ConfigError(f"job file {path} not found")
        modname = "veil_job_" + hashlib.sha256(str(path).encode()).hexdigest()[:12]
        module = sys.modules.get(modname)
        if module is None:
            spec = importlib.util.spec_from_file_location(modname, path)
            if spec is None or spec.loader is None:
                raise ConfigError(f"cannot import job file {path}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[modname] = module
            if str(path.parent) not in sys.path:
                sys.path.insert(0, str(path.parent))
            try:
                spec.loader.exec_module(module)
            except Exception:
                del sys.modules[modname]
                raise
    else:
        try:
            module = importlib.import_module(ref.target)
        except ImportError as exc:
            raise ConfigError(f"cannot import job module {ref.target!r}: {exc}") from None
    fn = getattr(module, ref.function, None)
    if not callable(fn):
        raise ConfigError(f"{ref.target} defines no function {ref.function!r}(ctx)")
    return fn  # type: ignore[no-any-return]


@dataclass(frozen=True)
class PartyOutcome:
    """How one party's run ended."""

    party: str
    ok: bool
    result: Any = None
    error_type: str | None = None
    error: str | None = None
    traceback: str | None = None
    caused_by_peer: str | None = None


def run_party(job: JobFn, ctx: Context, params: Mapping[str, Any] | None = None) -> PartyOutcome:
    """Run ``job`` as ``ctx.party``; close the link on success, abort it on failure.

    Aborting tells the peers at once, so they stop promptly instead of waiting for a timeout.
    A returned :class:`PartyObject` is unwrapped (its value at the owner, ``None`` elsewhere).
    """
    try:
        result = job(ctx, **dict(params or {}))
        if isinstance(result, PartyObject):
            result = result.value if result.is_local else None
    except BaseException as exc:
        ctx.link.abort(f"{type(exc).__name__}: {exc}")
        return PartyOutcome(
            ctx.party,
            False,
            error_type=type(exc).__name__,
            error=str(exc),
            traceback="".join(traceback.format_exception(exc)),
            caused_by_peer=exc.party if isinstance(exc, PeerError) else None,
        )
    ctx.link.close()
    return PartyOutcome(ctx.party, True, result=result)


def root_cause(outcomes: Mapping[str, PartyOutcome]) -> PartyOutcome | None:
    """The failure that started it: a party that failed on its own, else the first PeerError."""
    failed = [o for o in outcomes.values() if not o.ok]
    if not failed:
        return None
    own = [o for o in failed if o.caused_by_peer is None]
    if own:
        return own[0]
    # Everyone blames a peer: follow the blame to a party that did not fail, or the first.
    blamed = {o.caused_by_peer for o in failed}
    for o in failed:
        if o.party not in blamed:
            return o
    return failed[0]

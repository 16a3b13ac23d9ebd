"""numpy ufunc name → secure implementation, for :meth:`SecretTensor.__array_ufunc__`."""

from __future__ import annotations

import operator
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

from veil.mpc.ops import compare
from veil.mpc.ops.exp import exp, log
from veil.mpc.ops.reciprocal import reciprocal, sqrt
from veil.mpc.tensor import SecretTensor

Binary = Callable[[Any, Any], Any]


def _binary(op: Binary, swapped: Binary) -> Binary:
    """``op(a, b)``, or ``swapped(b, a)`` when numpy passes the public operand first."""

    def run(a: Any, b: Any) -> Any:
        return op(a, b) if isinstance(a, SecretTensor) else swapped(b, a)

    return run


UFUNCS: MappingProxyType[str, Callable[..., Any]] = MappingProxyType(
    {
        "add": _binary(operator.add, operator.add),
        "subtract": _binary(operator.sub, lambda s, p: -(s - p)),
        "multiply": _binary(operator.mul, operator.mul),
        "true_divide": _binary(operator.truediv, lambda s, p: reciprocal(s) * p),
        "matmul": _binary(operator.matmul, lambda s, p: s.__rmatmul__(p)),
        "less": _binary(operator.lt, compare.greater),
        "greater": _binary(operator.gt, compare.less),
        "less_equal": _binary(operator.le, operator.ge),
        "greater_equal": _binary(operator.ge, operator.le),
        "equal": _binary(operator.eq, operator.eq),
        "maximum": _binary(compare.maximum, compare.maximum),
        "minimum": _binary(compare.minimum, compare.minimum),
        "negative": operator.neg,
        "absolute": compare.abs,
        "exp": exp,
        "log": log,
        "sqrt": sqrt,
        "reciprocal": reciprocal,
    }
)

__all__ = ["UFUNCS"]

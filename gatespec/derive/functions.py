"""The element-wise functions of the cell language, as SymPy functions.

They never evaluate or simplify themselves, so the derived expressions keep the
user's functions. Each activation's derivative is written in terms of its own
output where that is possible (σ' = s(1 − s), tanh' = 1 − t²), so the backward
pass reuses saved activations instead of recomputing exponentials.
"""

from __future__ import annotations

from collections.abc import Callable

import sympy


class Elementwise(sympy.Function):
    """A function applied element by element; never evaluated symbolically."""

    @classmethod
    def eval(cls, *args):
        return None


def _fn(name: str, nargs: int = 1) -> type[Elementwise]:
    return type(name, (Elementwise,), {"nargs": nargs})


Sigmoid = _fn("sigmoid")
Tanh = _fn("tanh")
Relu = _fn("relu")
Exp = _fn("exp")
Log = _fn("log")
Softplus = _fn("softplus")
LogSigmoid = _fn("logsigmoid")
HardSigmoid = _fn("hard_sigmoid")
HardTanh = _fn("hard_tanh")
Abs = _fn("abs")
Sqrt = _fn("sqrt")
Softsign = _fn("softsign")
Silu = _fn("silu")
Max = _fn("max", 2)
Min = _fn("min", 2)

# Helpers that only appear in derivatives.
Expm1 = _fn("expm1")
Sign = _fn("sign")
Positive = _fn("positive")  # 1 where a > 0, else 0
InUnit = _fn("in_unit")  # 1 where 0 < a < 1, else 0
InSymmetricUnit = _fn("in_symmetric_unit")  # 1 where -1 < a < 1, else 0
GreaterEqual = _fn("greater_equal", 2)  # 1 where a >= b, else 0
Less = _fn("less", 2)  # 1 where a < b, else 0

# name in the cell language -> SymPy class
LANGUAGE_FUNCTIONS: dict[str, type[Elementwise]] = {
    f.__name__: f
    for f in (
        Sigmoid, Tanh, Relu, Exp, Log, Softplus, LogSigmoid, HardSigmoid, HardTanh,
        Abs, Sqrt, Softsign, Silu, Max, Min,
    )
}

# What each function does, for `gatespec show`, error messages and the README.
DESCRIPTIONS = {
    "sigmoid": "logistic function 1 / (1 + exp(-a))",
    "tanh": "hyperbolic tangent",
    "relu": "max(a, 0)",
    "exp": "exponential",
    "log": "natural logarithm",
    "softplus": "log(1 + exp(a)), computed stably",
    "logsigmoid": "log(sigmoid(a)), computed stably",
    "hard_sigmoid": "clip(a / 6 + 1/2, 0, 1), as torch.nn.Hardsigmoid",
    "hard_tanh": "clip(a, -1, 1)",
    "abs": "absolute value",
    "sqrt": "square root",
    "softsign": "a / (1 + |a|)",
    "silu": "a * sigmoid(a) (swish)",
    "max": "element-wise maximum of two operands",
    "min": "element-wise minimum of two operands",
    "identity": "the operand itself",
}

Partials = Callable[[sympy.Expr, tuple[sympy.Expr, ...]], list[sympy.Expr]]

# d f(args) / d arg_k, written with y = the function's output where that is exact.
PARTIALS: dict[type[Elementwise], Partials] = {
    Sigmoid: lambda y, a: [y * (1 - y)],
    Tanh: lambda y, a: [1 - y**2],
    Relu: lambda y, a: [Positive(y)],
    Exp: lambda y, a: [y],
    Log: lambda y, a: [1 / a[0]],
    Softplus: lambda y, a: [-Expm1(-y)],
    LogSigmoid: lambda y, a: [-Expm1(y)],
    HardSigmoid: lambda y, a: [InUnit(y) / 6],
    HardTanh: lambda y, a: [InSymmetricUnit(y)],
    Abs: lambda y, a: [Sign(a[0])],
    Sqrt: lambda y, a: [1 / (2 * y)],
    Softsign: lambda y, a: [(1 - Abs(y)) ** 2],
    Silu: lambda y, a: [Sigmoid(a[0]) * (1 + a[0] * (1 - Sigmoid(a[0])))],
    # at a tie the whole gradient goes to the first operand
    Max: lambda y, a: [GreaterEqual(a[0], a[1]), Less(a[0], a[1])],
    Min: lambda y, a: [GreaterEqual(a[1], a[0]), Less(a[1], a[0])],
}

ARITY = {name: cls.nargs.args[0] if hasattr(cls.nargs, "args") else 1
         for name, cls in LANGUAGE_FUNCTIONS.items()}
ARITY["identity"] = 1

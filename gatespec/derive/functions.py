"""The element-wise functions of the cell language, as SymPy functions.

They never evaluate or simplify themselves, so the derived expressions keep the
user's functions. Each activation's derivative is written in terms of its own
output where that is possible (σ' = s(1 − s), tanh' = 1 − t²), so the backward
pass reuses saved activations instead of recomputing exponentials.
"""

from __future__ import annotations

import sys
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
    "clip": "clip(a, lo, hi) = min(max(a, lo), hi)",
}

# sqrt's slope is infinite at 0; taken as 1 / (2 max(sqrt(a), 1e-30)) it stays finite, so
# where a later factor is zero (sqrt(relu(u)) for u < 0) the gradient is 0, as torch's relu
# backward gives, not 0 * inf = NaN. It differs from the exact slope only for a < 1e-60.
SQRT_FLOOR = sympy.Rational(1, 10**30)

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
    Sqrt: lambda y, a: [1 / (2 * Max(y, SQRT_FLOOR))],
    Softsign: lambda y, a: [(1 - Abs(y)) ** 2],
    Silu: lambda y, a: [Sigmoid(a[0]) * (1 + a[0] * (1 - Sigmoid(a[0])))],
    # at a tie the whole gradient goes to the first operand
    Max: lambda y, a: [GreaterEqual(a[0], a[1]), Less(a[0], a[1])],
    Min: lambda y, a: [GreaterEqual(a[1], a[0]), Less(a[1], a[0])],
}

ARITY = {name: cls.nargs.args[0] if hasattr(cls.nargs, "args") else 1
         for name, cls in LANGUAGE_FUNCTIONS.items()}
ARITY["identity"] = 1


# -- constant folding --------------------------------------------------------------------
# Each function's value at a number, in SymPy's exact functions (which do evaluate): a
# function of constants is folded when the cell is built, so generated code never calls
# an array function on a Python number.
_EXACT: dict[type[Elementwise], Callable[..., sympy.Expr]] = {
    Sigmoid: lambda a: 1 / (1 + sympy.exp(-a)),
    Tanh: sympy.tanh,
    Relu: lambda a: sympy.Max(a, 0),
    Exp: sympy.exp,
    Log: sympy.log,
    Softplus: lambda a: sympy.log(1 + sympy.exp(a)),
    LogSigmoid: lambda a: -sympy.log(1 + sympy.exp(-a)),
    HardSigmoid: lambda a: sympy.Min(sympy.Max(a / 6 + sympy.Rational(1, 2), 0), 1),
    HardTanh: lambda a: sympy.Min(sympy.Max(a, -1), 1),
    Abs: sympy.Abs,
    Sqrt: sympy.sqrt,
    Softsign: lambda a: a / (1 + sympy.Abs(a)),
    Silu: lambda a: a / (1 + sympy.exp(-a)),
    Max: sympy.Max,
    Min: sympy.Min,
}

FLOAT_MAX = sympy.Rational(sys.float_info.max)
_FAR = sympy.Integer(2) ** 4000  # far outside float64 (2 ** ±1024), either way
OUT_OF_RANGE = "exceeds the largest float64 (about 1.8e308)"


def fold(fn: type[Elementwise], args: tuple[sympy.Rational, ...]) -> sympy.Rational:
    """fn(args) as a number: exact where the value is rational (sqrt(1e20) = 1e10,
    relu(-1) = 0), else rounded once to 53 significant bits (float64's precision) and held
    exactly. Raises ValueError when the value is not a real number (log(0), sqrt(-1)) or is
    far beyond float64 (exp(1e300)); the caller checks the range of the value it keeps."""
    value = _EXACT[fn](*args)
    if not value.is_Rational:
        approx = value.evalf(40)
        if not approx.is_real or not approx.is_finite:
            raise ValueError("is not a real number")
        if abs(approx) > _FAR:
            raise ValueError(OUT_OF_RANGE)
        value = sympy.Integer(0) if abs(approx) < 1 / _FAR else sympy.Rational(
            sympy.Float(approx, precision=53))
    return value


def out_of_range(value: sympy.Rational) -> bool:
    """Whether a constant is too large for float64, the widest type the code computes in."""
    return abs(value) > FLOAT_MAX

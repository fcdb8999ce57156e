"""SymPy expression → source text, per target.

A printer knows how its target spells each element-wise function and how a
symbol is read in the current context (`s_i[t]` inside the loop, `s_i` outside).
"""

from __future__ import annotations

from fractions import Fraction

import sympy
from sympy.printing.str import StrPrinter

from gatespec.derive import functions as fn

# How NumPy spells each function; {0}, {1} are the printed operands.
NUMPY_FUNCTIONS = {
    fn.Sigmoid: "_sigmoid({0})",
    fn.Tanh: "np.tanh({0})",
    fn.Relu: "np.maximum({0}, 0)",
    fn.Exp: "np.exp({0})",
    fn.Log: "np.log({0})",
    fn.Softplus: "np.logaddexp(0, {0})",
    fn.LogSigmoid: "_logsigmoid({0})",
    fn.HardSigmoid: "np.clip({0} / 6 + 0.5, 0, 1)",
    fn.HardTanh: "np.clip({0}, -1, 1)",
    fn.Abs: "np.abs({0})",
    fn.Sqrt: "np.sqrt({0})",
    fn.Softsign: "_softsign({0})",
    fn.Silu: "_silu({0})",
    fn.Max: "np.maximum({0}, {1})",
    fn.Min: "np.minimum({0}, {1})",
    fn.Expm1: "np.expm1({0})",
    fn.Sign: "np.sign({0})",
    fn.Positive: "({0} > 0).astype(dtype)",
    fn.InUnit: "(({0} > 0) & ({0} < 1)).astype(dtype)",
    fn.InSymmetricUnit: "(np.abs({0}) < 1).astype(dtype)",
    fn.GreaterEqual: "({0} >= {1}).astype(dtype)",
    fn.Less: "({0} < {1}).astype(dtype)",
}

# Helper functions a generated NumPy module defines when its expressions use them.
# Each is numerically stable for arguments of any size (no overflow warnings).
NUMPY_HELPERS = {
    "_sigmoid": (
        "def _sigmoid(a):\n"
        '    """Logistic function via tanh: exact to rounding, no overflow for any a."""\n'
        "    return 0.5 * np.tanh(0.5 * a) + 0.5\n"
    ),
    "_logsigmoid": (
        "def _logsigmoid(a):\n"
        "    return -np.logaddexp(0, -a)\n"
    ),
    "_softsign": (
        "def _softsign(a):\n"
        "    return a / (1 + np.abs(a))\n"
    ),
    "_silu": (
        "def _silu(a):\n"
        "    return a * _sigmoid(a)\n"
    ),
}
HELPER_NEEDS = {"_silu": ["_sigmoid"]}


def number_text(value: sympy.Rational) -> str:
    """A rational constant as a Python literal: integers stay integers, others become floats."""
    frac = Fraction(int(value.p), int(value.q))
    if frac.denominator == 1:
        return str(frac.numerator)
    return repr(float(frac))


class CodePrinter(StrPrinter):
    """Prints element-wise expressions for one target, reading symbols through `names`."""

    def __init__(self, functions: dict, names: dict[str, str] | None = None):
        super().__init__({"order": "none"})
        self.functions = functions
        self.names = names or {}
        self.used: set[str] = set()

    def _print_Symbol(self, s: sympy.Symbol) -> str:
        return self.names.get(s.name, s.name)

    def _print_Rational(self, r: sympy.Rational) -> str:
        return number_text(r)

    _print_Integer = _print_Rational

    def _print_Half(self, r) -> str:
        return "0.5"

    def _print_Function(self, f: sympy.Function) -> str:
        template = self.functions.get(type(f))
        if template is None:
            raise NotImplementedError(f"no spelling for {type(f).__name__} in this target")
        args = [self._print(a) for a in f.args]
        text = template.format(*args)
        if text.startswith("_"):
            self.used.add(text.split("(")[0])
        return text

    def _print_Pow(self, expr: sympy.Pow, rational: bool = False) -> str:
        base, exp = expr.args
        if exp == -1:
            return f"1 / {self.parenthesize(base, 51)}"
        if exp.is_Integer and exp < 0:
            return f"1 / {self.parenthesize(base, 51)}**{-exp}"
        return super()._print_Pow(expr, rational)

    def expr(self, e: sympy.Expr) -> str:
        return self._print(e)

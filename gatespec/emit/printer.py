"""SymPy expression → source text, per target.

A printer is given how its target spells each element-wise function and how a
symbol is read in the current context (`s_i[t]` inside the loop, `s_i` outside).
"""

from __future__ import annotations

from fractions import Fraction

import sympy
from sympy.printing.precedence import precedence
from sympy.printing.str import StrPrinter


def number_text(value: sympy.Rational) -> str:
    """A rational constant as a Python literal: integers that float64 holds exactly stay
    integers, others become floats (a Python float takes the arrays' dtype, where an int
    past int64 would be an object or an overflow)."""
    frac = Fraction(int(value.p), int(value.q))
    if frac.denominator == 1 and abs(frac.numerator) <= 2**53:
        return str(frac.numerator)
    f = to_float(value)
    return repr(f) if abs(f) != float("inf") else "-1e999" if f < 0 else "1e999"


def inexact_fraction(value: sympy.Expr) -> bool:
    """A fraction that is not a short ratio of integers: print it as one float."""
    return value.is_Rational and not value.is_Integer and (value.q > 1000 or abs(value.p) > 2**53)


def to_float(value: sympy.Rational) -> float:
    """The float64 nearest a constant; past the largest one (a derivative's 2 * 1e308, the
    user's constants are checked when the cell is built) infinity, as IEEE rounds; Python
    reads the literal 1e999 as infinity."""
    try:
        return float(Fraction(int(value.p), int(value.q)))
    except OverflowError:
        return float("inf") if value > 0 else float("-inf")


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
        spelling = self.functions.get(type(f))
        if spelling is None:
            raise NotImplementedError(f"no spelling for {type(f).__name__} in this target")
        args = [self._print(a) for a in f.args]
        # a spelling is a format string, or a function of (printed args, SymPy args)
        text = spelling(args, f.args) if callable(spelling) else spelling.format(*args)
        if text.startswith("_"):
            self.used.add(text.split("(")[0])
        return text

    def _print_Mul(self, expr: sympy.Mul) -> str:
        # a folded constant (sigmoid(2), held exactly as p / 2**53) is one float factor,
        # not p * ... / q; simple fractions keep SymPy's form (h / 3)
        coeff, rest = expr.as_coeff_Mul()
        if coeff.is_Rational and not inexact_fraction(coeff) or rest == 1:
            return super()._print_Mul(expr)
        sign, coeff = ("-", -coeff) if coeff < 0 else ("", coeff)
        return f"{sign}{self._print(coeff)}*{self.parenthesize(rest, precedence(expr))}"

    def _print_Pow(self, expr: sympy.Pow, rational: bool = False) -> str:
        base, exp = expr.args
        if exp == -1:
            return f"1 / {self.parenthesize(base, 51)}"
        if exp.is_Integer and exp < 0:
            return f"1 / {self.parenthesize(base, 51)}**{-exp}"
        return super()._print_Pow(expr, rational)

    def expr(self, e: sympy.Expr) -> str:
        return self._print(e)

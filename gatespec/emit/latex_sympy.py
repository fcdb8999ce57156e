"""SymPy expressions of the derived graph → LaTeX in the article's notation.

Used for the backward equations, whose terms SymPy has built. Products of vectors
are element-wise (⊙); an adjoint comes first in its product, so that every term
reads `δ(consumer) ⊙ local partial`. Helper nodes of the derived graph (lifted
activations, input-only sums, products W x) are printed as what they compute.
A symbol with the suffix `@1` is read one step later (index t+1 for t). A layer
norm's vectors (its output, normalised input, deviation) are named by the caller's
`auxiliary` spelling; `UnitMean(v)`, the mean over v's units, is a scalar, which
multiplies a vector without ⊙.
"""

from __future__ import annotations

from collections.abc import Callable

import sympy

from gatespec import ir
from gatespec.derive import Derived
from gatespec.derive.functions import Elementwise
from gatespec.emit import latex_notation as ln
from gatespec.emit.latex_notation import ATOM, MATVEC, PROD, SUM
from gatespec.emit.printer import inexact_fraction, number_text

LATER = "@1"


class Transposed(sympy.Function):
    """Wᵀ v: a weight's transpose times an adjoint, kept whole for printing."""

    nargs = 2

    @classmethod
    def eval(cls, *args):
        return None


class UnitMean(sympy.Function):
    """⟨v⟩: the mean of a vector over its units, one number per step (and batch row)."""

    nargs = 1

    @classmethod
    def eval(cls, *args):
        return None


class UnitSum(UnitMean):
    """sum(v): the sum of a vector over its units, a scalar as the mean is."""


class RevCumsum(sympy.Function):
    """rcumsum(v): the sums of v's units from each unit to the last, a vector."""

    nargs = 1

    @classmethod
    def eval(cls, *args):
        return None


def shift(e: sympy.Expr) -> sympy.Expr:
    """The same expression one step later (parameters have no step)."""
    return e.xreplace({s: sympy.Symbol(s.name + LATER) for s in e.free_symbols
                       if not ir.is_param_name(s.name)})


def _is_adjoint(s: sympy.Symbol) -> bool:
    return s.name.startswith(("d:", "dL:"))


def _has_adjoint(e: sympy.Expr) -> bool:
    return any(_is_adjoint(s) for s in e.free_symbols)


class SympyLatex:
    """`adjoint(kind, name, step)` spells the adjoint symbols `d:NAME` (kind "d"),
    `d:a:NAME` ("a"), `d:call:LABEL` ("call"), `d:KIND:NAME` for the caller's other
    kinds, and `dL:NAME` ("dL"); `auxiliary(name, step)` spells the symbols `KIND:NAME`
    that are values but not nodes, and the layer-norm nodes."""

    def __init__(self, derived: Derived, names: ln.Names,
                 adjoint: Callable[[str, str, int], str],
                 auxiliary: Callable[[str, int], str] | None = None):
        self.d = derived
        self.names = names
        self.adjoint = adjoint
        self.auxiliary = auxiliary
        # printing is a function of (expression, step): the adjoints of a long product
        # repeat the same factors, each printed once
        self._printed: dict[tuple[sympy.Expr, int], tuple[str, float]] = {}
        self._sort_keys: dict[sympy.Expr, tuple] = {}

    def value(self, name: str, step: int) -> str:
        """A leaf or a statement's target at a step offset."""
        node = self.d.node(name)
        if isinstance(node, ir.Leaf) and node.kind == "state":
            return self.names.var(node.label, step - 1)
        if isinstance(node, ir.Pointwise) and node.kind == "product":
            return self.names.labelled(r"\pi", node.label, step)  # a partial product
        return self.names.var(node.label.rstrip("'"), step)

    def expr(self, e: sympy.Expr) -> str:
        return self._print(e, 0)[0]

    # -- the recursion: (text, precedence) ----------------------------------------------
    def _print(self, e: sympy.Expr, step: int) -> tuple[str, float]:
        key = (e, step)
        if key not in self._printed:
            self._printed[key] = self._print_new(e, step)
        return self._printed[key]

    def _print_new(self, e: sympy.Expr, step: int) -> tuple[str, float]:
        if isinstance(e, sympy.Symbol):
            return self._symbol(e, step)
        if e.is_Number:
            return self._number(e)
        if isinstance(e, sympy.Add):
            return self._add(e, step)
        if isinstance(e, sympy.Mul):
            return self._mul(e, step)
        if isinstance(e, sympy.Pow):
            return self._pow(e, step)
        if isinstance(e, Transposed):
            weight, v = e.args
            text, prec = self._print(v, step)
            return (ln.weight(weight.name, self.d.cell.params, transposed=True)
                    + _wrap(text, prec < ATOM), MATVEC)
        if isinstance(e, UnitSum):
            return ln.unit_sum(self._print(e.args[0], step)[0]), ATOM
        if isinstance(e, UnitMean):
            return ln.unit_mean(self._print(e.args[0], step)[0]), ATOM
        if isinstance(e, RevCumsum):
            return ln.reverse_cumsum(self._print(e.args[0], step)[0]), ATOM
        if isinstance(e, Elementwise):
            args = [self._print(a, step)[0] for a in e.args]
            return ln.function(type(e).__name__, args), ATOM
        raise NotImplementedError(f"no LaTeX for {type(e).__name__}")

    def _symbol(self, s: sympy.Symbol, step: int) -> tuple[str, float]:
        name = s.name
        if name.endswith(LATER):
            name, step = name[: -len(LATER)], step + 1
        if _is_adjoint(s):
            kind, _, rest = name.partition(":")
            if kind == "d" and ":" in rest:
                kind, _, rest = rest.partition(":")
            return self.adjoint(kind, rest, step), ATOM
        if ir.is_param_name(name):
            return ln.Names.param(name), ATOM
        if ":" in name or isinstance(self.d.node(name), ir.Row):
            if self.auxiliary is None:
                raise NotImplementedError(f"no LaTeX for {name}")
            return self.auxiliary(name, step), ATOM
        node = self.d.node(name)
        if isinstance(node, ir.MatMul):
            text, prec = self._print(ir.symbol(node.operand), step)
            return ln.weight(node.weight, self.d.cell.params) + _wrap(text, prec < ATOM), MATVEC
        if isinstance(node, ir.Pointwise) and node.kind not in ("user", "product"):
            return self._print(node.expr, step)  # a helper node: what it computes
        return self.value(name, step), ATOM

    def _resolve(self, e: sympy.Expr) -> tuple[sympy.Expr, int]:
        """A helper node's symbol → its expression (and the step it is read at)."""
        if not isinstance(e, sympy.Symbol) or _is_adjoint(e):
            return e, 0
        name, step = (e.name[: -len(LATER)], 1) if e.name.endswith(LATER) else (e.name, 0)
        if ir.is_param_name(name) or ":" in name:
            return e, 0
        node = self.d.node(name)
        if isinstance(node, ir.Pointwise) and node.kind not in ("user", "product"):
            return node.expr, step
        return e, 0

    @staticmethod
    def _number(n: sympy.Expr) -> tuple[str, float]:
        if n.is_Integer:
            return str(n), (ATOM if n >= 0 else SUM)
        if inexact_fraction(n):  # a folded constant such as sigmoid(2): its float64 digits
            return number_text(n), (ATOM if n >= 0 else SUM)
        p, q = abs(n.p), n.q
        text = rf"\frac{{{p}}}{{{q}}}"
        return ("-" + text, SUM) if n < 0 else (text, ATOM)

    def _add(self, e: sympy.Add, step: int) -> tuple[str, float]:
        # `s - 1`, `1 - z`: what is added, then what is subtracted; numbers last in each
        terms = e.as_ordered_terms()

        def rank(t):  # a lone bias after the products it is added to: W h + b
            bias = isinstance(t, sympy.Symbol) and ir.is_param_name(t.name)
            # a layer norm's backward: a mean alone before a vector times a mean
            core = -t if t.could_extract_minus_sign() else t
            scaled = isinstance(core, sympy.Mul) and core.has(UnitMean)
            return 4 * t.could_extract_minus_sign() + 2 * bool(t.is_Number) + bias + scaled / 2

        out = []
        for t in sorted(terms, key=rank):  # stable: SymPy's order within a rank
            if t.could_extract_minus_sign():
                text, prec = self._print(-t, step)
                out.append("- " + _wrap(text, prec <= SUM))
            else:
                out.append("+ " + self._print(t, step)[0])
        text = " ".join(out)
        return (text[2:] if text.startswith("+ ") else "-" + text[2:]), SUM

    def _mul(self, e: sympy.Mul, step: int) -> tuple[str, float]:
        coeff, rest = e.as_coeff_mul()
        if coeff < 0:
            text, prec = self._print(sympy.Mul(-coeff, *rest), step)
            return "-" + _wrap(text, prec <= SUM), SUM
        numerator, denominator = [], []
        for f in rest:
            if isinstance(f, sympy.Pow) and f.exp.is_Number and f.exp < 0:
                denominator.append(f.base ** -f.exp)
            else:
                numerator.append(f)
        num = self._factors(numerator, step)
        if denominator:  # a fraction bar groups: no parentheses around a lone factor
            if len(numerator) == 1:
                num = self._print(numerator[0], step)[0]
            den = (self._print(denominator[0], step)[0] if len(denominator) == 1
                   else self._factors(denominator, step))
            num = rf"\frac{{{num or '1'}}}{{{den}}}"
        if coeff != 1:
            text, _ = self._number(coeff)
            num = f"{text} {num}" if num else text
        return num, PROD

    def _factors(self, factors: list[sympy.Expr], step: int) -> str:
        """Vectors joined by ⊙, then the scalars (means over the units), juxtaposed."""
        def key(f):
            if f not in self._sort_keys:
                base = f.base if isinstance(f, sympy.Pow) else f
                rank = (4 if isinstance(base, UnitMean) else 0 if _has_adjoint(f)
                        else 1 if isinstance(base, sympy.Symbol)
                        else 2 if isinstance(base, Elementwise) else 3)
                self._sort_keys[f] = rank, sympy.default_sort_key(f)
            return self._sort_keys[f]

        vectors, scalars = [], []
        for f in sorted(factors, key=key):
            text, prec = self._print(f, step)
            base = f.base if isinstance(f, sympy.Pow) else f
            # a learned scalar (gamma_) is a number too: γ δc, not γ ⊙ δc
            scalar = isinstance(base, UnitMean) or (isinstance(base, sympy.Symbol)
                                                    and base.name.startswith("gamma_"))
            (scalars if scalar else vectors).append(_wrap(text, prec < PROD))
        return " ".join(([r" \odot ".join(vectors)] if vectors else []) + scalars)

    def _pow(self, e: sympy.Pow, step: int) -> tuple[str, float]:
        base, exp = e.args
        if exp == sympy.Rational(1, 2):
            return rf"\sqrt{{{self._print(base, step)[0]}}}", ATOM
        if exp.is_Number and exp < 0:
            return rf"\frac{{1}}{{{self._print(base ** -exp, step)[0]}}}", ATOM
        power = str(exp) if exp.is_Integer and 0 <= exp < 10 else f"{{{self._print(exp, 0)[0]}}}"
        resolved, later = self._resolve(base)
        name = type(resolved).__name__
        if isinstance(resolved, Elementwise) and name in ln.POWER_ON_NAME:
            # tanh^2(c_t), as the square of a function is usually written
            (arg,) = resolved.args
            inner = self._print(arg, step + later)[0]
            return rf"{ln.POWER_ON_NAME[name]}^{power}({inner})", ATOM
        text, prec = self._print(base, step)
        return _wrap(text, prec < ATOM) + "^" + power, ATOM


def _wrap(text: str, needed: bool) -> str:
    if not needed:
        return text
    # parentheses as tall as a fraction inside them (terms never break inside)
    return rf"\left({text}\right)" if r"\frac" in text else f"({text})"

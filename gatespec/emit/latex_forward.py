"""Forward equations in the article's notation, printed from the syntax tree.

The syntax tree keeps what the user wrote: the order of the factors, the grouping,
`linear()` with its operands. SymPy would sort `f * c` into `c f`, so the forward
equations never go through it. Parentheses are printed where the tree needs them,
which is where the user wrote them, less the redundant ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from gatespec import ir
from gatespec.emit import latex_notation as ln
from gatespec.emit.latex_notation import ATOM, MATVEC, PROD, SUM, UNARY
from gatespec.errors import EmitError
from gatespec.parse import ast


@dataclass(frozen=True)
class Equation:
    lhs: str
    rhs: list[str]  # the terms of the right-hand side, each with its sign: ["a", "+ b", "- c"]


class ForwardPrinter:
    """Prints expressions of one cell file; also used for the operands in weight gradients."""

    def __init__(self, cell_file: ast.CellFile, cell: ir.Cell):
        self.cf = cell_file
        self.cell = cell
        self.names = ln.Names(cell.latex)
        self.states = {s.label for s in cell.states}

    def var(self, v: ast.Var) -> str:
        previous = v.name in self.states and not v.primed
        return self.names.var(v.name, -1 if previous else 0)

    def expr(self, e: ast.Expr) -> str:
        return self._print(e)[0]

    def _print(self, e: ast.Expr) -> tuple[str, float]:
        """(text, precedence) of an expression."""
        if isinstance(e, ast.Number):
            return ln.number(e.text), ATOM
        if isinstance(e, ast.Var):
            return self.var(e), ATOM
        if isinstance(e, ast.Neg):
            text, prec = self._print(e.operand)
            return "-" + (f"({text})" if prec <= PROD else text), UNARY
        if isinstance(e, ast.BinOp):
            return self._binop(e)
        if isinstance(e, ast.Pow):
            return self._pow(e)
        return self._call(e)

    def _pow(self, e: ast.Pow) -> tuple[str, float]:
        """u², element by element, written as the backward pages write powers."""
        base, prec = self._print(e.base)
        if prec < ATOM or isinstance(e.base, ast.Call | ast.Pow):
            base = f"({base})"
        k = abs(e.exponent)
        power = base + (f"^{k}" if k < 10 else f"^{{{k}}}")
        return (rf"\frac{{1}}{{{power}}}" if e.exponent < 0 else power), ATOM

    def _binop(self, e: ast.BinOp) -> tuple[str, float]:
        left, lp = self._print(e.left)
        right, rp = self._print(e.right)
        if e.op == "/":  # a fraction groups both sides itself
            return rf"\frac{{{left}}}{{{right}}}", ATOM
        if e.op in "+-":
            # the grammar nests a chain of + and - to the left: a right operand at the
            # same level was grouped by the user; a negation reads better enclosed
            if rp <= SUM or rp == UNARY:
                right = f"({right})"
            return f"{left} {e.op} {right}", SUM
        # a product: a matrix-vector product inside ⊙ is enclosed, so that W x ⊙ y is
        # never read as W (x ⊙ y)
        if lp < PROD:
            left = f"({left})"
        if rp <= PROD or rp == UNARY:
            right = f"({right})"
        if _constant(e.left) or _constant(e.right) or _scalar(e.left) or _scalar(e.right):
            # a number scales a vector: 2 h, not 2 ⊙ h
            return (f"{left} {right}" if _constant(e.left) or _scalar(e.left)
                else rf"{left} \cdot {right}"), PROD
        return rf"{left} \odot {right}", PROD

    def _call(self, c: ast.Call) -> tuple[str, float]:
        if c.func == "linear":
            return self._linear(c)
        if c.func == "diag":
            (weight,) = self._params(c)
            operand, prec = self._print(c.args[0])
            if prec <= PROD or prec == UNARY:
                operand = f"({operand})"
            return rf"{ln.Names.param(weight)} \odot {operand}", PROD
        if c.func in ("bias", "scalar"):  # b_z, γ_h: the parameter itself
            (param,) = self._params(c)
            return ln.Names.param(param), ATOM
        if c.func == "identity":
            return self._print(c.args[0])
        if c.func in ir.ROW_KINDS:  # LN_{α,β}(u): its parameters as subscripts
            params = self._params(c) if ir.ROW_KINDS[c.func].scaled else ()
            return ln.layer_norm(params, self.expr(c.args[0]), c.func), ATOM
        if c.func in ("zoneout", "dropout"):  # the mask as a vector of the step
            (mask,) = self._params(c)
            m = self.names.var(mask, 0)
            values = []
            for a in c.args[:2 if c.func == "zoneout" else 1]:
                text, prec = self._print(a)
                values.append(f"({text})" if prec <= PROD or prec == UNARY else text)
            if c.func == "dropout":
                return rf"{values[0]} \odot {m}", PROD
            return rf"{m} \odot {values[0]} + (1 - {m}) \odot {values[1]}", SUM
        return ln.function(c.func, [self.expr(a) for a in c.args]), ATOM

    def _linear(self, c: ast.Call) -> tuple[str, float]:
        params = self._params(c)
        terms = []
        for weight, operand in zip(params, c.args, strict=False):
            terms.append(ln.weight(weight, self.cell.params) + self.operand(operand))
        terms.extend(ln.Names.param(p) for p in params[len(c.args):])
        return " + ".join(terms), SUM if len(terms) > 1 else MATVEC

    def operand(self, a: ast.Expr) -> str:
        """A linear map's operand: a name or a function reads on its own, anything
        else is enclosed: W_nh (r ⊙ h)."""
        text = self.expr(a)
        plain = isinstance(a, ast.Var) or (isinstance(a, ast.Call)
                                           and a.func not in ("linear", "diag"))
        return text if plain else f"({text})"

    def _params(self, c: ast.Call) -> tuple[str, ...]:
        try:
            return self.cell.call_params[(c.span.line, c.span.column)]
        except KeyError:
            raise EmitError(f"no parameters recorded for {c.func}() at line {c.span.line}, "
                            f"column {c.span.column}") from None

    def equations(self) -> list[Equation]:
        """One equation per statement, in dependency order."""
        out = []
        for stmt in dependency_order(self.cf.statements):
            target = self.names.var(stmt.target.name, 0)
            out.append(Equation(target, split_terms(stmt.value, self)))
        return out


def _scalar(e: ast.Expr) -> bool:
    """A learned scalar, scalar(), or numbers and scalars combined (1 - γ): it scales a
    vector as a number does."""
    if isinstance(e, ast.Call):
        return e.func == "scalar"
    if isinstance(e, ast.Neg):
        return _scalar(e.operand)
    if isinstance(e, ast.BinOp):
        return (_scalar(e.left) or _constant(e.left)) and (_scalar(e.right) or _constant(e.right))
    return False


def _constant(e: ast.Expr) -> bool:
    """True for an expression of numbers only (a scalar, not a vector)."""
    if isinstance(e, ast.Number):
        return True
    if isinstance(e, ast.Neg):
        return _constant(e.operand)
    if isinstance(e, ast.Pow):
        return _constant(e.base)
    if isinstance(e, ast.BinOp):
        return _constant(e.left) and _constant(e.right)
    return False


def split_terms(e: ast.Expr, printer: ForwardPrinter) -> list[str]:
    """The top-level terms of a right-hand side, so a long line can break between them."""
    if isinstance(e, ast.BinOp) and e.op in "+-":
        left = split_terms(e.left, printer)
        right, prec = printer._print(e.right)
        if prec <= SUM or prec == UNARY:
            right = f"({right})"
        return [*left, f"{e.op} {right}"]
    return [printer.expr(e)]


def reads(e: ast.Expr):
    """The variables an expression reads, as labels (`c'` for a new value)."""
    if isinstance(e, ast.Var):
        yield e.label
    elif isinstance(e, ast.BinOp):
        yield from reads(e.left)
        yield from reads(e.right)
    elif isinstance(e, ast.Neg):
        yield from reads(e.operand)
    elif isinstance(e, ast.Pow):
        yield from reads(e.base)
    elif isinstance(e, ast.Call):
        for a in e.args:
            yield from reads(a)


def dependency_order(statements: list[ast.Assign]) -> list[ast.Assign]:
    """Source order when it is already a valid order, else the earliest ready statement
    first (the builder has rejected cycles)."""
    defined_by = {s.target.label: s for s in statements}
    done: set[str] = set()
    pending = list(statements)
    out = []
    while pending:
        for s in pending:
            if all(r in done or r not in defined_by for r in reads(s.value)):
                break
        else:
            raise EmitError("the statements have no valid order")
        pending.remove(s)
        done.add(s.target.label)
        out.append(s)
    return out

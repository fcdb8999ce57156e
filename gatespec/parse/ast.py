"""The syntax tree of a cell file. Every node keeps the span it came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

from gatespec.errors import Span


@dataclass(frozen=True)
class Number:
    value: Fraction
    text: str
    span: Span


@dataclass(frozen=True)
class Var:
    name: str
    primed: bool
    span: Span

    @property
    def label(self) -> str:
        return self.name + ("'" if self.primed else "")


@dataclass(frozen=True)
class BinOp:
    op: str  # one of + - * /
    left: Expr
    right: Expr
    span: Span  # the operator


@dataclass(frozen=True)
class Neg:
    operand: Expr
    span: Span


@dataclass(frozen=True)
class Pow:
    """`base ** exponent`: the exponent is an integer constant, checked by the parser."""

    base: Expr
    exponent: int
    span: Span  # the operator


@dataclass(frozen=True)
class Attr:
    """`W_zh.T` as an option's value (weight=): a parameter name and what follows its dot."""

    name: str
    attr: str  # the rest after the first dot: `T`, or `T.T` (refused when built)
    span: Span


@dataclass(frozen=True)
class KwArg:
    name: str
    value: Expr | Attr
    span: Span


@dataclass(frozen=True)
class Call:
    func: str
    args: tuple[Expr, ...]
    kwargs: tuple[KwArg, ...]
    span: Span  # the function name


Expr = Number | Var | BinOp | Neg | Pow | Call


def walk(e: Expr, keywords: bool = True):
    """Every subexpression of `e`, `e` first, operands left to right (and keyword values,
    unless keywords=False)."""
    yield e
    if isinstance(e, Call):
        for a in (*e.args, *((k.value for k in e.kwargs) if keywords else ())):
            yield from walk(a, keywords)
    elif isinstance(e, BinOp):
        yield from walk(e.left, keywords)
        yield from walk(e.right, keywords)
    elif isinstance(e, Neg):
        yield from walk(e.operand, keywords)
    elif isinstance(e, Pow):
        yield from walk(e.base, keywords)


@dataclass(frozen=True)
class VarDecl:
    name: str
    size: str | None
    span: Span
    size_span: Span | None = None


@dataclass(frozen=True)
class Assign:
    target: Var
    value: Expr
    span: Span
    # `y[out] = ...`: the size the intermediate is declared with, and where
    size: str | None = None
    size_span: Span | None = None


@dataclass
class CellFile:
    """A parsed cell file: declarations and statements in source order."""

    path: str
    source: str
    name: str | None = None
    name_span: Span | None = None
    description: str = ""
    inputs: list[VarDecl] = field(default_factory=list)
    states: list[VarDecl] = field(default_factory=list)
    output: Var | None = None
    latex: dict[str, tuple[str, Span]] = field(default_factory=dict)
    # framework layer -> (gate names in its weight order, span of the layer name)
    equivalents: dict[str, tuple[tuple[str, ...], Span]] = field(default_factory=dict)
    statements: list[Assign] = field(default_factory=list)
    header: str = ""  # the leading comment block, kept for documentation

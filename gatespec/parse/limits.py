"""Limits on what a cell file may hold: names, numbers, nesting. Each is generous, keeps
every later stage cheap (and clear of Python's limits: the 4,300-digit int/str rule,
recursion), and is refused with the place, never a traceback. Nothing here recurses on
the syntax tree: it may be far too deep for that."""

from __future__ import annotations

import sys
from collections.abc import Callable
from fractions import Fraction

import lark

from gatespec.errors import ParseError, Span

_FLOAT_MAX = Fraction(sys.float_info.max)
_FLOAT_MIN = Fraction(sys.float_info.min)  # smallest normal float64
# Generous limits that keep every later step cheap and clear of Python's 4,300-digit
# int/str limit; past them the file is refused with the place, not a traceback.
MAX_SIGNIFICANT_DIGITS = 1000
MAX_NAME_LENGTH = 64  # a cell name also names files (255 bytes at most on most systems)


def check_name_lengths(tree: lark.Tree, source: str, path: str) -> None:
    long, stack = [], [tree]
    while stack:  # iteratively: the tree may be too deep for lark's recursive scan_values
        node = stack.pop()
        if isinstance(node, lark.Tree):
            stack.extend(node.children)
        elif isinstance(node, lark.Token) and node.type == "NAME" and len(node) > MAX_NAME_LENGTH:
            long.append(node)
    if long:
        tok = min(long, key=lambda t: (t.line, t.column))
        raise ParseError(f"this name is {len(tok)} characters long; names have at most "
                         f"{MAX_NAME_LENGTH}", Span(path, tok.line, tok.column, source, len(tok)))


# Every stage walks expressions recursively (and so does SymPy), and generated Python
# nests parentheses as the statement does: deep nesting is refused at the parser.
# Levels are counted as SymPy nests: a call, a sign, an operand of another operator is one
# level; the right operand of - and / two (a - b is a + (-1) * b, a / b is a * b**-1); a
# chain `a + b - c` or `a * b / c` is one sum or product.
MAX_DEPTH = 100
# `u ** k`: kernels print a power as k factors, and nested powers multiply (SymPy writes
# (u**16)**16 as u**256), so the builder bounds the exponent of the result as well
MAX_EXPONENT = 16
MAX_LENGTH = 400  # operators in a row, `a * b * ... * z`, counting the nested ones


def check_depth(root: lark.Tree, span_of: Callable[[lark.Tree], Span]) -> None:
    """Refuse an expression nested deeper than MAX_DEPTH (or with more than MAX_LENGTH
    operators in a row), iteratively: the tree may be far too deep to recurse on."""
    stack = [(root, 1, 1)]  # node, nesting depth, operators above it and itself
    while stack:
        node, depth, raw = stack.pop()
        if not isinstance(node, lark.Tree) or node.data in ("var", "number"):
            continue
        if depth > MAX_DEPTH:
            raise ParseError(f"expressions nested deeper than {MAX_DEPTH} levels: name a part "
                             "of it in its own statement", span_of(node))
        if raw > MAX_LENGTH:
            raise ParseError(f"more than {MAX_LENGTH} operations in a row: split the statement "
                             "into several", span_of(node))
        if node.data == "binop":
            left, op, right = node.children
            kind = "+" if str(op) in "+-" else "*"
            # the left operand of `a + b + c` continues the chain: build flattens it
            same = isinstance(left, lark.Tree) and left.data == "binop" and (
                "+" if str(left.children[1]) in "+-" else "*") == kind
            stack.append((left, depth if same else depth + 1, raw + 1))
            stack.append((right, depth + (2 if str(op) in "-/" else 1), raw + 1))
        else:
            stack.extend((c, depth + 1, raw + 1) for c in node.children)


def number_value(text: str, span: Span) -> Fraction:
    """The exact value of a NUMBER token, computed from its digits so that neither
    thousands of leading zeros nor a huge exponent reach int() whole."""
    mantissa, _, exponent = text.lower().partition("e")
    whole, _, frac = mantissa.partition(".")
    digits = (whole + frac).lstrip("0")
    if not digits:  # zero, whatever its exponent
        return Fraction(0)
    significant = digits.rstrip("0")
    power = len(digits) - len(significant) - len(frac)  # value = significant * 10**power
    if len(significant) > MAX_SIGNIFICANT_DIGITS:
        raise ParseError(f"this number has {len(significant)} significant digits; at most "
                         f"{MAX_SIGNIFICANT_DIGITS} are supported (float64 keeps 17)", span)
    shown = f"number {text}" if len(text) <= 40 else "this number"
    out_of_range = ParseError(f"{shown} is out of range for float64 "
                              "(about 2.2e-308 to 1.8e308 in magnitude)", span)
    negative = exponent.startswith("-")
    exp_digits = exponent.lstrip("+-").lstrip("0") or "0"
    if len(exp_digits) > 5:  # 10**±100000 is far outside float64 whatever the digits
        raise out_of_range
    power += -int(exp_digits) if negative else int(exp_digits)
    if not -330 <= len(significant) + power <= 330:  # outside float64 by decimal length
        raise out_of_range
    value = (Fraction(int(significant) * 10**power) if power >= 0
             else Fraction(int(significant), 10**-power))
    if not _FLOAT_MIN <= value <= _FLOAT_MAX:
        raise out_of_range
    return value

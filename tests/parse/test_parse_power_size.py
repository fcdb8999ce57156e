"""`u ** k` and `y[size] = ...`: how they parse, and their syntax errors."""

import pytest
from test_parse_errors import HEAD, assert_parse_error, src

from gatespec.parse import ast, parse


def _value(line: str) -> ast.Expr:
    return parse(src(*HEAD, line)).statements[0].value


def test_power_binds_tighter_than_minus_and_times():
    e = _value("h' = -u**2 * 3")  # -(u**2) * 3, as in Python
    assert isinstance(e, ast.BinOp) and e.op == "*"
    assert isinstance(e.left, ast.Neg) and isinstance(e.left.operand, ast.Pow)
    assert e.left.operand.exponent == 2


@pytest.mark.parametrize("text, k", [("u**-1", -1), ("u ** (3)", 3), ("u**--2", 2),
                                     ("u**16", 16), ("u**0", 0)])
def test_power_exponents(text, k):
    e = _value(f"h' = {text}")
    assert isinstance(e, ast.Pow) and e.exponent == k and e.base == ast.Var("u", False, e.base.span)


def test_power_of_a_sum_needs_parentheses():
    e = _value("h' = (a + b)**2")
    assert isinstance(e, ast.Pow) and isinstance(e.base, ast.BinOp)


def test_power_is_one_level_of_nesting():
    # 101 nested powers are 101 levels deep: refused like any deep nesting
    assert_parse_error(src(*HEAD, "h' = " + "(" * 101 + "h" + ")**2" * 101),
                       "nested deeper than 100 levels", 4, 106, "(h)")


def test_own_size_of_an_intermediate():
    stmt = parse(src(*HEAD, "y[out] = linear(h)")).statements[0]
    assert stmt.size == "out" and stmt.size_span.column == 3
    assert stmt.target.label == "y"


CASES = [
    ("fractional_exponent", src(*HEAD, "h' = h**0.5"),
     "the exponent of ** must be an integer constant", 4, 9, "0.5"),
    ("variable_exponent", src(*HEAD, "h' = h**x"),
     "the exponent of ** must be an integer constant", 4, 9, "x"),
    ("expression_exponent", src(*HEAD, "h' = h**(1 + 1)"),
     "the exponent of ** must be an integer constant", 4, 10, "1 + 1"),
    ("huge_exponent", src(*HEAD, "h' = h**17"),
     "the exponent 17 is too large: exponents are at most 16", 4, 9, "17"),
    ("huge_negative_exponent", src(*HEAD, "h' = h**-100"),
     "the exponent -100 is too large", 4, 9, "-100"),
    ("power_without_exponent", src(*HEAD, "h' = h**"),
     "unexpected end of file", 4, 9, None),
    ("three_stars", src(*HEAD, "h' = h***2"),
     "unexpected '*'", 4, 9, "*2"),
    ("size_on_a_new_value", src(*HEAD, "h'[out] = linear(x, h)"),
     "'h'' is a state's next value: its size is the state's", 4, 4, "out"),
    ("size_not_a_name", src(*HEAD, "y[3] = linear(x, h)"),
     "unexpected '3'; expected a name", 4, 3, "3"),
]


@pytest.mark.parametrize("source, message, line, column, at",
                         [pytest.param(*c[1:], id=c[0]) for c in CASES])
def test_parse_error(source, message, line, column, at):
    assert_parse_error(source, message, line, column, at)

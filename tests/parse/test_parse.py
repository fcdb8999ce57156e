"""The parser on valid text: the syntax tree it returns and the places it records."""

from fractions import Fraction

import pytest

from gatespec import cells
from gatespec.parse import ast, parse


def src(*lines: str) -> str:
    return "\n".join(lines) + "\n"


LSTM = src(
    "# LSTM, written for the parser tests",
    "#   second header line",
    "cell lstm \"an LSTM\"",
    "input x",
    "state h, c[units]",
    "output h",
    "latex g \"\\bar{c}\"",
    "",
    "i = sigmoid(linear(x, h))",
    "f = sigmoid(linear(x, h))",
    "g = tanh(linear(x, h))",
    "o = sigmoid(linear(x, h))",
    "c' = f * c + i * g",
    "h' = o * tanh(c')",
)


def test_declarations():
    cf = parse(LSTM, "lstm.gate")
    assert cf.path == "lstm.gate"
    assert cf.source == LSTM
    assert cf.name == "lstm"
    assert (cf.name_span.line, cf.name_span.column) == (3, 6)
    assert cf.description == "an LSTM"
    assert [(d.name, d.size) for d in cf.inputs] == [("x", None)]
    assert [(d.name, d.size) for d in cf.states] == [("h", None), ("c", "units")]
    h, c = cf.states
    assert (h.span.line, h.span.column) == (5, 7)
    assert (c.span.line, c.span.column) == (5, 10)
    assert (c.size_span.line, c.size_span.column) == (5, 12)
    assert h.size_span is None
    assert cf.output.name == "h" and not cf.output.primed
    assert (cf.output.span.line, cf.output.span.column) == (6, 8)
    assert cf.latex["g"][0] == "\\bar{c}"
    assert (cf.latex["g"][1].line, cf.latex["g"][1].column) == (7, 7)


def test_header_comment_is_kept():
    cf = parse(LSTM)
    assert cf.header == "LSTM, written for the parser tests\n  second header line"


def test_default_path():
    cf = parse(LSTM)
    assert cf.path == "<cell>"


def test_statements_keep_source_order_and_targets():
    cf = parse(LSTM)
    assert [s.target.label for s in cf.statements] == ["i", "f", "g", "o", "c'", "h'"]
    assert [s.span.line for s in cf.statements] == [9, 10, 11, 12, 13, 14]
    cprime = cf.statements[4].target
    assert cprime.primed and cprime.name == "c"
    assert (cprime.span.line, cprime.span.column, cprime.span.length) == (13, 1, 2)


def test_expression_tree_and_spans():
    cf = parse(LSTM)
    value = cf.statements[4].value  # f * c + i * g
    assert isinstance(value, ast.BinOp) and value.op == "+"
    assert (value.span.line, value.span.column) == (13, 12)  # the operator
    left, right = value.left, value.right
    assert isinstance(left, ast.BinOp) and left.op == "*"
    assert isinstance(right, ast.BinOp) and right.op == "*"
    assert [left.left.name, left.right.name, right.left.name, right.right.name] == list("fcig")
    assert (right.right.span.line, right.right.span.column) == (13, 18)

    h_value = cf.statements[5].value  # o * tanh(c')
    call = h_value.right
    assert isinstance(call, ast.Call) and call.func == "tanh"
    assert (call.span.column, call.span.length) == (10, 4)
    (arg,) = call.args
    assert isinstance(arg, ast.Var) and arg.primed and arg.label == "c'"
    assert (arg.span.column, arg.span.length) == (15, 2)


def test_precedence_and_associativity():
    cf = parse(src("a = b - c - d / e / f * g"))
    e = cf.statements[0].value
    # (b - c) - ((d / e) / f) * g
    assert e.op == "-" and e.left.op == "-"
    assert e.right.op == "*" and e.right.left.op == "/" and e.right.left.left.op == "/"


def test_parentheses_group():
    e = parse(src("a = (b + c) * d")).statements[0].value
    assert e.op == "*" and e.left.op == "+"


def test_unary_minus_and_plus():
    e = parse(src("a = -b * +c")).statements[0].value
    assert isinstance(e, ast.BinOp) and e.op == "*"
    assert isinstance(e.left, ast.Neg) and e.left.operand.name == "b"
    assert (e.left.span.line, e.left.span.column) == (1, 5)
    assert isinstance(e.right, ast.Var) and e.right.name == "c"  # unary plus disappears
    nested = parse(src("a = --b")).statements[0].value
    assert isinstance(nested, ast.Neg) and isinstance(nested.operand, ast.Neg)


@pytest.mark.parametrize(
    "text, value",
    [
        ("1", Fraction(1)),
        ("0.5", Fraction(1, 2)),
        ("1.", Fraction(1)),
        (".25", Fraction(1, 4)),
        ("1e-3", Fraction(1, 1000)),
        ("2.5E+2", Fraction(250)),
        ("10", Fraction(10)),
        ("00012.3400", Fraction(617, 50)),
        ("0e999999999", Fraction(0)),
        ("1e-307", Fraction(1, 10**307)),
        ("0" * 5000 + "7", Fraction(7)),  # past Python's 4,300-digit int/str limit
        ("7." + "0" * 5000, Fraction(7)),
        ("1e+" + "0" * 5000 + "5", Fraction(10**5)),
        ("0." + "3" * 1000, Fraction(int("3" * 1000), 10**1000)),
    ],
    ids=lambda v: v[:12] if isinstance(v, str) else None,
)
def test_numbers_are_exact(text, value):
    n = parse(src(f"a = {text}")).statements[0].value
    assert isinstance(n, ast.Number)
    assert n.value == value and n.text == text


def test_call_arguments_and_keywords():
    cf = parse(src("h' = linear(o * tanh(c'), x, bias=false)"))
    call = cf.statements[0].value
    assert call.func == "linear"
    assert len(call.args) == 2 and isinstance(call.args[0], ast.BinOp)
    (kw,) = call.kwargs
    assert kw.name == "bias" and isinstance(kw.value, ast.Var) and kw.value.name == "false"
    assert (kw.span.line, kw.span.column) == (1, 30)


def test_call_without_arguments():
    call = parse(src("a = diag()")).statements[0].value
    assert call.func == "diag" and call.args == () and call.kwargs == ()


def test_comments_and_blank_lines_anywhere():
    text = (
        "\n\n# header\n\n"
        "cell c   # trailing comment\n"
        "   \n"
        "input x# no space before the comment\n"
        "\t\n"
        "# between\n"
        "state h  \n"
        "\n\n\n"
        "  h' = tanh(linear(x, h))   # indented statement\n"
        "# a last comment without a newline"
    )
    cf = parse(text)
    assert cf.name == "c"
    assert [d.name for d in cf.inputs] == ["x"]
    assert [d.name for d in cf.states] == ["h"]
    (stmt,) = cf.statements
    assert (stmt.target.span.line, stmt.target.span.column) == (14, 3)


def test_no_trailing_newline():
    cf = parse("cell c\ninput x\nstate h\nh' = tanh(linear(x, h))")
    assert len(cf.statements) == 1


def test_windows_line_endings():
    cf = parse(LSTM.replace("\n", "\r\n"))
    assert [s.target.label for s in cf.statements] == ["i", "f", "g", "o", "c'", "h'"]
    assert cf.statements[5].span.line == 14


def test_backslash_continues_a_line():
    cf = parse(src("cell c", "input x", "state h", "h' = tanh(linear(x, \\", "    h))", "output h"))
    (stmt,) = cf.statements
    call = stmt.value.args[0]
    assert [a.name for a in call.args] == ["x", "h"]
    assert (call.args[1].span.line, call.args[1].span.column) == (5, 5)
    assert cf.output.span.line == 6


def test_empty_and_comment_only_files_parse():
    for text in ("", "\n\n", "# only a comment", "# a\n# b\n"):
        cf = parse(text)
        assert cf.name is None and cf.statements == [] and cf.inputs == []


def test_description_is_optional_and_stripped():
    assert parse(src("cell c")).description == ""
    assert parse(src('cell c "  spaced out  "')).description == "spaced out"


def test_several_declarations_accumulate():
    cf = parse(src("state a", "state b[n], c"))
    assert [(d.name, d.size) for d in cf.states] == [("a", None), ("b", "n"), ("c", None)]


@pytest.mark.parametrize("name", cells.names())
def test_builtin_cells_parse(name):
    cf = parse(cells.source(name), f"{name}.gate")
    assert cf.name == name
    assert cf.description
    assert cf.header
    assert cf.inputs and cf.states and cf.statements

"""Syntax errors: message, exact place, and the rendered source line with its caret."""

import pytest

from gatespec.errors import ParseError
from gatespec.parse import parse

PATH = "bad.gate"
HEAD = ("cell c", "input x", "state h")  # statements start on line 4


def src(*lines: str, newline: bool = True) -> str:
    return "\n".join(lines) + ("\n" if newline else "")


def assert_parse_error(source, message, line, column, at=None):
    """`at`: the text the column points to in its line (None: the end of the line)."""
    with pytest.raises(ParseError) as info:
        parse(source, PATH)
    err = info.value
    assert message in err.message
    assert (err.span.line, err.span.column) == (line, column)
    text_line = source.splitlines()[line - 1]
    if at is None:
        assert column == len(text_line.rstrip()) + 1
    else:
        assert text_line[column - 1:].startswith(at)
    rendered = err.render().splitlines()
    assert rendered[0] == f"{PATH}:{line}:{column}: error: {err.message}"
    assert rendered[1] == "    " + text_line
    assert rendered[2].startswith(" " * (4 + column - 1) + "^")
    assert rendered[2].strip(" ~") == "^"
    return err


CASES = [
    # unexpected token
    ("extra_paren", src(*HEAD, "h' = tanh(linear(x, h)) )"),
     "unexpected ')'; expected end of line", 4, 25, ")"),
    ("operator_first", src(*HEAD, "h' = * h"),
     "unexpected '*'", 4, 6, "*"),
    ("missing_equals", src(*HEAD, "h' tanh(linear(x, h))"),
     "unexpected 'tanh'; expected '='", 4, 4, "tanh"),
    ("double_prime", src(*HEAD, "h'' = tanh(linear(x, h))"),
     "unexpected '''; expected '='", 4, 3, "'"),
    ("double_prime_in_expr", src(*HEAD, "h' = tanh(linear(x, h)) + h''"),
     "unexpected '''", 4, 29, "'"),
    ("number_as_target", src(*HEAD, "1 = h"),
     "unexpected '1'", 4, 1, "1"),
    ("empty_parentheses", src(*HEAD, "h' = ()"),
     "unexpected ')'", 4, 7, ")"),
    ("two_operators", src(*HEAD, "h' = h + * h"),
     "unexpected '*'", 4, 10, "*"),
    ("missing_comma", src(*HEAD, "h' = tanh(linear(x h))"),
     "unexpected 'h'", 4, 20, "h))"),
    ("string_in_expression", src(*HEAD, 'h\' = "a"'),
     'unexpected a "quoted string"', 4, 6, '"a"'),
    ("keyword_as_target", src(*HEAD, "state = 1"),
     "unexpected '='; expected a name", 4, 7, "="),
    ("output_primed", src(*HEAD, "output h'"),
     "unexpected '''; expected end of line", 4, 9, "'"),
    ("latex_primed", src(*HEAD, 'latex h\' "a"'),
     "unexpected '''", 4, 8, "'"),
    ("cell_without_name", src('cell "abc"'),
     'unexpected a "quoted string"; expected a name', 1, 6, '"abc"'),
    ("size_not_closed", src("cell c", "input x[n", "state h"),
     "unexpected end of line; expected ']'", 2, 10, None),
    ("two_statements_on_a_line", src(*HEAD, "a = x b = h"),
     "unexpected 'b'", 4, 7, "b ="),
    ("missing_value", src(*HEAD, "h' =", "output h"),
     "unexpected end of line", 4, 5, None),
    ("missing_value_at_eof", src(*HEAD, "h' ="),
     "unexpected end of file", 4, 5, None),
    ("cell_line_without_name_at_eof", src("cell"),
     "unexpected end of file; expected a name", 1, 5, None),
    # unexpected character
    ("dollar", src(*HEAD, "h' = h $ 2"),
     "unexpected character '$'", 4, 8, "$"),
    ("at_sign", src(*HEAD, "h' = x @ h"),
     "unexpected character '@'", 4, 8, "@"),
    ("first_column", src(*HEAD, "!h' = h"),
     "unexpected character '!'", 4, 1, "!"),
    ("non_ascii", src(*HEAD, "h' = tanh(linear(x, h)) · 2"),
     "unexpected character '·'", 4, 25, "·"),
    ("unterminated_string", src('cell c "abc', "input x"),
     "unexpected character '\"'", 1, 8, '"abc'),
    ("brace", src(*HEAD, "h' = tanh{x}"),
     "unexpected character '{'", 4, 10, "{"),
    ("semicolon", src("cell c; input x"),
     "unexpected character ';'", 1, 7, ";"),
    # unclosed parenthesis / end of file
    ("unclosed_at_eof", src(*HEAD, "h' = tanh(linear(x, h)", newline=False),
     "unexpected end of file; expected ')', ','", 4, 23, None),
    ("unclosed_at_eof_with_newline", src(*HEAD, "h' = tanh(linear(x, h)"),
     "unexpected end of file; expected ')', ','", 4, 23, None),
    ("unclosed_before_blank_lines", src(*HEAD, "h' = tanh(linear(x, h)", "", "  ", ""),
     "unexpected end of file; expected ')'", 4, 23, None),
    ("unclosed_mid_file", src(*HEAD, "h' = tanh(linear(x, h)", "output h"),
     "unexpected end of line; expected ')', ','", 4, 23, None),
    ("operator_at_eof", src(*HEAD, "h' = h +", newline=False),
     "unexpected end of file", 4, 9, None),
    ("continuation_at_eof", src(*HEAD, "h' = tanh(\\"),
     "unexpected end of file", 4, 12, None),
    ("continuation_at_eof_no_newline", src(*HEAD, "h' = tanh(\\", newline=False),
     "unexpected end of file", 4, 12, None),
    ("unclosed_then_comment", src(*HEAD, "h' = tanh(x   # comment"),
     "unexpected end of file", 4, 24, None),
    # bias() and scalar(): an empty init=, an operand after it
    ("empty_init", src(*HEAD, "h' = tanh(linear(x, h, bias=false)) + bias(init=)"),
     "unexpected ')'", 4, 49, ")"),
    ("operand_after_init", src(*HEAD, "h' = h * scalar(init=1, h)"),
     "an operand cannot follow a keyword argument", 4, 25, "h)"),
]


@pytest.mark.parametrize("source, message, line, column, at",
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_syntax_error(source, message, line, column, at):
    assert_parse_error(source, message, line, column, at)


def test_unexpected_character_names_a_bare_carriage_return():
    with pytest.raises(ParseError) as info:
        parse("cell c\rinput x\n", PATH)
    err = info.value
    assert err.message == "unexpected character '\\r'"
    assert (err.span.line, err.span.column) == (1, 7)
    # the control character is shown as U+FFFD, so the caret still lines up under it
    assert err.render().splitlines()[1:] == ["    cell c\ufffdinput x", "          ^"]


def test_expected_list_is_left_out_when_long():
    with pytest.raises(ParseError) as info:
        parse(src(*HEAD, "h' = h h"), PATH)
    assert info.value.message == "unexpected 'h'"


def test_keyword_tokens_are_quoted():
    assert_parse_error(src("cell c state"), "unexpected 'state'; expected", 1, 8, "state")
    assert_parse_error(src("cell c", "state h output"),
                       "unexpected 'output'; expected ',', '[', end of line", 2, 9, "output")


def test_cell_named_twice():
    err = assert_parse_error(src("cell c", "cell d", "input x"), "the cell is named twice",
                             2, 6, "d")
    assert err.stage == "parse"


def test_output_declared_twice():
    assert_parse_error(src(*HEAD, "output h", "output  h", "h' = tanh(linear(x, h))"),
                       "the output is declared twice", 5, 9, "h")


def test_latex_given_twice():
    assert_parse_error(src(*HEAD, 'latex h "a"', 'latex h "b"', "h' = tanh(linear(x, h))"),
                       "the latex of 'h' is given twice", 5, 7, "h")


def test_error_on_continued_line_points_into_that_line():
    assert_parse_error(src(*HEAD, "h' = tanh(linear(x, \\", "   h $))"),
                       "unexpected character '$'", 5, 6, "$")


def test_windows_line_endings_keep_columns():
    text = src(*HEAD, "h' = h $ 2").replace("\n", "\r\n")
    assert_parse_error(text, "unexpected character '$'", 4, 8, "$")


def test_only_the_first_error_is_reported():
    assert_parse_error(src(*HEAD, "a = )", "b = $"), "unexpected ')'", 4, 5, ")")


def test_str_is_render():
    with pytest.raises(ParseError) as info:
        parse(src(*HEAD, "h' = h $ 2"), PATH)
    assert str(info.value) == info.value.render()
    assert info.value.render() == (
        "bad.gate:4:8: error: unexpected character '$'\n"
        "    h' = h $ 2\n"
        "           ^"
    )


def test_line_separator_in_a_comment_does_not_shift_the_source_line():
    text = src("# note\u2028more", *HEAD, "h' = h $ 2")
    with pytest.raises(ParseError) as info:
        parse(text, PATH)
    assert (info.value.span.line, info.value.span.column) == (5, 8)
    assert info.value.render().splitlines()[1] == "    h' = h $ 2"


@pytest.mark.parametrize("number, message", [
    ("9" * 5000, "has 5000 significant digits; at most 1000"),
    ("0." + "9" * 5000, "has 5000 significant digits; at most 1000"),
    ("1e" + "9" * 5000, "this number is out of range for float64"),
    ("1e309", "number 1e309 is out of range for float64"),
    ("1e-400", "number 1e-400 is out of range for float64"),
])
def test_numbers_past_float64_or_int_limits_are_parse_errors(number, message):
    assert_parse_error(src(*HEAD, f"h' = tanh(linear(x, h)) * {number}"), message, 4, 27, number)


@pytest.mark.parametrize("line, text", [
    (1, "cell {n}"), (2, "input {n}"), (3, "state {n}"), (4, "{n} = tanh(linear(x, h))"),
    (4, "h' = tanh(linear(x, {n}))"),
])
def test_names_longer_than_64_characters_are_parse_errors(line, text):
    lines = ["cell c", "input x", "state h", "h' = tanh(linear(x, h))"]
    lines[line - 1] = text.format(n="a" * 300)
    column = text.index("{") + 1
    err = assert_parse_error(src(*lines), "this name is 300 characters long; names have at most 64",
                             line, column, "a" * 300)
    assert err.span.length == 300
    parse(src(*[t.format(n="b" * 64) for t in (lines[:line - 1] + [text] + lines[line:])]))

"""weight=W_name.T: the one place a dotted name may stand in an expression."""

import pytest

from gatespec.errors import ParseError
from gatespec.parse import ast, parse

HEAD = "cell c\ninput x\nstate h\n"


def _linear(text: str) -> ast.Call:
    value = parse(HEAD + f"h' = {text}\n", "t.gate").statements[0].value
    return next(n for n in ast.walk(value) if isinstance(n, ast.Call) and n.func == "linear")


def test_transposed_weight_is_an_attr_with_its_span():
    call = _linear("tanh(linear(h, weight=W_hh.T, bias=false))")
    weight, bias = call.kwargs
    assert weight.name == "weight" and bias.name == "bias"
    assert weight.value == ast.Attr("W_hh", "T", weight.value.span)
    assert (weight.value.span.line, weight.value.span.column, weight.value.span.length) == (4, 28, 6)


def test_shared_weight_is_a_name_and_spaces_are_free():
    call = _linear("tanh(linear(h, weight = W_hh))")
    assert isinstance(call.kwargs[0].value, ast.Var) and call.kwargs[0].value.name == "W_hh"


def test_what_follows_the_dot_is_kept_for_the_build_to_refuse():
    assert _linear("linear(h, weight=W_hh.T.T)").kwargs[0].value.attr == "T.T"


@pytest.mark.parametrize("text,column", [
    ("tanh(linear(h.T))", 19),               # a transposed operand
    ("tanh(linear(h, weight=(W_hh).T))", 34),  # a dot after parentheses
    ("tanh(linear(h, weight=W_hh .T))", 33),  # a space before the dot
])
def test_a_dot_elsewhere_says_where_a_transpose_goes(text, column):
    with pytest.raises(ParseError) as info:
        parse(HEAD + f"h' = {text}\n", "t.gate")
    assert "a transpose is written only as linear()'s option weight=W_name.T" in str(info.value)
    assert (info.value.span.line, info.value.span.column) == (4, column)


def test_a_dotted_name_is_not_an_operand():
    with pytest.raises(ParseError) as info:
        parse(HEAD + "h' = tanh(linear(x, h) + W_hh.T)\n", "t.gate")
    assert info.value.span.column == 30

"""Nesting limits: an expression up to the limit compiles through every stage; one level
more is a ParseError at its place, never a RecursionError, however deep the text goes."""

import pytest

from gatespec.build import build
from gatespec.derive import derive
from gatespec.emit import emit_numpy, emit_torch, latex
from gatespec.emit.docs import diagram_text
from gatespec.errors import ParseError
from gatespec.parse import parse
from gatespec.parse.limits import MAX_DEPTH, MAX_LENGTH
from gatespec.schedule import schedule
from gatespec.show import render_plan

HEAD = "cell deep\ninput x\nstate h\n"


def nested_calls(levels: int) -> str:
    """`levels` nested calls: linear() inside levels - 1 activations."""
    e = "linear(x, h)"
    for k in range(levels - 1):
        e = f"{('tanh', 'sigmoid')[k % 2]}({e})"
    return HEAD + f"h' = {e}\n"


def nested_fractions(levels: int) -> str:
    """`h' = tanh(linear(x, h)) * (1 / (1 + 1 / (1 + ... h)))`, as deep as fits in `levels`:
    the product is one level, each fraction three (its denominator is two levels below the
    division, as SymPy writes 1 / d: d**-1)."""
    e = "h"
    for _ in range((levels - 1) // 3):
        e = f"1 / (1 + {e})"
    return HEAD + f"h' = tanh(linear(x, h)) * ({e})\n"


def product(operations: int) -> str:
    return HEAD + "g = sigmoid(linear(x, h))\nh' = " + " * ".join(["g"] * (operations + 1)) + "\n"


def every_target(text: str) -> None:
    plan = schedule(derive(build(parse(text, "deep.gate"))))
    compile(emit_numpy(plan, "deep.gate"), "deep_numpy.py", "exec")
    compile(emit_torch(plan, "deep.gate"), "deep_torch.py", "exec")
    render_plan(plan)
    latex.render(text, "deep.gate", "tex")
    diagram_text(text, "deep.gate")


@pytest.mark.parametrize("shape", [nested_calls, nested_fractions])
def test_nesting_at_the_limit_compiles_everywhere(shape):
    every_target(shape(MAX_DEPTH))


def test_a_long_product_at_the_limit_compiles_everywhere():
    every_target(product(MAX_LENGTH))


@pytest.mark.parametrize("shape, levels", [(nested_calls, MAX_DEPTH + 1),
                                           (nested_fractions, MAX_DEPTH + 3)])
def test_one_level_more_is_a_parse_error(shape, levels):
    text = shape(levels)
    with pytest.raises(ParseError) as info:
        parse(text, "deep.gate")
    err = info.value
    assert err.message == (f"expressions nested deeper than {MAX_DEPTH} levels: name a part "
                           "of it in its own statement")
    assert err.span.line == 4
    assert err.render().startswith(f"deep.gate:4:{err.span.column}: error: expressions nested")
    # the caret is on the innermost levels: everything left of it is nesting
    line = text.splitlines()[3]
    assert err.span.column > len(line) // 2


def test_one_operation_more_is_a_parse_error():
    with pytest.raises(ParseError) as info:
        parse(product(MAX_LENGTH + 1), "deep.gate")
    assert info.value.message.startswith(f"more than {MAX_LENGTH} operations in a row")
    assert (info.value.span.line, info.value.span.column) == (5, 6)  # the product's start


@pytest.mark.parametrize("text", [
    HEAD + "h' = " + "-" * 5000 + "tanh(linear(x, h))\n",
    nested_calls(3000),
    HEAD + "h' = tanh(linear(x, h)) * " + "(1 / (1 + " * 2000 + "h" + "))" * 2000 + "\n",
    product(5000),
], ids=["signs", "calls", "fractions", "product"])
def test_very_deep_text_is_refused_without_recursion(text):
    with pytest.raises(ParseError):
        parse(text, "deep.gate")


def test_parentheses_alone_add_no_depth():
    """Redundant parentheses leave no node in the tree: nothing is nested."""
    text = HEAD + "h' = " + "(" * 1000 + "tanh(linear(x, h))" + ")" * 1000 + "\n"
    assert parse(text, "deep.gate").statements

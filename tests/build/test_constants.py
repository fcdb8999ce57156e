"""Constants (issue 9): functions of numbers are folded when the cell is built, exactly
where the value is rational and otherwise to the float64 nearest the exact value; each
constant must be a float64, or the cell is refused at the operator that makes it."""

import math
import re

import numpy as np
import pytest
from helpers import numpy_dx_error, numpy_module

from gatespec.build import build
from gatespec.errors import CheckError
from gatespec.parse import parse
from gatespec.pipeline import generate


def cell_text(update: str) -> str:
    return f"cell consts\ninput x\nstate h\nh' = {update}\n"


def update_expr(update: str):
    cell = build(parse(cell_text(update), "consts.gate"))
    return cell.node(cell.updates["h"]).expr


def the_constant(text: str):
    """The number c in the built `h' = tanh(linear(x, h)) + (text) * h`: the coefficient
    of its term in h alone (0 when that term vanished)."""
    terms = update_expr(f"tanh(linear(x, h)) + ({text}) * h").args
    alone = [t for t in terms if {s.name for s in t.free_symbols} == {"h_prev"}]
    return alone[0].as_coeff_Mul()[0] if alone else 0


@pytest.mark.parametrize("text,expected", [
    ("sigmoid(2)", 1 / (1 + math.exp(-2))),
    ("tanh(0.5)", math.tanh(0.5)),
    ("exp(1)", math.e),
    ("log(2)", math.log(2)),
    ("softplus(1)", math.log1p(math.e)),
    ("logsigmoid(-1)", -math.log1p(math.e)),
    ("silu(1)", 1 / (1 + math.exp(-1))),
    ("sqrt(2)", math.sqrt(2)),
    ("exp(-700) * exp(700)", 1.0),
    ("exp(-1000)", 0.0),  # below the smallest float64: 0, as IEEE rounds it
])
def test_transcendental_values_fold_to_the_nearest_float(text, expected):
    assert float(the_constant(text)) == pytest.approx(expected, rel=2e-16)


@pytest.mark.parametrize("text,exact", [
    ("sqrt(1e20)", 10**10), ("relu(-1)", 0), ("relu(3)", 3), ("hard_sigmoid(0)", 0.5),
    ("hard_sigmoid(9)", 1), ("hard_tanh(-3)", -1), ("abs(-2)", 2), ("softsign(-1)", -0.5),
    ("max(2, 3)", 3), ("min(-1, 0.5)", -1), ("-(-3) / -(1 / 4)", -12), ("sigmoid(0)", 0.5),
])
def test_rational_values_fold_exactly(text, exact):
    value = the_constant(text)
    # exact: a short ratio, not the p / 2**k of a float that only approximates it
    assert float(value) == exact and (value == 0 or value.is_Rational and value.q <= 2)


@pytest.mark.parametrize("update,at,message", [
    ("tanh(linear(x, h)) * 1e300 * 1e10", "* 1e10", "this '*' folds to a constant that exceeds"),
    ("tanh(linear(x, h)) / 1e-300 / 1e-10", "/ 1e-10", "this '/' folds to a constant that exceeds"),
    ("tanh(linear(x, h)) * exp(1000)", "exp", "exp() of constants exceeds the largest float64"),
    ("tanh(linear(x, h)) * log(0)", "log", "log() of constants is not a real number"),
    ("tanh(linear(x, h)) * sqrt(-1)", "sqrt", "sqrt() of constants is not a real number"),
    ("tanh(linear(x, h)) * exp(1e300)", "exp", "exp() of constants exceeds the largest float64"),
    # like terms meet only in the whole sum: the statement's value is shown
    ("tanh(linear(x, h)) + 1e300 * h * 1e8 + x + 1e300 * h * 1e8", "tanh",
     "a constant in the value of 'h'' exceeds the largest float64"),
])
def test_constants_beyond_float64_are_the_users_error(update, at, message):
    text = cell_text(update).replace("input x\n", "input x[hidden]\n")
    with pytest.raises(CheckError, match=re.escape(message)) as info:
        build(parse(text, "consts.gate"))
    line = text.splitlines()[3]
    assert (info.value.span.line, info.value.span.column) == (4, line.index(at) + 1)


def test_functions_of_constants_are_numbers_in_the_generated_code(tmp_path):
    """sigmoid(2) was printed as np.tanh-style calls on Python numbers (a TypeError), and
    1e300 as a 301-digit int; they are float literals now, and the cell runs."""
    path = tmp_path / "consts.gate"
    path.write_text(cell_text("tanh(linear(x, h)) * sigmoid(2) * sqrt(1e20) * 1e-10 "
                              "+ 1e300 * h * 1e-300"))
    (text,) = generate(str(path), "numpy").values()
    assert "0.8807970779778824*h_tanh" in text  # the float64 nearest sigmoid(2)
    assert "_sigmoid(2" not in text and "np.sqrt(1" not in text and "0" * 30 not in text
    mod = numpy_module(str(path))
    rng = np.random.default_rng(0)
    params = mod.init_params({"input": 2, "hidden": 3}, rng)
    x = rng.normal(size=(2, 1, 2))
    out, _, _ = mod.forward(x, None, params)
    h = np.zeros((1, 3))
    for t in range(2):  # the cell by hand, with the constants from the math module
        pre = x[t] @ params["W_hx"].T + h @ params["W_hh"].T + params["b_h"]
        h = np.tanh(pre) * (1 / (1 + math.exp(-2))) + h
        assert np.abs(out[t] - h).max() <= 1e-15
    assert numpy_dx_error(str(path)) < 1e-7

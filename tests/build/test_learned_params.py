"""bias() and scalar(): names, shapes, inits, and each misuse at its place."""

import pytest
from test_build_checks import HEAD, assert_check_error, src

from gatespec.build import build
from gatespec.build.names import name_problem
from gatespec.parse import parse


def cell_of(*lines: str):
    return build(parse(src(*HEAD, *lines), "ok.gate"))


def test_bias_is_a_vector_named_after_its_line_sized_by_its_context():
    cell = cell_of("a = linear(x, bias=false) * bias(init=-0.25)", "h' = tanh(a + linear(h))")
    p = cell.params["b_a"]
    assert (p.shape, p.role, p.init) == (("hidden",), "unit_bias", -0.25)


def test_bias_takes_the_size_of_what_it_meets():
    cell = build(parse(src("cell c", "input x", "state h, c[cell]",
                           "c' = tanh(linear(x, bias=false)) + bias()",
                           "h' = tanh(linear(c', h))"), "ok.gate"))
    assert cell.params["b_c"].shape == ("cell",)
    assert cell.params["b_c"].init is None  # uniform, as every other bias


def test_scalar_has_shape_nothing_and_starts_at_one():
    cell = cell_of("h' = scalar() * tanh(linear(x, h))")
    p = cell.params["gamma_h"]
    assert (p.shape, p.role, p.init, p.units) == ((), "scalar", 1.0, "hidden")


def test_several_scalars_on_a_line_are_numbered():
    cell = cell_of("h' = scalar(init=2) * tanh(linear(x, h)) + scalar(init=1e-1) * h")
    assert [(n, p.init) for n, p in cell.params.items() if p.role == "scalar"] == [
        ("gamma_h1", 2.0), ("gamma_h2", 0.1)]


def test_gamma_is_a_reserved_prefix():
    assert "gamma_" in name_problem("gamma_h")
    assert name_problem("gamma") is None  # the prefix, not the word


@pytest.mark.parametrize(("line", "message", "column", "at", "note"), [
    # a line has one bias: the second one is the error, bias() or linear()
    ("h' = tanh(linear(x, h)) + bias()", "a second bias on the line of 'h'", 27, "bias",
     "linear(..., bias=false) and keep bias()"),
    ("h' = tanh(bias() + linear(x, h))", "a second bias on the line of 'h'", 20, "linear",
     "drop bias()"),
    ("h' = tanh(linear(x, h, bias=false) + bias() * h + bias())", "a second bias", 51,
     "bias()", "h_b = bias()"),
    # operands and options
    ("h' = tanh(linear(x, h, bias=false)) * bias(h)", "bias() takes no operand, got 1", 44, "h",
     "diag(v)"),
    ("h' = tanh(linear(x, h)) * scalar(h, x)", "scalar() takes no operand, got 2", 34, "h", None),
    ("h' = tanh(linear(x, h)) * scalar(bias=false)", "scalar() has no option 'bias'; it takes `init=<number>`",
     34, "bias=", None),
    ("h' = tanh(linear(x, h)) * scalar(init=1, init=2)", "init= twice", 42, "init=2", None),
    ("h' = tanh(linear(x, h)) * scalar(init=h)", "init= takes a number", 39, "h)", None),
    ("h' = tanh(linear(x, h)) * scalar(init=2 * 3)", "init= takes a number", 39, "2 *", None),
    # diag() of a constant is what bias() is for
    ("h' = tanh(linear(x, h)) + diag(1)", "the operand of diag() must be a vector", 32, "1)",
     "bias()"),
])
def test_misuse_is_reported_at_its_place(line, message, column, at, note):
    assert_check_error(src(*HEAD, line), message, 4, column, at=at, note=note)


def test_a_scalar_meets_one_size():
    # a scalar broadcasts over the units of the values around it: one size per scalar
    source = src("cell c", "input x", "state h, c[cell]", "g = scalar()",
                 "c' = g * tanh(linear(x, bias=false))", "h' = g * tanh(linear(x, h))")
    assert_check_error(source, "size mismatch in the assignment to 'h''", 6, 1, at="h'")


def test_a_value_of_parameters_only_builds():
    cell = cell_of("offset = bias(init=3)", "h' = tanh(linear(x, h)) + offset")
    assert cell.params["b_offset"].init == 3.0

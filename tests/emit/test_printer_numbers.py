"""How constants are printed (issue 9): literals a float64 array takes in its own dtype."""

import sympy

from gatespec.emit.kernel_printers import cuda_printer, triton_printer
from gatespec.emit.printer import CodePrinter, number_text
from gatespec.pipeline import generate


def test_integers_past_float64s_exact_range_are_floats():
    assert number_text(sympy.Integer(2**53)) == str(2**53)
    assert number_text(sympy.Integer(10**300)) == "1e+300"  # was a 301-digit int
    assert float(number_text(sympy.Integer(10**300))) == 1e300


def test_a_derived_constant_past_float64_is_infinity_as_ieee_rounds():
    # 2 * (1e300 * 1e8) comes from differentiating h * h * 1e308; the user's own constants
    # are checked when the cell is built
    big = 2 * sympy.Integer(10**308)
    assert number_text(big) == "1e999" and float("1e999") == float("inf")
    h = sympy.Symbol("h")
    assert triton_printer().expr(big * h) == "1e999*h"
    assert cuda_printer().expr(big * h) == "S(INFINITY)*v_h"


def test_a_folded_fraction_is_one_float_factor():
    h = sympy.Symbol("h")
    folded = sympy.Rational(0.8807970779778824)  # sigmoid(2) as the build holds it
    assert CodePrinter({}).expr(folded * h) == "0.8807970779778824*h"
    assert CodePrinter({}).expr(-folded * h) == "-0.8807970779778824*h"
    assert CodePrinter({}).expr(h / 3) == "h/3"  # short ratios keep their form


def test_cell_whose_derivative_overflows_still_generates(tmp_path):
    path = tmp_path / "big.gate"
    path.write_text("cell big\ninput x\nstate h\nh' = tanh(linear(x, h)) + h * h * 1e300 * 1e8\n")
    (text,) = generate(str(path), "numpy").values()
    assert "1e999*" in text
    compile(text, "big_numpy.py", "exec")

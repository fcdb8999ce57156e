"""Tied and transposed weights, linear(v, weight=W_name) and weight=W_name.T: the view
parameters they make, sizes, and every misuse at its place."""

import pytest
from test_build_checks import assert_check_error, src

from gatespec import ir
from gatespec.build import build
from gatespec.parse import parse

HEAD = ("cell c", "input x", "state h")  # statements start on line 4


def built(*lines: str) -> ir.Cell:
    return build(parse(src(*HEAD, *lines), "t.gate"))


def test_transposed_weight_is_a_view_not_a_parameter():
    cell = built("h' = h + tanh(linear(h, bias=false) - linear(h, weight=W_hh.T, bias=false)"
                 " + linear(x))")
    assert list(cell.trained_params) == ["W_hh", "W_hx", "b_h"]
    view = cell.params["W_hh_T"]
    assert (view.role, view.source, view.transpose, view.shape) == (
        "view", "W_hh", True, ("hidden", "hidden"))
    assert [p.name for p in cell.views] == ["W_hh_T"]
    products = {n.weight: n.operand for n in cell.nodes if isinstance(n, ir.MatMul)}
    assert products == {"W_hh": "h_prev", "W_hh_T": "h_prev", "W_hx": "x"}
    # the documents name the linear map's parameters as the code does
    assert sorted(cell.call_params.values()) == [("W_hh",), ("W_hh_T",), ("W_hx", "b_h")]


def test_a_transposed_out_in_weight_maps_out_to_in():
    """W_ch is (proj, hidden): its transpose reads a proj vector and makes a hidden one."""
    cell = build(parse(src("cell c", "input x", "state h, c[proj]",
                           "c' = tanh(linear(x, h))",
                           "h' = tanh(linear(c', weight=W_ch.T) + linear(x))"), "t.gate"))
    assert cell.params["W_ch"].shape == ("proj", "hidden")
    assert cell.params["W_ch_T"].shape == ("hidden", "proj")
    assert cell.node("h_new").size == "hidden"
    # W_cx is (proj, input): its transpose makes an input-sized vector, not h's hidden
    text = src("cell c", "input x", "state h, c[proj]", "c' = tanh(linear(x, h))",
               "h' = tanh(linear(c', weight=W_cx.T))")
    assert_check_error(text, "size mismatch in weight=W_cx.T: its rows (outputs): 'hidden' "
                       "against 'input'", 5, 29, "W_cx.T")


def test_shared_weight_before_the_line_that_creates_it():
    """Statements come in any order: weight= may name a weight made further down."""
    cell = built("h' = tanh(linear(h, weight=W_zh) + z)", "z = sigmoid(linear(x, h))")
    assert cell.params["W_zh_S"].source == "W_zh" and not cell.params["W_zh_S"].transpose
    assert list(cell.trained_params) == ["b_h", "W_zx", "W_zh", "b_z"]


def test_each_use_is_its_own_view():
    cell = built("z = sigmoid(linear(x, h))",
                 "h' = linear(h, weight=W_zh.T) * z + linear(z, weight=W_zh.T, bias=false)")
    assert [(v.name, v.source) for v in cell.views] == [("W_zh_T", "W_zh"), ("W_zh_T2", "W_zh")]


def test_view_names_avoid_a_parameter_of_that_name():
    """A state h_T makes a parameter W_zh_T; the view takes the next free name."""
    cell = build(parse(src("cell c", "input x", "state h, h_T",
                           "z = sigmoid(linear(x, h, h_T))",
                           "h_T' = z",
                           "h' = tanh(linear(h, weight=W_zh.T))"), "t.gate"))
    assert cell.params["W_zh_T"].role == "weight"
    assert cell.params["W_zh_T2"].role == "view"


def test_bias_and_layer_norm_around_a_shared_weight():
    cell = built("z = sigmoid(linear(x, h))",
                 "h' = layernorm(linear(h, weight=W_zh, bias=false)) + linear(z, weight=W_zh)")
    assert {"alpha_hh", "beta_hh", "b_h"} <= set(cell.trained_params)
    assert len(cell.views) == 2


@pytest.mark.parametrize("line,message,column,at,note", [
    ("h' = tanh(linear(h, weight=W_zhh) + z)", "unknown weight 'W_zhh'", 28, "W_zhh",
     "did you mean 'W_zh'?"),
    ("h' = tanh(linear(h, weight=V.T) + z)", "unknown weight 'V'", 28, "V.T",
     "`gatespec show` prints their names: W_zx, W_zh"),
    ("h' = tanh(linear(h, weight=b_z) + z)", "'b_z' is a bias", 28, "b_z", None),
    ("h' = tanh(linear(h, weight=h) + z)", "'h' is a value of the cell", 28, "h)", None),
    ("h' = tanh(linear(h, weight=z) + z)", "'z' is a value of the cell", 28, "z)", None),
    ("h' = tanh(linear(h, weight=h') + z)", "weight= takes the name of a weight", 28, "h'",
     None),
    ("h' = tanh(linear(h, weight=W_zh * 2) + z)", "weight= takes the name of a weight", 28,
     "W_zh", None),
    ("h' = tanh(linear(h, weight=W_zh.t) + z)", "weight= takes a weight or its transpose",
     28, "W_zh.t", None),
    ("h' = tanh(linear(h, weight=W_zh.T.T) + z)", "weight= takes a weight or its transpose",
     28, "W_zh.T.T", None),
    ("h' = tanh(linear(x, h, weight=W_zh) + z)", "gives the matrix of one operand", 24,
     "weight", "linear(h, weight=W_zh)"),
    ("h' = tanh(linear(h, weight=W_zh, weight=W_zh) + z)", "given weight= twice", 34,
     "weight", None),
    ("h' = tanh(linear(h, scale=W_zh) + z)", "it takes `bias=false` and `weight=W_name`", 21,
     "scale", None),
    ("h' = tanh(linear(x, weight=W_zh) + z)", "size mismatch in weight=W_zh: its columns",
     28, "W_zh", None),
    ("h' = tanh(linear(h, weight=W_zx.T) + z)", "size mismatch in weight=W_zx.T: its",
     28, "W_zx.T", None),
    ("h' = z + linear(h, weight=W_zh.T, bias=false) * 0", "the term with weight=W_zh.T "
     "vanishes", 27, "W_zh.T", None),
])
def test_misuse_of_weight(line, message, column, at, note):
    text = src(*HEAD, "z = sigmoid(linear(x, h))", line)
    assert_check_error(text, message, 5, column, at, note)


def test_a_view_is_not_a_weight_to_name():
    text = src(*HEAD, "z = sigmoid(linear(x, h))",
               "a = tanh(linear(h, weight=W_zh.T))",
               "h' = a * z + linear(h, weight=W_zh_T)")
    assert_check_error(text, "'W_zh_T' is not a weight but weight=W_zh.T on the line of a",
                       6, 31, "W_zh_T", "name W_zh itself")


def test_layernorm_takes_no_weight():
    text = src(*HEAD, "h' = layernorm(linear(x, h), weight=W_hx)")
    assert_check_error(text, "layernorm() has no option 'weight'", 4, 30, "weight")


def test_torch_equivalent_refuses_views():
    text = src("cell c", "equivalent torch.nn.RNN gates h", "input x", "state h",
               "h' = tanh(linear(x, h) + linear(h, weight=W_hh.T, bias=false))")
    assert_check_error(text, "torch.nn.RNN has no shared or transposed weights", 2, 12)

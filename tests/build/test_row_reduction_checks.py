"""rmsnorm(), softmax() and cumax(): what they create, and each misuse's message and place."""

import pytest
from test_build_checks import HEAD, LSTM_HEAD, assert_check_error, src

from gatespec import ir
from gatespec.build import build
from gatespec.parse import parse


def cell(*lines):
    return build(parse(src(*lines), "rows.gate"))


def test_rmsnorm_has_a_gain_named_like_a_layer_norms_and_a_bias_only_when_asked():
    c = cell(*LSTM_HEAD, "c' = tanh(rmsnorm(linear(x, h)))", "h' = rmsnorm(c', bias=true)")
    roles = {p.name: (p.role, p.shape) for p in c.params.values() if p.role.startswith("rms")}
    assert roles == {"alpha_cxh": ("rms_gain", ("hidden",)),
                     "alpha_hc": ("rms_gain", ("hidden",)), "beta_hc": ("rms_bias", ("hidden",))}
    rows = [n for n in c.nodes if isinstance(n, ir.Row)]
    assert [(n.kind, n.gain, n.bias, n.owner) for n in rows] == [
        ("rmsnorm", "alpha_cxh", None, "c"), ("rmsnorm", "alpha_hc", "beta_hc", "h")]


def test_softmax_and_cumax_create_no_parameter_and_keep_their_operands_size():
    c = cell("cell c", "input x", "state h[proj], c",
             "c' = softmax(linear(x, h, bias=false)) * cumax(c)", "h' = 1 - cumax(h)")
    assert set(c.params) == {"W_cx", "W_ch"}
    rows = {n.kind: n for n in c.nodes if isinstance(n, ir.Row)}
    assert set(rows) == {"softmax", "cumax"}
    assert all(n.gain is None and n.bias is None for n in rows.values())
    sizes = {n.name: n.size for n in c.nodes}
    h_rows = [n for n in c.nodes if isinstance(n, ir.Row) and n.operand == "h_prev"]
    assert [sizes[n.name] for n in h_rows] == [c.states[0].size]  # proj, not hidden


ERRORS = [
    ("rmsnorm_two_operands", "h' = tanh(rmsnorm(linear(x), h))",
     "rmsnorm() takes 1 operand, got 2", 11, "rmsnorm"),
    ("softmax_no_operand", "h' = tanh(softmax() + linear(x, h))",
     "softmax() takes 1 operand, got 0", 11, "softmax"),
    ("cumax_two_operands", "h' = cumax(linear(x), h)", "cumax() takes 1 operand, got 2", 6, "cumax"),
    ("softmax_bias", "h' = softmax(linear(x, h), bias=false)",
     "softmax() takes no keyword arguments", 28, "bias=false"),
    ("cumax_bias", "h' = cumax(linear(x, h), bias=true)",
     "cumax() takes no keyword arguments", 26, "bias=true"),
    ("rmsnorm_gain_option", "h' = tanh(rmsnorm(linear(x, h), gain=2))",
     "rmsnorm() has no option 'gain'; it takes `bias=true`", 33, "gain"),
    ("rmsnorm_bias_maybe", "h' = tanh(rmsnorm(linear(x, h), bias=maybe))",
     "bias= takes true or false", 38, "maybe"),
    ("rmsnorm_bias_twice", "h' = tanh(rmsnorm(linear(x, h), bias=true, bias=true))",
     "rmsnorm() is given bias= twice", 44, "bias=true))"),
    ("softmax_scalar", "h' = tanh(linear(x, h)) * softmax(2)",
     "the operand of softmax() must be a vector, not a constant", 35, "2"),
    ("cumax_scalar_expression", "h' = tanh(linear(x, h)) * cumax(2 * 3)",
     "the operand of cumax() must be a vector, not a constant", 33, "2 * 3"),
    ("rmsnorm_cancelling", "h' = tanh(linear(x) + rmsnorm(h - h))",
     "the operand of rmsnorm() is a constant: its terms cancel", 31, "h - h"),
    ("rmsnorm_same_operand_twice", "h' = tanh(rmsnorm(linear(x)) + layernorm(h) + rmsnorm(h))",
     "this would create parameter 'alpha_hh' a second time", 47, "rmsnorm(h))"),
]


@pytest.mark.parametrize(("source", "message", "column", "at"),
                         [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_misuse_is_reported_where_it_is(source, message, column, at):
    assert_check_error(src(*HEAD, source), message, 4, column, at)


def test_a_size_mismatch_after_a_softmax_points_at_the_operator():
    assert_check_error(src("cell c", "input x", "state h[proj], c",
                           "c' = softmax(c) + cumax(h)", "h' = linear(c')"),
                       "size mismatch in '+'", 4, 17, "+")


def test_a_misspelt_function_suggests_the_row_reduction():
    err = assert_check_error(src(*HEAD, "h' = softmx(linear(x, h))"),
                             "unknown function 'softmx'", 4, 6, "softmx")
    assert "softmax" in err.note


def test_user_names_cannot_end_like_a_saved_softmax():
    assert_check_error(src(*HEAD, "p_smax = tanh(linear(x, h))", "h' = p_smax"),
                       "ends with '_smax'", 4, 1, "p_smax")

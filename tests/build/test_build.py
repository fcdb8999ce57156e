"""The builder on valid cells: parameters, sizes, nodes, and independence from statement order."""

import hashlib
import random

import pytest
import sympy

from gatespec import cells, ir
from gatespec.build import build
from gatespec.parse import parse


def src(*lines: str) -> str:
    return "\n".join(lines) + "\n"


def build_text(text: str, path: str = "t.gate") -> ir.Cell:
    return build(parse(text, path))


def shapes(cell: ir.Cell) -> dict[str, tuple[str, ...]]:
    """The trained parameters (views of a weight used again, weight=, are not)."""
    return {name: p.shape for name, p in cell.trained_params.items()}


def node(cell: ir.Cell, name: str):
    return cell.node(name)


def sym(name: str) -> sympy.Symbol:
    return ir.symbol(name)


H, IH = ("hidden",), ("hidden", "input")
HH = ("hidden", "hidden")

EXPECTED_PARAMS = {
    "srnn": {"W_hx": IH, "W_hh": HH, "b_h": H},
    "gru": {"W_rx": IH, "W_rh": HH, "b_r": H, "W_zx": IH, "W_zh": HH, "b_z": H,
            "W_nx": IH, "W_nh": HH, "b_n": H},
    "gru_reset_after": {"W_rx": IH, "W_rh": HH, "b_r": H, "W_zx": IH, "W_zh": HH, "b_z": H,
                  "W_nx": IH, "W_nh": HH, "b_nx": H, "b_nh": H},
    "lstm": {f"{p}_{g}{s}": shape for g in "ifgo"
             for p, s, shape in (("W", "x", IH), ("W", "h", HH), ("b", "", H))},
    "lstm_peephole": {**{f"{p}_{g}{s}": shape for g in "ifgo"
                         for p, s, shape in (("W", "x", IH), ("W", "h", HH), ("b", "", H))},
                      "w_ic": H, "w_fc": H, "w_oc": H},
}


def _xh(gates, h=HH):
    return {f"{p}_{g}{s}": shape for g in gates
            for p, s, shape in (("W", "x", IH), ("W", "h", h), ("b", "", H))}


def _x(gates, x=IH):
    return {f"{p}_{g}{s}": shape for g in gates for p, s, shape in (("W", "x", x), ("b", "", H))}


EXPECTED_PARAMS.update({
    "lstm_no_output_tanh": _xh("ifgo"),
    "lstm_proj": {**_xh("ifgo", h=("hidden", "proj")), "W_hc": ("proj", "hidden")},
    "lstm_cifg": _xh("fgo"),
    "mgu": _xh("fn"),
    "janet": _xh("sg"),
    "indrnn": {"W_hx": IH, "b_h": H, "w_hh": H},
    "ugrnn": _xh("cg"),
    "mingru": _x("zn"),
    "minlstm": _x("fin"),
    "qrnn": _x("zf"),
    "sru": {"W_ux": HH, **_x("f", HH), "w_fc": H, **_x("r", HH), "w_rc": H},
    "slstm": _xh("zifo"),
    # layer norms: a gain alpha per layernorm(), a bias beta unless bias=false
    # the decoder of Cho et al. 2014 (appendix A.1.2): every gate reads the context c
    # (W_rc, W_zc, the candidate's W_nc beside W_nh, inside the reset), biases added
    "gru_cond": {"W_rx": IH, "W_rh": HH, "W_rc": ("hidden", "context"), "b_r": H,
                 "W_zx": IH, "W_zh": HH, "W_zc": ("hidden", "context"), "b_z": H,
                 "W_nx": IH, "b_n": H, "W_nh": HH, "W_nc": ("hidden", "context")},
    # Krueger et al. 2017: the LSTM's parameters; zoneout adds masks, which are no parameters
    "lstm_zoneout": _xh("ifgo"),
    "lstm_layernorm": {**{name: shape for g in "ifgo" for name, shape in (
        (f"W_{g}x", IH), (f"alpha_{g}x", H), (f"W_{g}h", HH), (f"alpha_{g}h", H),
        (f"beta_{g}h", H))}, "alpha_hc": H, "beta_hc": H},
    # mLSTM: m's two maps have no bias; u (the paper's ĥ) and the gates read x and m
    "mlstm": {"W_mx": IH, "W_mh": HH, **{name: shape for g in "uifo" for name, shape in (
        (f"W_{g}x", IH), (f"W_{g}m", HH), (f"b_{g}", H))}},
    # Shen et al. 2019: the LSTM's four maps and the two master gates' (f~ as mf, i~ as mi)
    "on_lstm": {name: shape for g in ("f", "i", "o", "g", "mf", "mi") for name, shape in (
        (f"W_{g}x", IH), (f"W_{g}h", HH), (f"b_{g}", H))},
    # W - W^T - gamma I: one trained W (W_hh), read again transposed (weight=W_hh.T)
    "antisymmetric_rnn": {"W_hh": HH, "W_hx": IH, "b_h": H},
    # the paper's W, V (no bias), alpha, beta1, beta2, b and b_r: vectors of bias()
    "delta_rnn": {"W_ux": IH, "W_vh": HH, "b_d1": H, "b_dv": H, "b_du": H, "b_z": H,
                  "b_r": H},
})
# Cells whose sizes or output differ from input/hidden and the first state.
EXPECTED_SIZES = {"lstm_proj": ["input", "hidden", "proj"], "sru": ["hidden"],
                  "gru_cond": ["input", "hidden", "context"]}
EXPECTED_OUTPUT = {"sru": "h"}  # an intermediate: the highway output is not a state


ADD_EXPECTED = ("add EXPECTED_PARAMS[{name!r}] in tests/build/test_build.py: the parameter "
                "names and shapes you expect, written from the paper, not copied from "
                "`gatespec show {name}` (and EXPECTED_SIZES / EXPECTED_OUTPUT if they differ "
                "from input/hidden and the first state)")


def test_every_builtin_cell_is_covered():
    missing = sorted(set(cells.names()) - set(EXPECTED_PARAMS))
    assert not missing, "; ".join(ADD_EXPECTED.format(name=n) for n in missing)
    stale = sorted(set(EXPECTED_PARAMS) - set(cells.names()))
    assert not stale, f"EXPECTED_PARAMS names cells that are not built in: {stale}"


@pytest.mark.parametrize("name", cells.names())
def test_builtin_cell_builds(name):
    if name not in EXPECTED_PARAMS:
        pytest.fail(ADD_EXPECTED.format(name=name))
    cell = build_text(cells.source(name), f"{name}.gate")
    assert cell.name == name
    assert cell.description
    assert shapes(cell) == EXPECTED_PARAMS[name]
    assert cell.sizes == EXPECTED_SIZES.get(name, ["input", "hidden"])
    x_size = "hidden" if name == "sru" else "input"
    assert cell.input == ir.Leaf("x", "x", x_size, "input")
    extras = [ir.Leaf("c", "c", "context", "input")] if name == "gru_cond" else []
    assert cell.extra_inputs == extras
    # zoneout on c and h (Krueger et al. 2017): one mask each, per step, rates from the file
    masks = [("mask_c", "hidden", "zoneout", 0.5, "step"),
             ("mask_h", "hidden", "zoneout", 0.05, "step")] if name == "lstm_zoneout" else []
    assert [(m.name, m.size, m.kind, m.rate, m.per) for m in cell.masks] == masks
    assert cell.inputs == [cell.input, *extras,
                           *(ir.Leaf(m[0], m[0], m[1], "input") for m in masks)]
    assert cell.updates == {s.label: s.label + "_new" for s in cell.states}
    assert cell.output == EXPECTED_OUTPUT.get(name, cell.states[0].label + "_new")
    roles = {p.role for p in cell.params.values()}
    assert roles <= {"weight", "bias", "diag", "ln_gain", "ln_bias", "rms_gain", "rms_bias",
                     "view", "unit_bias", "scalar"}
    for p in cell.params.values():  # a layer norm's parameters are named after it
        prefix = {"ln_gain": "alpha_", "ln_bias": "beta_"}.get(p.role)
        assert prefix is None or p.name.startswith(prefix) and p.shape == H


@pytest.mark.parametrize("name", cells.names())
def test_nodes_are_in_topological_order(name):
    cell = build_text(cells.source(name))
    seen: set[str] = set()
    for n in cell.nodes:
        assert n.name not in seen
        assert set(ir.deps(n)) <= seen, n
        seen.add(n.name)
    for p in cell.params.values():
        assert p.name not in seen  # parameters are not nodes


def _signature(cell: ir.Cell):
    return (
        set(cell.nodes),
        {n: (p.shape, p.role, p.owner) for n, p in cell.params.items()},
        cell.updates,
        cell.output,
        cell.input,
        cell.states,
        sorted(cell.sizes),
        cell.latex,
    )


def _split(text: str) -> tuple[list[str], list[str]]:
    decls, stmts = [], []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        first = line.split()[0]
        (decls if first in ("cell", "input", "state", "output", "latex") else stmts).append(line)
    return decls, stmts


@pytest.mark.parametrize("name", cells.names())
def test_statement_order_does_not_matter(name):
    text = cells.source(name)
    reference = _signature(build_text(text))
    decls, stmts = _split(text)
    rng = random.Random(1234)
    orders = [stmts[::-1]]
    for _ in range(5):
        shuffled = stmts[:]
        rng.shuffle(shuffled)
        orders.append(shuffled)
    for order in orders:
        assert _signature(build_text(src(*decls, *order))) == reference
        # declarations may also come after the statements
        assert _signature(build_text(src(*order, *decls[::-1]))) == reference


def test_linear_of_an_expression_operand():
    cell = build_text(cells.source("gru"))
    assert {k: v for k, v in shapes(cell).items() if k.endswith("n") or "_n" in k} == {
        "W_nx": IH, "W_nh": HH, "b_n": H}
    m_nh = node(cell, "m_nh")
    assert isinstance(m_nh, ir.MatMul) and m_nh.weight == "W_nh"
    operand = node(cell, m_nh.operand)
    assert isinstance(operand, ir.Pointwise) and operand.kind == "operand"
    assert operand.expr == sym("r") * sym("h_prev")
    assert node(cell, "n").expr.args[0] == sym("m_nx") + sym("m_nh") + sym("b_n")
    assert cell.params["W_nh"].owner == "n" and cell.params["W_nh"].role == "weight"


def test_two_biased_linears_get_a_bias_each():
    cell = build_text(cells.source("gru_reset_after"))
    assert "b_n" not in cell.params
    assert cell.params["b_nx"].shape == H and cell.params["b_nh"].shape == H
    assert cell.params["b_nx"].role == cell.params["b_nh"].role == "bias"
    n = node(cell, "n").expr
    assert n.args[0] == sym("m_nx") + sym("b_nx") + sym("r") * (sym("m_nh") + sym("b_nh"))


def test_one_biased_linear_keeps_the_short_bias_name():
    cell = build_text(src("cell c", "input x", "state h",
                          "h' = tanh(linear(x) + linear(h, bias=false))"))
    assert shapes(cell) == {"W_hx": IH, "b_h": H, "W_hh": HH}


def test_diag_of_the_new_cell_state():
    cell = build_text(cells.source("lstm_peephole"))
    assert cell.params["w_oc"] == ir.Param("w_oc", H, "diag", "o", 19)
    assert cell.params["w_ic"].role == cell.params["w_fc"].role == "diag"
    o = node(cell, "o").expr
    assert sym("c_new") * sym("w_oc") in o.args[0].args
    i = node(cell, "i").expr
    assert sym("c_prev") * sym("w_ic") in i.args[0].args
    names = [n.name for n in cell.nodes]
    assert names.index("c_new") < names.index("o") < names.index("h_new")


def test_projected_lstm():
    text = src(
        "cell lstmp \"LSTM with a projection\"",
        "input x",
        "state h[proj], c",
        "i = sigmoid(linear(x, h))",
        "f = sigmoid(linear(x, h))",
        "g = tanh(linear(x, h))",
        "o = sigmoid(linear(x, h))",
        "c' = f * c + i * g",
        "h' = linear(o * tanh(c'), bias=false)",
    )
    cell = build_text(text)
    proj = {k: v for k, v in shapes(cell).items() if k.startswith(("W_h", "b_h"))}
    assert proj == {"W_hc": ("proj", "hidden")}
    assert shapes(cell)["W_ih"] == ("hidden", "proj")
    assert shapes(cell)["W_ix"] == IH
    assert [(s.label, s.size) for s in cell.states] == [("h", "proj"), ("c", "hidden")]
    assert node(cell, "h_new").size == "proj"
    assert node(cell, "c_new").size == "hidden"
    assert cell.sizes == ["input", "hidden", "proj"]
    assert cell.output == "h_new"


def test_input_of_hidden_size():
    cell = build_text(src("cell c", "input x[hidden]", "state h", "h' = tanh(x + linear(h))"))
    assert cell.input.size == "hidden"
    assert cell.sizes == ["hidden"]
    assert shapes(cell) == {"W_hh": HH, "b_h": H}


def test_named_sizes():
    cell = build_text(src("cell c", "input x[emb]", "state h[units]", "h' = tanh(linear(x, h))"))
    assert cell.sizes == ["emb", "units"]
    assert shapes(cell) == {"W_hx": ("units", "emb"), "W_hh": ("units", "units"),
                            "b_h": ("units",)}


def test_intermediate_takes_the_size_of_what_it_reads():
    cell = build_text(src("cell c", "input x", "state h[proj], c",
                          "a = 2 * h", "c' = tanh(linear(x, h))", "h' = a + linear(c')"))
    assert node(cell, "a").size == "proj"
    assert shapes(cell)["W_hc"] == ("proj", "hidden")


def test_comments_and_blank_lines_anywhere():
    plain = cells.source("lstm")
    decls, stmts = _split(plain)
    noisy = "\n\n# leading comment\n\n"
    for k, line in enumerate([*decls, *stmts]):
        noisy += f"  {line}   # comment {k}\n\n   \n# between\n\t\n"
    noisy += "# trailing comment without newline"
    a, b = build_text(plain), build_text(noisy)
    assert _signature(a) == _signature(b)


def test_description_and_header_are_kept():
    text = src("# first line", "#   indented", "", "cell c \"A test cell.\"", "input x",
               "state h", "h' = tanh(linear(x, h))")
    cell = build_text(text, "some/path.gate")
    assert cell.description == "A test cell."
    assert cell.header == "first line\n  indented"
    assert cell.path == "some/path.gate"
    assert cell.source_sha256 == hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_missing_description_is_empty():
    cell = build_text(src("cell c", "input x", "state h", "h' = tanh(linear(x, h))"))
    assert cell.description == ""


def test_default_output_is_the_first_state():
    cell = build_text(src("cell c", "input x", "state c, h", "c' = tanh(linear(x, h))",
                          "h' = c'"))
    assert (cell.output, cell.output_label) == ("c_new", "c")


def test_output_may_be_an_intermediate():
    cell = build_text(src("cell c", "input x", "state h", "output y",
                          "h' = tanh(linear(x, h))", "y = 2 * h'"))
    assert (cell.output, cell.output_label) == ("y", "y")
    assert node(cell, "y").expr == 2 * sym("h_new")


def test_output_names_a_state():
    cell = build_text(src("cell c", "input x", "state c, h", "output h",
                          "c' = tanh(linear(x, h))", "h' = c' * h"))
    assert (cell.output, cell.output_label) == ("h_new", "h")


@pytest.mark.parametrize("option, has_bias", [("", True), (", bias=true", True),
                                               (", bias=false", False)])
def test_bias_option(option, has_bias):
    cell = build_text(src("cell c", "input x", "state h", f"h' = tanh(linear(x, h{option}))"))
    assert ("b_h" in cell.params) == has_bias


def test_numbers_are_exact_rationals():
    cell = build_text(src("cell c", "input x", "state h", "h' = 0.5 * h + 1e-1 - linear(x)"))
    expr = node(cell, "h_new").expr
    assert sympy.Rational(1, 2) * sym("h_prev") in expr.args
    assert sympy.Rational(1, 10) in expr.args


def test_unary_minus_and_functions():
    cell = build_text(src("cell c", "input x", "state h",
                          "h' = -max(linear(x), relu(h)) + identity(h)"))
    expr = node(cell, "h_new").expr
    assert sym("h_prev") in expr.args  # identity() disappears
    assert "max" in str(expr) and "relu" in str(expr)


def test_operand_expression_named_after_leaves_then_intermediates():
    cell = build_text(src("cell c", "input x", "state h",
                          "r = sigmoid(linear(x, h))", "z = sigmoid(linear(x, h))",
                          "h' = tanh(linear(x, r * z))"))
    assert "W_hrz" in cell.params


def test_latex_is_kept():
    cell = build_text(cells.source("gru"))
    assert cell.latex == {"n": "\\bar{\\boldsymbol{h}}"}


def test_x_is_allowed_as_the_input_name():
    cell = build_text(src("cell c", "input x", "state h", "h' = tanh(linear(x, h))"))
    assert cell.input.name == "x"


def test_other_input_name():
    cell = build_text(src("cell c", "input u", "state h", "h' = tanh(linear(u, h))"))
    assert cell.input == ir.Leaf("u", "u", "input", "input")
    assert shapes(cell) == {"W_hu": IH, "W_hh": HH, "b_h": H}


def test_windows_line_endings_build_the_same_cell():
    text = cells.source("lstm")
    assert _signature(build_text(text)) == _signature(build_text(text.replace("\n", "\r\n")))


def test_backslash_continuation_builds():
    cell = build_text(src("cell c", "input x", "state h", "h' = tanh(linear(x, \\", "  h))"))
    assert shapes(cell) == EXPECTED_PARAMS["srnn"]

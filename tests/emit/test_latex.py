"""LaTeX in the article's notation: the article's LSTM and GRU equations, written out
by hand here from the article (restated in the README; not captured from gatespec),
compared statement by statement; the derived gradients likewise; and the printer's
rules (grouping, order, names) on small cells."""

import pytest

from gatespec.cli import main
from gatespec.emit.latex import cell_equations, render
from gatespec.pipeline import generate, load_source

# The article's section 2 (Gers et al. 2000), in lstm.gate's statement order.
LSTM_FORWARD = [
    (r"\boldsymbol{i}_t",
     r"\sigma(\boldsymbol{W}_{ix}\boldsymbol{x}_t + \boldsymbol{W}_{ih}\boldsymbol{h}_{t-1}"
     r" + \boldsymbol{b}_i)"),
    (r"\boldsymbol{f}_t",
     r"\sigma(\boldsymbol{W}_{fx}\boldsymbol{x}_t + \boldsymbol{W}_{fh}\boldsymbol{h}_{t-1}"
     r" + \boldsymbol{b}_f)"),
    (r"\bar{\boldsymbol{c}}_t",
     r"\tanh(\boldsymbol{W}_{gx}\boldsymbol{x}_t + \boldsymbol{W}_{gh}\boldsymbol{h}_{t-1}"
     r" + \boldsymbol{b}_g)"),
    (r"\boldsymbol{o}_t",
     r"\sigma(\boldsymbol{W}_{ox}\boldsymbol{x}_t + \boldsymbol{W}_{oh}\boldsymbol{h}_{t-1}"
     r" + \boldsymbol{b}_o)"),
    (r"\boldsymbol{c}_t",
     r"\boldsymbol{f}_t \odot \boldsymbol{c}_{t-1} + \boldsymbol{i}_t \odot \bar{\boldsymbol{c}}_t"),
    (r"\boldsymbol{h}_t", r"\boldsymbol{o}_t \odot \tanh(\boldsymbol{c}_t)"),
]

# The article's section 3 (Cho et al. 2014): the reset gate acts on h_{t-1} before W_nh.
GRU_FORWARD = [
    (r"\boldsymbol{r}_t",
     r"\sigma(\boldsymbol{W}_{rx}\boldsymbol{x}_t + \boldsymbol{W}_{rh}\boldsymbol{h}_{t-1}"
     r" + \boldsymbol{b}_r)"),
    (r"\boldsymbol{z}_t",
     r"\sigma(\boldsymbol{W}_{zx}\boldsymbol{x}_t + \boldsymbol{W}_{zh}\boldsymbol{h}_{t-1}"
     r" + \boldsymbol{b}_z)"),
    (r"\bar{\boldsymbol{h}}_t",
     r"\tanh(\boldsymbol{W}_{nx}\boldsymbol{x}_t"
     r" + \boldsymbol{W}_{nh}(\boldsymbol{r}_t \odot \boldsymbol{h}_{t-1}) + \boldsymbol{b}_n)"),
    (r"\boldsymbol{h}_t",
     r"\boldsymbol{z}_t \odot \boldsymbol{h}_{t-1}"
     r" + (1 - \boldsymbol{z}_t) \odot \bar{\boldsymbol{h}}_t"),
]

# Back-propagation through time for the LSTM, as in Greff et al. 2017 (appendix),
# with ∂L/∂v_t the loss's direct dependence and a_{v,t} v's pre-activation.
LSTM_BACKWARD = [
    (r"\delta\boldsymbol{h}_t",
     r"\frac{\partial L}{\partial \boldsymbol{h}_t}"
     r" + \boldsymbol{W}_{ih}^\top\delta\boldsymbol{a}_{i,t+1}"
     r" + \boldsymbol{W}_{fh}^\top\delta\boldsymbol{a}_{f,t+1}"
     r" + \boldsymbol{W}_{gh}^\top\delta\boldsymbol{a}_{g,t+1}"
     r" + \boldsymbol{W}_{oh}^\top\delta\boldsymbol{a}_{o,t+1}"),
    (r"\delta\boldsymbol{c}_t",
     r"\frac{\partial L}{\partial \boldsymbol{c}_t}"
     r" + \delta\boldsymbol{h}_t \odot \boldsymbol{o}_t \odot (1 - \tanh^2(\boldsymbol{c}_t))"
     r" + \delta\boldsymbol{c}_{t+1} \odot \boldsymbol{f}_{t+1}"),
    (r"\delta\boldsymbol{o}_t", r"\delta\boldsymbol{h}_t \odot \tanh(\boldsymbol{c}_t)"),
    (r"\delta\boldsymbol{a}_{o,t}",
     r"\delta\boldsymbol{o}_t \odot \boldsymbol{o}_t \odot (1 - \boldsymbol{o}_t)"),
    (r"\delta\bar{\boldsymbol{c}}_t", r"\delta\boldsymbol{c}_t \odot \boldsymbol{i}_t"),
    (r"\delta\boldsymbol{a}_{g,t}",
     r"\delta\bar{\boldsymbol{c}}_t \odot (1 - \bar{\boldsymbol{c}}_t^2)"),
    (r"\delta\boldsymbol{f}_t", r"\delta\boldsymbol{c}_t \odot \boldsymbol{c}_{t-1}"),
    (r"\delta\boldsymbol{a}_{f,t}",
     r"\delta\boldsymbol{f}_t \odot \boldsymbol{f}_t \odot (1 - \boldsymbol{f}_t)"),
    (r"\delta\boldsymbol{i}_t", r"\delta\boldsymbol{c}_t \odot \bar{\boldsymbol{c}}_t"),
    (r"\delta\boldsymbol{a}_{i,t}",
     r"\delta\boldsymbol{i}_t \odot \boldsymbol{i}_t \odot (1 - \boldsymbol{i}_t)"),
    (r"\delta\boldsymbol{x}_t",
     r"\boldsymbol{W}_{ix}^\top\delta\boldsymbol{a}_{i,t}"
     r" + \boldsymbol{W}_{fx}^\top\delta\boldsymbol{a}_{f,t}"
     r" + \boldsymbol{W}_{gx}^\top\delta\boldsymbol{a}_{g,t}"
     r" + \boldsymbol{W}_{ox}^\top\delta\boldsymbol{a}_{o,t}"),
]

GRU_BACKWARD = [
    (r"\delta\boldsymbol{h}_t",
     r"\frac{\partial L}{\partial \boldsymbol{h}_t}"
     r" + \boldsymbol{W}_{rh}^\top\delta\boldsymbol{a}_{r,t+1}"
     r" + \boldsymbol{W}_{zh}^\top\delta\boldsymbol{a}_{z,t+1}"
     r" + (\boldsymbol{W}_{nh}^\top\delta\boldsymbol{a}_{n,t+1}) \odot \boldsymbol{r}_{t+1}"
     r" + \delta\boldsymbol{h}_{t+1} \odot \boldsymbol{z}_{t+1}"),
    (r"\delta\bar{\boldsymbol{h}}_t", r"\delta\boldsymbol{h}_t \odot (1 - \boldsymbol{z}_t)"),
    (r"\delta\boldsymbol{a}_{n,t}",
     r"\delta\bar{\boldsymbol{h}}_t \odot (1 - \bar{\boldsymbol{h}}_t^2)"),
    (r"\delta\boldsymbol{z}_t",
     r"\delta\boldsymbol{h}_t \odot (\boldsymbol{h}_{t-1} - \bar{\boldsymbol{h}}_t)"),
    (r"\delta\boldsymbol{a}_{z,t}",
     r"\delta\boldsymbol{z}_t \odot \boldsymbol{z}_t \odot (1 - \boldsymbol{z}_t)"),
    (r"\delta\boldsymbol{r}_t",
     r"(\boldsymbol{W}_{nh}^\top\delta\boldsymbol{a}_{n,t}) \odot \boldsymbol{h}_{t-1}"),
    (r"\delta\boldsymbol{a}_{r,t}",
     r"\delta\boldsymbol{r}_t \odot \boldsymbol{r}_t \odot (1 - \boldsymbol{r}_t)"),
    (r"\delta\boldsymbol{x}_t",
     r"\boldsymbol{W}_{rx}^\top\delta\boldsymbol{a}_{r,t}"
     r" + \boldsymbol{W}_{zx}^\top\delta\boldsymbol{a}_{z,t}"
     r" + \boldsymbol{W}_{nx}^\top\delta\boldsymbol{a}_{n,t}"),
]

GRU_PARAMETERS = [
    (r"\delta\boldsymbol{W}_{rx}", r"\sum_t \delta\boldsymbol{a}_{r,t}\,\boldsymbol{x}_t^\top"),
    (r"\delta\boldsymbol{W}_{rh}",
     r"\sum_t \delta\boldsymbol{a}_{r,t}\,\boldsymbol{h}_{t-1}^\top"),
    (r"\delta\boldsymbol{b}_r", r"\sum_t \delta\boldsymbol{a}_{r,t}"),
    (r"\delta\boldsymbol{W}_{zx}", r"\sum_t \delta\boldsymbol{a}_{z,t}\,\boldsymbol{x}_t^\top"),
    (r"\delta\boldsymbol{W}_{zh}",
     r"\sum_t \delta\boldsymbol{a}_{z,t}\,\boldsymbol{h}_{t-1}^\top"),
    (r"\delta\boldsymbol{b}_z", r"\sum_t \delta\boldsymbol{a}_{z,t}"),
    (r"\delta\boldsymbol{W}_{nx}", r"\sum_t \delta\boldsymbol{a}_{n,t}\,\boldsymbol{x}_t^\top"),
    (r"\delta\boldsymbol{W}_{nh}",
     r"\sum_t \delta\boldsymbol{a}_{n,t}\,(\boldsymbol{r}_t \odot \boldsymbol{h}_{t-1})^\top"),
    (r"\delta\boldsymbol{b}_n", r"\sum_t \delta\boldsymbol{a}_{n,t}"),
]


def printed(equations):
    return [(e.lhs, " ".join(e.rhs)) for e in equations]


def equations_of(spec, tmp_path=None):
    if tmp_path is not None:
        path = tmp_path / "cell.gate"
        path.write_text(spec)
        spec = str(path)
    return cell_equations(*load_source(spec))


@pytest.mark.parametrize("name, expected", [("lstm", LSTM_FORWARD), ("gru", GRU_FORWARD)])
def test_article_forward_equations(name, expected):
    got = printed(equations_of(name).forward_equations())
    for (lhs, rhs), (got_lhs, got_rhs) in zip(expected, got, strict=True):
        assert got_lhs == lhs
        assert got_rhs == rhs, lhs


@pytest.mark.parametrize("name, expected", [("lstm", LSTM_BACKWARD), ("gru", GRU_BACKWARD)])
def test_article_backward_equations(name, expected):
    got = printed(equations_of(name).backward_equations())
    for (lhs, rhs), (got_lhs, got_rhs) in zip(expected, got, strict=True):
        assert got_lhs == lhs
        assert got_rhs == rhs, lhs


def test_gru_parameter_gradients():
    assert printed(equations_of("gru").parameter_equations()) == GRU_PARAMETERS


def test_lstm_parameter_gradients_sum_preactivation_adjoints():
    got = dict(printed(equations_of("lstm").parameter_equations()))
    assert got[r"\delta\boldsymbol{W}_{ih}"] == (
        r"\sum_t \delta\boldsymbol{a}_{i,t}\,\boldsymbol{h}_{t-1}^\top")
    assert got[r"\delta\boldsymbol{b}_g"] == r"\sum_t \delta\boldsymbol{a}_{g,t}"
    assert len(got) == 12


def test_peephole_weights_are_elementwise_products():
    eqs = equations_of("lstm_peephole")
    forward = dict(printed(eqs.forward_equations()))
    assert forward[r"\boldsymbol{i}_t"] == (
        r"\sigma(\boldsymbol{W}_{ix}\boldsymbol{x}_t + \boldsymbol{W}_{ih}\boldsymbol{h}_{t-1}"
        r" + \boldsymbol{b}_i + \boldsymbol{w}_{ic} \odot \boldsymbol{c}_{t-1})")
    assert forward[r"\boldsymbol{o}_t"].endswith(r"\boldsymbol{w}_{oc} \odot \boldsymbol{c}_t)")
    params = dict(printed(eqs.parameter_equations()))
    assert params[r"\delta\boldsymbol{w}_{ic}"] == (
        r"\sum_t \delta\boldsymbol{a}_{i,t} \odot \boldsymbol{c}_{t-1}")
    backward = dict(printed(eqs.backward_equations()))
    # c_t is read by o_t in its own step and by i, f (peepholes) and c in the next
    assert backward[r"\delta\boldsymbol{c}_t"] == (
        r"\frac{\partial L}{\partial \boldsymbol{c}_t}"
        r" + \delta\boldsymbol{a}_{o,t} \odot \boldsymbol{w}_{oc}"
        r" + \delta\boldsymbol{h}_t \odot \boldsymbol{o}_t \odot (1 - \tanh^2(\boldsymbol{c}_t))"
        r" + \delta\boldsymbol{a}_{i,t+1} \odot \boldsymbol{w}_{ic}"
        r" + \delta\boldsymbol{a}_{f,t+1} \odot \boldsymbol{w}_{fc}"
        r" + \delta\boldsymbol{c}_{t+1} \odot \boldsymbol{f}_{t+1}")


def test_torch_gru_names_the_linear_map_inside_the_product():
    eqs = equations_of("gru_reset_after")
    forward = dict(printed(eqs.forward_equations()))
    assert forward[r"\bar{\boldsymbol{h}}_t"] == (
        r"\tanh(\boldsymbol{W}_{nx}\boldsymbol{x}_t + \boldsymbol{b}_{nx} + \boldsymbol{r}_t"
        r" \odot (\boldsymbol{W}_{nh}\boldsymbol{h}_{t-1} + \boldsymbol{b}_{nh}))")
    backward = dict(printed(eqs.backward_equations()))
    assert backward[r"\delta\boldsymbol{a}_{nh,t}"] == (
        r"\delta\boldsymbol{a}_{n,t} \odot \boldsymbol{r}_t")
    params = dict(printed(eqs.parameter_equations()))
    assert params[r"\delta\boldsymbol{b}_{nh}"] == r"\sum_t \delta\boldsymbol{a}_{nh,t}"
    assert params[r"\delta\boldsymbol{b}_{nx}"] == r"\sum_t \delta\boldsymbol{a}_{n,t}"


CELL = """cell demo
input x[hidden]
state h
{body}
"""


@pytest.mark.parametrize("body, lhs, rhs", [
    # the user's factor order and grouping are kept; redundant parentheses are not
    ("h' = h * tanh(x)", r"\boldsymbol{h}_t", r"\boldsymbol{h}_{t-1} \odot \tanh(\boldsymbol{x}_t)"),
    ("h' = tanh(x) * (h * x)", r"\boldsymbol{h}_t",
     r"\tanh(\boldsymbol{x}_t) \odot (\boldsymbol{h}_{t-1} \odot \boldsymbol{x}_t)"),
    ("h' = (h + x) + h", r"\boldsymbol{h}_t",
     r"\boldsymbol{h}_{t-1} + \boldsymbol{x}_t + \boldsymbol{h}_{t-1}"),
    ("h' = h - (x - h)", r"\boldsymbol{h}_t",
     r"\boldsymbol{h}_{t-1} - (\boldsymbol{x}_t - \boldsymbol{h}_{t-1})"),
    ("h' = -(h * x) + 2 * h", r"\boldsymbol{h}_t",
     r"-(\boldsymbol{h}_{t-1} \odot \boldsymbol{x}_t) + 2 \boldsymbol{h}_{t-1}"),
    ("h' = h / (1 + x)", r"\boldsymbol{h}_t", r"\frac{\boldsymbol{h}_{t-1}}{1 + \boldsymbol{x}_t}"),
    ("h' = 1e-3 * max(h, x)", r"\boldsymbol{h}_t",
     r"10^{-3} \max(\boldsymbol{h}_{t-1}, \boldsymbol{x}_t)"),
    # a matrix-vector product inside ⊙ is enclosed
    ("h' = x * linear(h, bias=false)", r"\boldsymbol{h}_t",
     r"\boldsymbol{x}_t \odot (\boldsymbol{W}_{hh}\boldsymbol{h}_{t-1})"),
    ("h' = relu(linear(x) + diag(h))", r"\boldsymbol{h}_t",
     r"\operatorname{ReLU}(\boldsymbol{W}_{hx}\boldsymbol{x}_t + \boldsymbol{b}_h"
     r" + \boldsymbol{w}_{hh} \odot \boldsymbol{h}_{t-1})"),
])
def test_printer_rules(tmp_path, body, lhs, rhs):
    got = printed(equations_of(CELL.format(body=body), tmp_path).forward_equations())
    assert got == [(lhs, rhs)]


def test_statements_print_in_dependency_order(tmp_path):
    body = "h' = tanh(cand2)\ncand2 = gate * h\ngate = sigmoid(linear(x, h))"
    got = [lhs for lhs, _ in printed(equations_of(CELL.format(body=body), tmp_path)
                                     .forward_equations())]
    assert got == [r"\boldsymbol{\mathrm{gate}}_t", r"\boldsymbol{\mathrm{cand}}_{2,t}",
                   r"\boldsymbol{h}_t"]


def test_latex_names_with_their_own_subscript(tmp_path):
    body = 'latex q "c_{\\mathrm{in}}"\nq = sigmoid(linear(x, h))\nh\' = q * h'
    got = printed(equations_of(CELL.format(body=body), tmp_path).forward_equations())
    assert got[0][0] == r"{c_{\mathrm{in}}{}}_t"
    assert got[1][1] == r"{c_{\mathrm{in}}{}}_t \odot \boldsymbol{h}_{t-1}"


def test_documents_have_the_parameter_table_and_the_mark():
    md = render(*load_source("gru"), "md")
    assert md.startswith("<!-- Generated by gatespec")
    assert "| $\\boldsymbol{W}_{nh}$ | `W_nh` | (hidden, hidden) |" in md
    assert md.count("$$") % 2 == 0 and "\\begin{aligned}" in md
    tex = render(*load_source("gru"), "tex", backward=False)
    assert tex.startswith("% Generated by gatespec")
    assert "\\documentclass" in tex and "\\usepackage{amsmath}" in tex
    assert "\\delta" not in tex  # forward only


def test_long_equations_break_between_terms():
    tex = render(*load_source("lstm_peephole"), "tex")
    start = tex.index(r"\delta\boldsymbol{c}_t &=")
    equation = tex[start:tex.index(r"\\", start + 30)]
    assert "&\\quad +" in tex[start:start + len(equation) + 400]


def test_cli_latex_prints_the_article_equations(capsys):
    assert main(["latex", "lstm"]) == 0
    out = capsys.readouterr().out
    for lhs, rhs in LSTM_FORWARD:
        assert f"{lhs} &= {rhs}" in out
    assert "\\delta" not in out
    assert main(["latex", "gru", "--backward"]) == 0
    out = capsys.readouterr().out
    for lhs, rhs in GRU_FORWARD + GRU_BACKWARD[1:]:
        assert f"{lhs} &= {rhs}" in out


def test_cli_latex_output_file_and_format(tmp_path, capsys):
    md = tmp_path / "lstm.md"
    assert main(["latex", "lstm", "-o", str(md)]) == 0
    assert md.read_text().startswith("<!-- Generated by gatespec")  # format from the suffix
    assert main(["latex", "lstm", "--backward", "-o", str(md)]) == 0  # ours: replaced
    assert "Backward" in md.read_text()
    mine = tmp_path / "notes.tex"
    mine.write_text("my notes\n")
    assert main(["latex", "lstm", "-o", str(mine)]) == 2
    assert mine.read_text() == "my notes\n"
    assert "not generated by gatespec" in capsys.readouterr().err


def test_generate_documentation_targets(tmp_path):
    assert main(["generate", "lstm", "--target", "latex", "-o", str(tmp_path)]) == 0
    assert (tmp_path / "lstm.tex").read_text() == generate("lstm", "latex")["lstm.tex"]
    assert main(["generate", "gru", "--target", "markdown", "-o", str(tmp_path)]) == 0
    assert {"gru.md", "gru.dot"} <= {p.name for p in tmp_path.iterdir()}


def test_a_linear_map_inside_an_activation_gets_a_name_of_its_own(tmp_path):
    """h = tanh(x ⊙ W h): the map's adjoint is not the pre-activation's, and its name
    must not be a_{h,t}, which the pre-activation has."""
    eqs = equations_of(CELL.format(body="h' = tanh(x * linear(h, bias=false))"), tmp_path)
    backward = dict(printed(eqs.backward_equations()))
    assert backward[r"\delta\boldsymbol{a}_{h,t}"] == (
        r"\delta\boldsymbol{h}_t \odot (1 - \boldsymbol{h}_t^2)")
    assert backward[r"\delta\boldsymbol{a}_{hh,t}"] == (
        r"\delta\boldsymbol{a}_{h,t} \odot \boldsymbol{x}_t")
    params = dict(printed(eqs.parameter_equations()))
    assert params[r"\delta\boldsymbol{W}_{hh}"] == (
        r"\sum_t \delta\boldsymbol{a}_{hh,t}\,\boldsymbol{h}_{t-1}^\top")


@pytest.mark.parametrize("command", ["latex", "diagram"])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0 and "usage: gatespec" in capsys.readouterr().out


def test_a_mistake_in_the_cell_is_reported_at_its_place(tmp_path, capsys):
    path = tmp_path / "bad.gate"
    path.write_text(CELL.format(body="h' = tanh(linear(x, h) + q)"))
    assert main(["latex", str(path)]) == 2
    assert main(["diagram", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count(f"{path}:4:26: error: unknown name 'q'") == 2


# Layer normalisation (Ba et al. 2016), as lstm_layernorm.gate's header writes it: LN with
# its gain (and bias) as subscripts; backward, the layer norm's input adjoint
# δu = (δû − ⟨δû⟩ − û ⟨δû ⊙ û⟩) / s with δû = α ⊙ δℓ.
def test_layer_norm_forward_equations():
    forward = dict(printed(equations_of("lstm_layernorm").forward_equations()))
    assert forward[r"\boldsymbol{i}_t"] == (
        r"\sigma(\operatorname{LN}_{\boldsymbol{\alpha}_{ix}}(\boldsymbol{W}_{ix}\boldsymbol{x}_t)"
        r" + \operatorname{LN}_{\boldsymbol{\alpha}_{ih},\boldsymbol{\beta}_{ih}}"
        r"(\boldsymbol{W}_{ih}\boldsymbol{h}_{t-1}))")
    assert forward[r"\boldsymbol{h}_t"] == (
        r"\boldsymbol{o}_t \odot \tanh(\operatorname{LN}_{\boldsymbol{\alpha}_{hc},"
        r"\boldsymbol{\beta}_{hc}}(\boldsymbol{c}_t))")


def test_layer_norm_backward_equations():
    eqs = equations_of("lstm_layernorm")
    backward = printed(eqs.backward_equations())
    got = dict(backward)
    hat, u = r"\hat{\boldsymbol{u}}", r"\boldsymbol{u}"
    # the cell's layer norm: its output's adjoint needs a name of its own
    assert got[r"\delta\boldsymbol{\ell}_{hc,t}"] == (
        r"\delta\boldsymbol{h}_t \odot \boldsymbol{o}_t \odot (1 - \tanh^2(\boldsymbol{\ell}_{hc,t}))")
    assert got[rf"\delta{hat}_{{hc,t}}"] == (
        r"\delta\boldsymbol{\ell}_{hc,t} \odot \boldsymbol{\alpha}_{hc}")
    assert got[rf"\delta{u}_{{hc,t}}"] == (
        rf"\frac{{\delta{hat}_{{hc,t}} - \langle \delta{hat}_{{hc,t}} \rangle"
        rf" - {hat}_{{hc,t}} \langle \delta{hat}_{{hc,t}} \odot {hat}_{{hc,t}} \rangle}}{{s_{{hc,t}}}}")
    assert got[r"\delta\boldsymbol{c}_t"] == (
        r"\frac{\partial L}{\partial \boldsymbol{c}_t} + \delta\boldsymbol{u}_{hc,t}"
        r" + \delta\boldsymbol{c}_{t+1} \odot \boldsymbol{f}_{t+1}")
    # a gate's layer norms read its pre-activation's adjoint as it is
    assert got[rf"\delta{hat}_{{ix,t}}"] == r"\delta\boldsymbol{a}_{i,t} \odot \boldsymbol{\alpha}_{ix}"
    assert r"\delta\boldsymbol{\ell}_{ix,t}" not in got
    assert got[r"\delta\boldsymbol{x}_t"] == (
        r"\boldsymbol{W}_{ix}^\top\delta\boldsymbol{u}_{ix,t}"
        r" + \boldsymbol{W}_{fx}^\top\delta\boldsymbol{u}_{fx,t}"
        r" + \boldsymbol{W}_{gx}^\top\delta\boldsymbol{u}_{gx,t}"
        r" + \boldsymbol{W}_{ox}^\top\delta\boldsymbol{u}_{ox,t}")
    assert got[r"\delta\boldsymbol{h}_t"].endswith(
        r" + \boldsymbol{W}_{oh}^\top\delta\boldsymbol{u}_{oh,t+1}")
    # each layer norm's equations follow those of its statement: δh, δℓ_hc, δû_hc, δu_hc, δc
    lhs = [lhs for lhs, _ in backward]
    assert lhs[:5] == [r"\delta\boldsymbol{h}_t", r"\delta\boldsymbol{\ell}_{hc,t}",
                       rf"\delta{hat}_{{hc,t}}", rf"\delta{u}_{{hc,t}}", r"\delta\boldsymbol{c}_t"]
    params = dict(printed(eqs.parameter_equations()))
    assert params[r"\delta\boldsymbol{W}_{ix}"] == (
        r"\sum_t \delta\boldsymbol{u}_{ix,t}\,\boldsymbol{x}_t^\top")
    assert params[r"\delta\boldsymbol{\alpha}_{ix}"] == (
        rf"\sum_t \delta\boldsymbol{{a}}_{{i,t}} \odot {hat}_{{ix,t}}")
    assert params[r"\delta\boldsymbol{\beta}_{ih}"] == r"\sum_t \delta\boldsymbol{a}_{i,t}"
    assert params[r"\delta\boldsymbol{\alpha}_{hc}"] == (
        rf"\sum_t \delta\boldsymbol{{\ell}}_{{hc,t}} \odot {hat}_{{hc,t}}")
    assert params[r"\delta\boldsymbol{\beta}_{hc}"] == r"\sum_t \delta\boldsymbol{\ell}_{hc,t}"
    assert len(params) == 22


def test_layer_norm_is_defined_on_the_page():
    md = render(*load_source("lstm_layernorm"), "md")
    assert md.count(r"\operatorname{LN}_{\boldsymbol{\alpha},\boldsymbol{\beta}}(\boldsymbol{u}) = "
                    r"\boldsymbol{\alpha} \odot \hat{\boldsymbol{u}} + \boldsymbol{\beta}") == 1
    assert r"+ 10^{-5}}" in md  # the ε of torch.nn.LayerNorm
    assert "| $\\boldsymbol{\\alpha}_{ix}$ | `alpha_ix` | (hidden) | gain of layernorm() on the " \
        "line of i |" in md
    assert "| $\\boldsymbol{\\beta}_{hc}$ | `beta_hc` | (hidden) | bias of layernorm() on the " \
        "line of h |" in md
    assert r"For the layer norm with gain $\boldsymbol{\alpha}_v$" in md
    lstm = render(*load_source("lstm"), "md")
    assert "LN" not in lstm and "layer norm" not in lstm  # only where a cell has one

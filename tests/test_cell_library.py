"""Cell-specific checks of the built-in library beyond the reference comparison
(tests/emit/test_numpy_article.py compares every cell in reference_cells.CELLS with the
generated module; tests/test_reference_cells.py checks the references by finite differences).

* lstm_proj against torch.nn.LSTM(proj_size=P) with copied weights (float64, gradients too);
* lstm_layernorm's torch module against a straightforward torch implementation with
  torch.nn.functional.layer_norm (float64, gradients too);
* lstm_cifg against a standard LSTM whose input gate is the negated forget gate;
* sru: the input must have the hidden size, and the checker enforces it;
* slstm: the stabiliser m does not change h (against the unstabilised recurrence);
* minlstm is the paper's form written stably; slstm at extreme pre-activations only underflows;
* a constant inside a state-dependent sum (janet's sigmoid(s - 1)) stays in the loop.
"""

import numpy as np
import pytest
import reference_cells as ref
from conftest import require_torch
from helpers import module_class, numpy_module, torch_module

from gatespec import cells
from gatespec.build import build
from gatespec.check import load_module
from gatespec.derive import derive
from gatespec.emit import emit_numpy
from gatespec.errors import CheckError
from gatespec.parse import parse
from gatespec.schedule import schedule

NEW_CELLS = ["lstm_no_output_tanh", "lstm_proj", "lstm_cifg", "mgu", "janet", "indrnn",
             "ugrnn", "mingru", "minlstm", "sru", "slstm", "qrnn"]


def _rel(a, b):
    return np.abs(np.asarray(a) - b).max() / max(np.abs(b).max(), 1e-300)


def _module_from_text(text, name):
    """Generate and import a cell given as text (the pipeline reads built-in names or files)."""
    plan = schedule(derive(build(parse(text, f"{name}.gate"))))
    return load_module(emit_numpy(plan, f"{name}.gate"), f"{name}_numpy")


def test_every_builtin_cell_has_a_reference():
    """tests/emit/test_numpy_article.py compares the cells of reference_cells.CELLS: a
    built-in cell missing there would go unchecked."""
    missing = sorted(set(cells.names()) - set(ref.CELLS))
    assert not missing, (
        f"no hand-written reference for {', '.join(missing)}: add a class written from the "
        "paper to tests/reference_cells.py (forward and backward, like LSTM there) and an "
        "entry in its CELLS")
    assert sorted(ref.CELLS) == cells.names(), "reference_cells.CELLS names a cell not built in"


def test_every_new_cell_is_built_in_with_a_reference():
    names = cells.names()
    for name in NEW_CELLS:
        assert name in names
        assert name in ref.CELLS
        source = cells.source(name)
        assert source.startswith("#"), f"{name}: the header comment gives source and equations"
        assert f"cell {name} \"" in source


# ------------------------------------------------------------------ lstm_proj vs torch


def test_lstm_proj_parameter_names():
    mod = numpy_module("lstm_proj")
    assert mod.STATE_SIZES == {"h": "proj", "c": "hidden"}
    assert mod.PARAMS["W_hc"] == ("proj", "hidden")  # torch's weight_hr_l0
    assert mod.PARAMS["W_ih"] == ("hidden", "proj")
    assert "b_h" not in mod.PARAMS  # the projection has no bias


@pytest.mark.parametrize("impl", ["generated", "reference"])
def test_lstm_proj_matches_torch(impl):
    torch = require_torch()
    T, B, N, H, P = 5, 3, 4, 6, 3
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(N, H, proj_size=P).double()
    w_ih, w_hh = lstm.weight_ih_l0.detach().numpy(), lstm.weight_hh_l0.detach().numpy()
    b = (lstm.bias_ih_l0 + lstm.bias_hh_l0).detach().numpy()
    p = {"W_hc": lstm.weight_hr_l0.detach().numpy().copy()}
    for j, k in enumerate("ifgo"):
        sl = slice(j * H, (j + 1) * H)
        p[f"W_{k}x"], p[f"W_{k}h"], p[f"b_{k}"] = w_ih[sl].copy(), w_hh[sl].copy(), b[sl].copy()
    rng = np.random.default_rng(1)
    x = rng.normal(size=(T, B, N))
    h0, c0 = rng.normal(size=(B, P)), rng.normal(size=(B, H))
    d_out = rng.normal(size=(T, B, P))
    d_h, d_c = rng.normal(size=(B, P)), rng.normal(size=(B, H))

    xt = torch.tensor(x, requires_grad=True)
    h0t = torch.tensor(h0[None], requires_grad=True)
    c0t = torch.tensor(c0[None], requires_grad=True)
    out_t, (hT, cT) = lstm(xt, (h0t, c0t))
    loss = (out_t * torch.tensor(d_out)).sum() + (hT[0] * torch.tensor(d_h)).sum() \
        + (cT[0] * torch.tensor(d_c)).sum()
    loss.backward()

    if impl == "generated":
        mod = numpy_module("lstm_proj")
        assert set(mod.PARAMS) == set(p)
        out, fin, cache = mod.forward(x, (h0, c0), p)
        dx, ds0, dp = mod.backward(d_out, (d_h, d_c), cache, p)
    else:
        cell = ref.CELLS["lstm_proj"]
        out, fin = cell.forward(x, (h0, c0), p)
        dx, ds0, dp = cell.backward(x, (h0, c0), p, d_out, (d_h, d_c))
    assert out.shape == (T, B, P)
    assert _rel(out, out_t.detach().numpy()) <= 1e-12
    assert _rel(fin[0], hT.detach().numpy()[0]) <= 1e-12
    assert _rel(fin[1], cT.detach().numpy()[0]) <= 1e-12
    assert _rel(dx, xt.grad.numpy()) <= 1e-10
    assert _rel(ds0[0], h0t.grad.numpy()[0]) <= 1e-10
    assert _rel(ds0[1], c0t.grad.numpy()[0]) <= 1e-10
    assert _rel(dp["W_hc"], lstm.weight_hr_l0.grad.numpy()) <= 1e-10
    g_ih, g_hh = lstm.weight_ih_l0.grad.numpy(), lstm.weight_hh_l0.grad.numpy()
    g_b = lstm.bias_ih_l0.grad.numpy()
    np.testing.assert_allclose(g_b, lstm.bias_hh_l0.grad.numpy(), rtol=1e-12)
    for j, k in enumerate("ifgo"):
        sl = slice(j * H, (j + 1) * H)
        assert _rel(dp[f"W_{k}x"], g_ih[sl]) <= 1e-10, k
        assert _rel(dp[f"W_{k}h"], g_hh[sl]) <= 1e-10, k
        assert _rel(dp[f"b_{k}"], g_b[sl]) <= 1e-10, k


# ------------------------------------------------------------------ lstm_layernorm vs F.layer_norm


def _lstm_layernorm_by_hand(torch, x, h, c, p):
    """Ba et al. 2016's layer-normalised LSTM as lstm_layernorm.gate's header writes it,
    step by step with torch.nn.functional.layer_norm (population variance, eps 1e-5)."""
    F = torch.nn.functional
    H = h.shape[-1]

    def ln(u, name, bias=True):
        return F.layer_norm(u, (H,), p[f"alpha_{name}"], p[f"beta_{name}"] if bias else None,
                            eps=1e-5)

    outputs = []
    for x_t in x:
        def pre(k, x_t=x_t, h=h):
            return ln(x_t @ p[f"W_{k}x"].T, f"{k}x", bias=False) + ln(h @ p[f"W_{k}h"].T, f"{k}h")

        i, f, o = torch.sigmoid(pre("i")), torch.sigmoid(pre("f")), torch.sigmoid(pre("o"))
        g = torch.tanh(pre("g"))
        c = f * c + i * g
        h = o * torch.tanh(ln(c, "hc"))
        outputs.append(h)
    return torch.stack(outputs), (h, c)


@pytest.mark.parametrize("impl", ["torch", "autograd"])
def test_lstm_layernorm_matches_torch_layer_norm(impl):
    """The generated torch module (its derived backward, and its step-by-step autograd path)
    against F.layer_norm: outputs, final states and the gradients of x, the initial states
    and every parameter, in float64."""
    torch = require_torch()
    T, B, N, H = 5, 3, 4, 6
    mod = torch_module("lstm_layernorm")
    torch.manual_seed(0)
    layer = module_class(mod)(N, H, dtype=torch.float64, impl=impl)
    params = layer.layer_params(0)
    assert set(params) == set(ref.CELLS["lstm_layernorm"].PARAMS)
    with torch.no_grad():  # gains away from 1 and biases away from 0, so both are exercised
        for name, value in params.items():
            value.uniform_(0.5, 1.5) if name.startswith("alpha_") else value.uniform_(-0.5, 0.5)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(T, B, N, generator=gen, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(1, B, H, generator=gen, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(1, B, H, generator=gen, dtype=torch.float64, requires_grad=True)
    d_out = torch.randn(T, B, H, generator=gen, dtype=torch.float64)
    d_h, d_c = (torch.randn(B, H, generator=gen, dtype=torch.float64) for _ in range(2))
    leaves = [x, h0, c0, *params.values()]

    out, (hT, cT) = layer(x, (h0, c0))
    out_r, (hT_r, cT_r) = _lstm_layernorm_by_hand(torch, x, h0[0], c0[0], params)
    for a, b in ((out, out_r), (hT[0], hT_r), (cT[0], cT_r)):
        assert _rel(a.detach().numpy(), b.detach().numpy()) <= 1e-12

    def grads(out, hT, cT):
        loss = (out * d_out).sum() + (hT * d_h).sum() + (cT * d_c).sum()
        return torch.autograd.grad(loss, leaves)

    got, want = grads(out, hT[0], cT[0]), grads(out_r, hT_r, cT_r)
    names = ["x", "h0", "c0", *params]
    for name, a, b in zip(names, got, want, strict=True):
        assert _rel(a.numpy(), b.numpy()) <= 1e-10, name


# ------------------------------------------------------------------ lstm_cifg vs lstm


def test_lstm_cifg_is_lstm_with_negated_forget_gate_as_input_gate():
    """sigmoid(-a) = 1 - sigmoid(a): an LSTM with W_i* = -W_f*, b_i = -b_f is the CIFG LSTM."""
    cifg, lstm = numpy_module("lstm_cifg"), numpy_module("lstm")
    rng = np.random.default_rng(2)
    T, B, N, H = 6, 3, 5, 4
    p = cifg.init_params({"input": N, "hidden": H}, rng)
    q = dict(p)
    q["W_ix"], q["W_ih"], q["b_i"] = -p["W_fx"], -p["W_fh"], -p["b_f"]
    assert set(q) == set(lstm.PARAMS)
    x = rng.normal(size=(T, B, N))
    s0 = (rng.normal(size=(B, H)), rng.normal(size=(B, H)))
    out_a, fin_a, cache_a = cifg.forward(x, s0, p)
    out_b, fin_b, cache_b = lstm.forward(x, s0, q)
    assert _rel(out_a, out_b) <= 1e-12
    for a, b in zip(fin_a, fin_b, strict=True):
        assert _rel(a, b) <= 1e-12
    d_out = rng.normal(size=out_a.shape)
    d_fin = tuple(rng.normal(size=s.shape) for s in fin_a)
    dx_a, ds_a, dp_a = cifg.backward(d_out, d_fin, cache_a, p)
    dx_b, ds_b, dp_b = lstm.backward(d_out, d_fin, cache_b, q)
    assert _rel(dx_a, dx_b) <= 1e-10
    for a, b in zip(ds_a, ds_b, strict=True):
        assert _rel(a, b) <= 1e-10
    # Chain rule through the tie: the forget-gate parameters also drive the input gate.
    for f_name, i_name in (("W_fx", "W_ix"), ("W_fh", "W_ih"), ("b_f", "b_i")):
        assert _rel(dp_a[f_name], dp_b[f_name] - dp_b[i_name]) <= 1e-10, f_name
    for k in dp_a:
        if k not in ("W_fx", "W_fh", "b_f"):
            assert _rel(dp_a[k], dp_b[k]) <= 1e-10, k


# ------------------------------------------------------------------ sru: input size = hidden


SRU_TEXT = cells.source("sru")


def test_sru_input_is_hidden_sized():
    mod = numpy_module("sru")
    assert mod.INPUT_SIZE == "hidden" and mod.SIZES == ("hidden",)
    assert mod.STATES == ("c",) and mod.OUTPUT == "h"
    H = 4
    rng = np.random.default_rng(3)
    p = mod.init_params({"hidden": H}, rng)
    x = rng.normal(size=(5, 2, H))
    out, fin, _ = mod.forward(x, None, p)
    assert out.shape == (5, 2, H) and fin[0].shape == (2, H)
    r_out, r_fin = ref.CELLS["sru"].forward(x, None, p)
    assert _rel(out, r_out) <= 1e-12 and _rel(fin[0], r_fin[0]) <= 1e-12
    with pytest.raises(ValueError):  # an input of another width does not fit the weights
        mod.forward(rng.normal(size=(5, 2, H + 1)), None, p)


@pytest.mark.parametrize("decl", ["input x", "input x[input]", "input x[proj]"])
def test_sru_highway_needs_input_of_hidden_size(decl):
    text = SRU_TEXT.replace("input x[hidden]", decl)
    assert text != SRU_TEXT
    with pytest.raises(CheckError) as e:
        build(parse(text, "sru.gate"))
    other = "proj" if "proj" in decl else "input"
    assert "size mismatch" in str(e.value) and f"'{other}'" in str(e.value)
    # reported at the highway term `(1 - r) * x` of the output line
    assert e.value.span.line == text.splitlines().index("h = r * c' + (1 - r) * x") + 1


# ------------------------------------------------------------------ slstm


def test_slstm_stabiliser_does_not_change_h():
    """From zero states, h equals the unstabilised recurrence c = f c + exp(i~) z, n = f n + exp(i~)."""
    mod = numpy_module("slstm")
    rng = np.random.default_rng(4)
    T, B, N, H = 8, 3, 5, 4
    p = mod.init_params({"input": N, "hidden": H}, rng)
    p = {k: 2 * v for k, v in p.items()}
    x = rng.normal(size=(T, B, N))
    out, fin, _ = mod.forward(x, None, p)

    def sig(a):
        return 1 / (1 + np.exp(-a))

    h = c = n = np.zeros((B, H))
    hs = []
    for t in range(T):
        def pre(k, h=h, t=t):
            return x[t] @ p[f"W_{k}x"].T + h @ p[f"W_{k}h"].T + p[f"b_{k}"]
        z, i, f, o = np.tanh(pre("z")), np.exp(pre("i")), sig(pre("f")), sig(pre("o"))
        c = f * c + i * z
        n = f * n + i
        h = o * c / n
        hs.append(h)
    assert _rel(out, np.stack(hs)) <= 1e-12
    # The states are the unstabilised ones scaled by exp(-m).
    assert _rel(fin[1] * np.exp(fin[3]), c) <= 1e-12
    assert _rel(fin[2] * np.exp(fin[3]), n) <= 1e-12
    assert (fin[2] > 0).all()


def _extreme(name, dtype):
    mod = numpy_module(name)
    cell = ref.CELLS[name]
    rng = np.random.default_rng(3)
    n_in, n_states, _ = ref.dims(cell, 5, 4)
    params = ref.init_params(cell, 5, 4, rng)
    params = {k: np.sign(v).astype(dtype) * dtype(1e4) / v.size for k, v in params.items()}
    x = np.sign(rng.normal(size=(6, 3, n_in))).astype(dtype) * dtype(1e4)
    state0 = cell.valid_state0(tuple(rng.normal(size=(3, k)).astype(dtype) for k in n_states))
    return mod, params, x, state0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_slstm_extreme_preactivations_only_underflow(dtype):
    mod, params, x, state0 = _extreme("slstm", dtype)
    with np.errstate(all="raise", under="ignore"):
        out, _, cache = mod.forward(x, state0, params)
        grads = mod.backward(np.ones_like(out), None, cache, params)
    assert np.isfinite(out).all() and np.isfinite(grads[0]).all()
    assert all(np.isfinite(g).all() for g in grads[2].values())


PAPER_FORM_TEXT = """cell minlstm_paper "minLSTM as the paper writes it: f / (f + i)"
input x
state h
f = sigmoid(linear(x))
i = sigmoid(linear(x))
n = linear(x)
h' = f / (f + i) * h + i / (f + i) * n
"""


def test_minlstm_is_the_paper_form_written_stably():
    """The built-in cell writes f/(f+i) as sigmoid(log f - log i): the same function as the
    paper's form, and finite where the paper's form is 0/0 (both gates rounding to 0)."""
    mod, paper = numpy_module("minlstm"), _module_from_text(PAPER_FORM_TEXT, "minlstm_paper")
    assert set(mod.PARAMS) == set(paper.PARAMS)
    rng = np.random.default_rng(6)
    p = mod.init_params({"input": 5, "hidden": 4}, rng)
    x = rng.normal(size=(6, 3, 5))
    h0 = (rng.normal(size=(3, 4)),)
    assert _rel(mod.forward(x, h0, p)[0], paper.forward(x, h0, p)[0]) <= 1e-12
    _, params, x, state0 = _extreme("minlstm", np.float64)
    with np.errstate(all="raise", under="ignore"):
        out, _, cache = mod.forward(x, state0, params)
        grads = mod.backward(np.ones_like(out), None, cache, params)
        with pytest.raises(FloatingPointError, match="invalid"):
            paper.forward(x, state0, params)
    assert np.isfinite(out).all() and all(np.isfinite(g).all() for g in grads[2].values())


# ------------------------------------------------------------------ constants in the loop


def test_constant_in_state_dependent_sum_stays_in_the_loop():
    """Regression: `tanh(linear(x, h) + 1)` hoisted the lone constant 1 into an 'input-only'
    array and indexed it per step (TypeError: 'int' object is not subscriptable)."""
    text = 'cell shifted "test"\ninput x\nstate h\nh\' = tanh(linear(x, h) - 1)\n'
    mod = _module_from_text(text, "shifted")
    rng = np.random.default_rng(7)
    p = mod.init_params({"input": 3, "hidden": 2}, rng)
    x = rng.normal(size=(4, 2, 3))
    h = rng.normal(size=(2, 2))
    out, _, _ = mod.forward(x, (h,), p)
    for t in range(4):
        h = np.tanh(x[t] @ p["W_hx"].T + h @ p["W_hh"].T + p["b_h"] - 1)
        np.testing.assert_allclose(out[t], h, rtol=1e-13, atol=1e-13)

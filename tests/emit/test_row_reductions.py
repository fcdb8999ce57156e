"""rmsnorm(), softmax() and cumax(), each on its own: the forward is the textbook function
(torch's own F.rms_norm, softmax and cumsum, not gatespec's helpers), the derived gradients
match finite differences (NumPy) and autograd (torch), softmax and cumax do not overflow, and
tests/corpus/row_reductions.gate mixes them with the other constructs (every corpus test; the
JAX, ONNX, C++, Triton and CUDA ones with -m slow) and the built-in on_lstm uses cumax."""

import numpy as np
import pytest
from conftest import ROOT, require_torch
from helpers import numpy_module, torch_grad_errors

from gatespec.check import finite_difference_check

# one construct per cell, each where its gradient reaches weights, input and state
CELLS = {
    "rms": "input x\nstate h\nh' = tanh(rmsnorm(linear(x, h)))\n",
    "rms_bias": "input x\nstate h, c\nc' = c * sigmoid(linear(x, h)) + tanh(diag(h))\n"
                "h' = tanh(rmsnorm(c', bias=true))\n",
    "softmax": "input x\nstate h\nh' = softmax(linear(x, h)) + 0.5 * h\n",
    "cumax": "input x\nstate h, c\nc' = cumax(linear(x, h))\nh' = h * c' + 1 - cumax(linear(h))\n",
}


@pytest.fixture(params=sorted(CELLS))
def spec(request, tmp_path_factory):
    path = tmp_path_factory.mktemp("rows") / f"{request.param}.gate"
    path.write_text(f"cell {request.param}\n{CELLS[request.param]}")
    return str(path)


def test_numpy_gradients_match_finite_differences(spec):
    result = finite_difference_check(numpy_module(spec))
    assert result.worst < 1e-7, (result.worst_name, result.errors)


def test_torch_derived_backward_matches_autograd(spec):
    require_torch()
    errors = torch_grad_errors(spec)
    assert max(errors.values()) <= 1e-10, errors


def _by_torch(name, x, state, p):
    """One step of the cell `name` above, from torch's own functions: its output."""
    import torch
    import torch.nn.functional as F

    t = {k: torch.from_numpy(v) for k, v in p.items()}
    x, h = torch.from_numpy(x), torch.from_numpy(state[0])
    if name == "rms":
        u = x @ t["W_hx"].T + h @ t["W_hh"].T + t["b_h"]
        return torch.tanh(F.rms_norm(u, (h.shape[-1],), t["alpha_hxh"], eps=1e-5))
    if name == "softmax":
        return torch.softmax(x @ t["W_hx"].T + h @ t["W_hh"].T + t["b_h"], -1) + 0.5 * h
    c_new = torch.cumsum(torch.softmax(x @ t["W_cx"].T + h @ t["W_ch"].T + t["b_c"], -1), -1)
    return h * c_new + 1 - torch.cumsum(torch.softmax(h @ t["W_hh"].T + t["b_h"], -1), -1)


@pytest.mark.parametrize("name", ["rms", "softmax", "cumax"])
def test_forward_is_torchs_function(name, tmp_path):
    require_torch()
    path = tmp_path / f"{name}.gate"
    path.write_text(f"cell {name}\n{CELLS[name]}")
    mod = numpy_module(str(path))
    rng = np.random.default_rng(3)
    p = mod.init_params({"input": 3, "hidden": 6}, rng)
    p = {k: v + rng.normal(size=v.shape) for k, v in p.items()}  # gains away from 1
    x = rng.normal(size=(1, 2, 3))
    state = tuple(rng.normal(size=(2, 6)) for _ in mod.STATES)
    out, _, _ = mod.forward(x, state, p)
    assert np.allclose(out[0], _by_torch(name, x[0], state, p).numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", ["softmax", "cumax"])
def test_large_pre_activations_neither_overflow_nor_lose_the_gradient(name, tmp_path):
    """exp(1e4) overflows: the helpers subtract the row's maximum first."""
    path = tmp_path / f"{name}.gate"
    path.write_text(f"cell {name}\n{CELLS[name]}")
    mod = numpy_module(str(path))
    rng = np.random.default_rng(4)
    p = {k: 1e4 * v for k, v in mod.init_params({"input": 3, "hidden": 6}, rng).items()}
    x = rng.normal(size=(3, 2, 3))
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        out, final, cache = mod.forward(x, None, p)
        grads = mod.backward(np.ones_like(out), tuple(np.ones_like(f) for f in final), cache, p)
    assert np.isfinite(out).all()
    assert all(np.isfinite(g).all() for g in grads[2].values())



def test_scan_path_runs_rows_of_the_input():
    """Row reductions of the input alone are a scannable cell's coefficients: the scan
    (impl="scan") gives autograd's outputs and gradients."""
    torch = require_torch()
    from helpers import layer_grads, module_class, torch_module

    mod = torch_module(str(ROOT / "tests" / "corpus" / "row_reductions_scan.gate"))
    torch.manual_seed(0)
    layer = module_class(mod)(3, 5, dtype=torch.float64)
    x = torch.randn(6, 2, 3, dtype=torch.float64, requires_grad=True)
    h = torch.randn(1, 2, 5, dtype=torch.float64, requires_grad=True)
    out_s, fin_s, g_s = layer_grads(layer, x, h, "scan")
    out_a, fin_a, g_a = layer_grads(layer, x, h, "autograd")
    assert torch.allclose(out_s, out_a, rtol=1e-12, atol=1e-13)
    for a, b in zip([*fin_s, *g_s], [*fin_a, *g_a], strict=True):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-12)

"""The scan path (gatespec/emit/scan_lines.py): cells whose states are all linear recurrences
run forward and backward as scans over time, and agree with the step-by-step loop."""

import numpy as np
import pytest
from conftest import require_torch
from helpers import module_class, numpy_module, small_sizes, torch_module

from gatespec.check import load_module
from gatespec.pipeline import generate_text

# Cells that stress the scan path: an output that is not a state and values kept for the
# backward pass, two states, a coefficient that is a parameter, one that is zero, a state
# that does not read itself, an output that reads the previous state.
CELLS = {
    "fo_pool": "input x\nstate c\nz = tanh(linear(x))\nf = sigmoid(linear(x))\n"
               "o = sigmoid(linear(x))\nc' = f * c + (1 - f) * z\ny = o * tanh(c')\noutput y\n",
    "two_states": "input x\nstate h, c\nf = sigmoid(linear(x))\nc' = f * c + linear(x)\n"
                  "h' = (1 - f) * h + f * tanh(linear(x))\n",
    "per_unit": "input x\nstate h\nh' = diag(h) + exp(linear(x))\n",
    "decay_only": "input x\nstate h\nh' = sigmoid(linear(x)) * h\n",
    "no_self": "input x\nstate h\nh' = tanh(linear(x))\n",
    "reads_previous": "input x\nstate h\nf = sigmoid(linear(x))\nh' = f * h + 1 - f\n"
                  "y = h * softplus(linear(x))\noutput y\n",
    # a learned scalar as the coefficient: shape (), broadcast over batch and units
    "scalar_decay": "input x\nstate h\nh' = scalar(init=0.9) * h + tanh(linear(x, bias=false) "
                    "+ bias())\n",
    # coefficients of parameters alone, one of them the bias b_h, whose name the scan's
    # coefficient b_h would take
    "param_coefficients": "input x\nstate h\nh' = sigmoid(scalar(init=2)) * h + softplus(bias()) "
                          "* tanh(linear(x, bias=false))\n",
}


def _module(name, target):
    text = f"cell {name}\n" + CELLS[name]
    ((file, code),) = generate_text(text, f"{name}.gate", target).items()
    return load_module(code, file[:-3])


def _problem(module, T, B=3, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    sizes = {k: v for k, v in small_sizes(module).items() if k in module.SIZES}
    params = {k: v.astype(dtype) for k, v in module.init_params(sizes, rng).items()}
    x = rng.normal(size=(T, B, sizes[module.INPUT_SIZE])).astype(dtype)
    state0 = tuple(rng.normal(size=(B, sizes[module.STATE_SIZES[s]])).astype(dtype)
                   for s in module.STATES)
    return rng, params, x, state0


def _run(module, params, x, state0, d_out, d_final, scan):
    out, final, cache = module.forward(x, state0, params, scan=scan)
    grads = module.backward(d_out, d_final, cache, params, scan=scan)
    return out, final, grads


def _flat(out, final, grads):
    dx, d_state0, d_params = grads
    return [out, *final, dx, *d_state0, *(d_params[k] for k in sorted(d_params))]


SCANNED = ["mingru", "minlstm", "qrnn", *CELLS]


@pytest.mark.parametrize("name", SCANNED)
@pytest.mark.parametrize("T", [1, 2, 5, 17, 64])
def test_numpy_scan_equals_the_loop(name, T):
    module = _module(name, "numpy") if name in CELLS else numpy_module(name)
    assert module.SCAN_REFUSAL is None
    rng, params, x, state0 = _problem(module, T)
    out, final, _ = module.forward(x, state0, params, scan=False)
    d_out = rng.normal(size=out.shape)
    d_final = tuple(rng.normal(size=s.shape) for s in final)
    loop = _flat(*_run(module, params, x, state0, d_out, d_final, False))
    scan = _flat(*_run(module, params, x, state0, d_out, d_final, True))
    for a, b in zip(scan, loop, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    # the forward of one way and the backward of the other
    _, _, cache = module.forward(x, state0, params, scan=True)
    mixed = module.backward(d_out, d_final, cache, params, scan=False)
    np.testing.assert_allclose(mixed[0], loop[len(final) + 1], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("bias", [-12.0, 6.0, 12.0])
def test_float32_scan_over_16384_steps(bias):
    """Forget gates near 0 (sigmoid(-12): products underflow) and near 1 (sigmoid(6) = 0.9975,
    sigmoid(12) = 1 - 6e-6: every step carries far). Against float64, the float32 scan is
    never less exact than the float32 loop; where the loop itself holds 1e-5, the scan is
    within 1e-5 of it (relative to the largest value). At sigmoid(12) the loop drifts 6e-5
    from float64 over 16384 steps and the scan 1.6e-5: the bound is then the loop's."""
    module = numpy_module("qrnn")
    _, params, x, state0 = _problem(module, 16384, B=2)
    params["b_f"][:] = bias
    truth, _, _ = module.forward(x, state0, params, keep_cache=False, scan=False)
    params, x = {k: v.astype(np.float32) for k, v in params.items()}, x.astype(np.float32)
    state0 = tuple(s.astype(np.float32) for s in state0)
    loop, _, _ = module.forward(x, state0, params, keep_cache=False, scan=False)
    scan, _, _ = module.forward(x, state0, params, keep_cache=False, scan=True)
    assert loop.dtype == scan.dtype == np.float32
    scale = np.abs(truth).max()
    loop_error, scan_error = np.abs(loop - truth).max(), np.abs(scan - truth).max()
    assert scan_error <= max(loop_error, 1e-6 * scale)
    if loop_error <= 1e-5 * scale:
        assert np.abs(scan - loop).max() <= 1e-5 * scale


def test_cells_that_cannot_scan_say_why():
    module = numpy_module("lstm")
    assert "h: f reads h through the matrix W_fh" in module.SCAN_REFUSAL
    _, params, x, state0 = _problem(module, 3)
    with pytest.raises(ValueError, match="scan=True: this cell runs step by step only: not "
                                         "every state is a linear recurrence"):
        module.forward(x, state0, params, scan=True)
    # a recurrence the scan path does not cover yet: a product of the new state in the step
    text = "cell proj\ninput x\nstate h\nu = linear(x)\nh' = sigmoid(linear(x)) * h + u\n" \
           "y = linear(h')\noutput y\n"
    ((file, code),) = generate_text(text, "proj.gate", "numpy").items()
    assert "matrix product or a layer norm after the recurrence" in load_module(
        code, file[:-3]).SCAN_REFUSAL


@pytest.mark.parametrize("name", ["mingru", "qrnn", "fo_pool", "two_states", "scalar_decay",
                                  "param_coefficients"])
def test_torch_layer_scans_by_default_and_equals_the_loop(name):
    torch = require_torch()
    module = _module(name, "torch") if name in CELLS else torch_module(name)
    cls = module_class(module)
    results = {}
    for impl in ("auto", "scan", "torch", "autograd"):
        torch.manual_seed(0)
        layer = cls(4, 5, num_layers=2, bidirectional=True, dtype=torch.float64, impl=impl)
        x = torch.randn(11, 3, 4, dtype=torch.float64, requires_grad=True)
        out, final = layer(x)
        (out.square().sum() + sum(s.sin().sum() for s in final)).backward()
        results[impl] = [out, *final, x.grad, *(p.grad for p in layer.parameters())]
    assert module._backend("auto", x) is module._TORCH_SCAN
    for impl in ("auto", "scan", "autograd"):
        for a, b in zip(results[impl], results["torch"], strict=True):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_torch_impl_scan_is_refused_where_the_cell_cannot_scan():
    torch = require_torch()
    cls = module_class(torch_module("gru"))
    with pytest.raises(ValueError, match="impl='scan': gru runs step by step only: .* use "
                                         "impl='torch'"):
        cls(3, 4, impl="scan")(torch.randn(2, 1, 3))


@pytest.mark.parametrize("name", ["mingru", "qrnn", "fo_pool", "two_states",
                                  "param_coefficients"])
def test_numpy_scan_with_lengths_equals_the_loop(name):
    """With lengths, rows past their end carry their states (a = 1, b = 0 there) and their
    adjoints pass through: the scan equals the loop, outputs, states and every gradient."""
    module = _module(name, "numpy") if name in CELLS else numpy_module(name)
    rng, params, x, state0 = _problem(module, 9, B=4)
    lengths = np.array([3, 9, 1, 6])
    out, final, _ = module.forward(x, state0, params, lengths=lengths, scan=False)
    d_out = rng.normal(size=out.shape)
    d_final = tuple(rng.normal(size=s.shape) for s in final)
    runs = []
    for scan in (False, True):
        out, final, cache = module.forward(x, state0, params, lengths=lengths, scan=scan)
        runs.append(_flat(out, final, module.backward(d_out, d_final, cache, params,
                                                      scan=scan)))
    for a, b in zip(*runs, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    assert not runs[1][0][3:, 0].any()  # zeros past the first sequence's length


@pytest.mark.parametrize("name", ["mingru", "fo_pool"])
def test_torch_scan_on_a_packed_sequence_equals_the_loop(name):
    torch = require_torch()
    from torch.nn.utils.rnn import pack_sequence

    module = _module(name, "torch") if name in CELLS else torch_module(name)
    cls = module_class(module)
    results = {}
    for impl in ("scan", "torch"):
        torch.manual_seed(0)
        layer = cls(4, 5, num_layers=2, bidirectional=True, dtype=torch.float64, impl=impl)
        seqs = [torch.randn(n, 4, dtype=torch.float64, requires_grad=True) for n in (3, 7, 5)]
        out, final = layer(pack_sequence(seqs, enforce_sorted=False))
        (out.data.square().sum() + sum(s.sin().sum() for s in final)).backward()
        results[impl] = [out.data, *final, *(s.grad for s in seqs),
                         *(p.grad for p in layer.parameters())]
    for a, b in zip(results["scan"], results["torch"], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)

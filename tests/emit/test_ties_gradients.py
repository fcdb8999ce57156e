"""Tied and transposed weights (linear(v, weight=W_name) and weight=W_name.T): the gradient
of a weight used several times is the sum of its uses' gradients. Each tied cell is
compared with an untied twin whose uses have weights of their own, set equal to the tied
weight (or its transpose): the outputs agree, and the tied weight's gradient is the twin's
gradients summed, transposed back where the use was transposed. NumPy, and the torch
module's fused backward (impl="torch") and autograd through the cell (impl="autograd")."""

import numpy as np
import pytest
from conftest import require_torch
from helpers import cell_file, module_class, numpy_module, torch_module

# (tied cell, untied twin, {twin's weight: (tied weight, transposed)})
PAIRS = {
    "antisymmetric": (
        """input x
state h
h' = h + 0.5 * tanh(linear(h, bias=false) - linear(h, weight=W_hh.T, bias=false) + linear(x))
""",
        """input x
state h
u = linear(h, bias=false)
h' = h + 0.5 * tanh(linear(h, bias=false) - u + linear(x))
""",
        {"W_uh": ("W_hh", True)}),
    # a shared recurrent weight read after its line, a shared input weight, and a
    # transposed (hidden, input) weight mapping hidden -> input
    "shared": (
        """input x
state h, c[input]
h' = z * tanh(linear(h, weight=W_zh) + linear(x, weight=W_zx, bias=false))
z = sigmoid(linear(x, h))
c' = c * linear(h', weight=W_zx.T, bias=false)
""",
        """input x
state h, c[input]
u = linear(x, bias=false)
h' = z * tanh(linear(h) + u)
z = sigmoid(linear(x, h))
c' = c * linear(h', bias=false)
""",
        {"W_hh": ("W_zh", False), "W_ux": ("W_zx", False), "W_ch": ("W_zx", True)}),
}


def _specs(tmp_path, key):
    tied, twin, mapping = PAIRS[key]
    return (cell_file(tmp_path, f"{key}_tied", tied), cell_file(tmp_path, f"{key}_twin", twin),
            mapping)


def _twin_params(tied_params, twin_keys, mapping):
    out = {}
    for k in twin_keys:
        source, transposed = mapping.get(k, (k, False))
        out[k] = tied_params[source].T.copy() if transposed else tied_params[source]
    return out


def _fold(twin_grads, tied_keys, mapping):
    folded = {k: twin_grads[k].copy() for k in tied_keys}
    for k, (source, transposed) in mapping.items():
        folded[source] = folded[source] + (twin_grads[k].T if transposed else twin_grads[k])
    return folded


@pytest.mark.parametrize("key", sorted(PAIRS))
def test_numpy_gradient_of_a_tied_weight_is_the_sum_of_its_uses(key, tmp_path):
    tied_spec, twin_spec, mapping = _specs(tmp_path, key)
    tied, twin = numpy_module(tied_spec), numpy_module(twin_spec)
    assert set(twin.PARAMS) == set(tied.PARAMS) | set(mapping)  # the views are not PARAMS
    rng = np.random.default_rng(0)
    sizes = {"input": 3, "hidden": 4}
    params = tied.init_params(sizes, rng)
    x = rng.normal(size=(5, 2, 3))
    out, final, cache = tied.forward(x, None, params)
    out2, final2, cache2 = twin.forward(x, None, _twin_params(params, twin.PARAMS, mapping))
    assert np.allclose(out, out2, rtol=0, atol=1e-13)
    d_out = rng.normal(size=out.shape)
    d_fin = tuple(rng.normal(size=f.shape) for f in final)
    dx, ds, dp = tied.backward(d_out, d_fin, cache, params)
    dx2, ds2, dp2 = twin.backward(d_out, d_fin, cache2, _twin_params(params, twin.PARAMS, mapping))
    assert np.allclose(dx, dx2, rtol=0, atol=1e-12)
    expected = _fold(dp2, tied.PARAMS, mapping)
    assert dp.keys() == tied.PARAMS.keys()
    for k in tied.PARAMS:
        assert np.allclose(dp[k], expected[k], rtol=0, atol=1e-12), k
    # and a use's share is not zero: the sum is not the weight's own gradient alone
    for source, _ in mapping.values():
        assert not np.allclose(dp[source], dp2[source], rtol=0, atol=1e-6)


@pytest.mark.parametrize("key", sorted(PAIRS))
def test_torch_gradient_of_a_tied_weight_is_the_sum_of_its_uses(key, tmp_path):
    torch = require_torch()
    tied_spec, twin_spec, mapping = _specs(tmp_path, key)
    tied_cls = module_class(torch_module(tied_spec))
    twin_cls = module_class(torch_module(twin_spec))
    layers = 1 if key == "shared" else 2  # (shared's state c has the input's size)
    tied = tied_cls(3, 4, num_layers=layers, bidirectional=True, dtype=torch.float64)
    twin = twin_cls(3, 4, num_layers=layers, bidirectional=True, dtype=torch.float64)
    names = [n for n, _ in tied.named_parameters()]
    assert not any("_T_l" in n or "_S_l" in n for n in names)  # no view is a parameter
    with torch.no_grad():
        for name, p in twin.named_parameters():
            base, layer = name.rsplit("_l", 1)
            source, transposed = mapping.get(base, (base, False))
            value = getattr(tied, f"{source}_l{layer}")
            p.copy_(value.T if transposed else value)
    x = torch.randn(5, 2, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    for impl in ("torch", "autograd"):
        tied.impl = twin.impl = impl
        tied.zero_grad()
        twin.zero_grad()
        out, final = tied(x)
        out2, final2 = twin(x)
        assert torch.allclose(out, out2, rtol=0, atol=1e-13)
        gen = torch.Generator().manual_seed(2)
        loss, loss2 = 0, 0  # a random projection of the outputs and final states
        for a, b in zip([out, *final], [out2, *final2], strict=True):
            w = torch.randn(a.shape, dtype=torch.float64, generator=gen)
            loss, loss2 = loss + (a * w).sum(), loss2 + (b * w).sum()
        loss.backward()
        loss2.backward()
        twin_grads = {n: p.grad for n, p in twin.named_parameters()}
        for name, p in tied.named_parameters():
            base, layer = name.rsplit("_l", 1)
            expected = twin_grads[name].clone()
            for k, (source, transposed) in mapping.items():
                if source == base:
                    g = twin_grads[f"{k}_l{layer}"]
                    expected += g.T if transposed else g
            assert torch.allclose(p.grad, expected, rtol=0, atol=1e-12), (impl, name)


def test_torch_gradcheck_through_a_transposed_weight(tmp_path):
    torch = require_torch()
    tied_spec, _, _ = _specs(tmp_path, "shared")
    layer = module_class(torch_module(tied_spec))(3, 4, dtype=torch.float64, impl="torch")
    x = torch.randn(4, 2, 3, dtype=torch.float64, requires_grad=True)
    params = list(layer.parameters())

    def run(x, *values):
        return torch.func.functional_call(
            layer, dict(zip([n for n, _ in layer.named_parameters()], values, strict=True)),
            (x,))[0]

    assert torch.autograd.gradcheck(run, (x, *params))

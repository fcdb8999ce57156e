"""The PyTorch target: derived backward against autograd, gradcheck, and drop-in
equivalence with torch.nn.LSTM / GRU / RNN (weights copied with from_torch)."""

import pytest
from conftest import require_torch
from helpers import extra_inputs, layer_grads, module_class, small_sizes, torch_module

from gatespec import cells

torch = require_torch()
F64 = torch.float64


def _make(name, dtype=F64, seed=0, **kwargs):
    mod = torch_module(name)
    sizes = small_sizes(mod)
    extra = [sizes[s] for s in mod.SIZES if s not in ("input", "hidden")]
    torch.manual_seed(seed)
    layer = module_class(mod)(sizes["input"], sizes["hidden"], *extra, dtype=dtype, **kwargs)
    return mod, layer, sizes


def _rel(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-300)).item()


@pytest.mark.parametrize("name", cells.names())
def test_derived_backward_matches_autograd(name):
    # a cell that reads its input at hidden size (SRU) stacks only one direction
    both = torch_module(name).INPUT_SIZE == "input"
    mod, layer, sizes = _make(name, num_layers=2, bidirectional=both)
    x = torch.randn(5, 3, sizes["input"], dtype=F64, requires_grad=True)
    state = tuple(torch.randn(4 if both else 2, 3, sizes[mod.STATE_SIZES[s]], dtype=F64, requires_grad=True)
                  for s in mod.STATES)
    state = state[0] if len(state) == 1 else state
    extras = extra_inputs(mod, sizes, 5, 3, lambda shape: torch.randn(
        shape, dtype=F64, requires_grad=True))
    out_f, fin_f, g_f = layer_grads(layer, x, state, "torch", extras)
    out_a, fin_a, g_a = layer_grads(layer, x, state, "autograd", extras)
    assert _rel(out_f, out_a) <= 1e-12
    for a, b in zip(fin_f, fin_a, strict=True):
        assert _rel(a, b) <= 1e-12
    for a, b in zip(g_f, g_a, strict=True):
        assert _rel(a, b) <= 1e-10


@pytest.mark.parametrize("name", cells.names())
def test_gradcheck_fused_function(name):
    mod = torch_module(name)
    sizes = small_sizes(mod, hidden=3, input_=2, other=2)
    gen = torch.Generator().manual_seed(1)

    def rand(*shape):
        return (0.5 * torch.randn(*shape, generator=gen, dtype=F64)).requires_grad_()

    x = rand(3, 2, sizes[mod.INPUT_SIZE])
    state0 = [rand(2, sizes[mod.STATE_SIZES[s]]) for s in mod.STATES]
    params = [rand(*(sizes[s] for s in shape)) for shape in mod.PARAMS.values()]
    if "n" in mod.STATES and "m" in mod.STATES:  # sLSTM: the normaliser state must be positive
        state0[mod.STATES.index("n")] = (state0[mod.STATES.index("n")].detach().abs() + 0.5).requires_grad_()
    n = len(state0)
    extras = extra_inputs(mod, sizes, 3, 2, lambda shape: rand(*shape))
    k = len(extras)

    def fused(x, *tensors):
        params_ = dict(zip(mod.PARAMS, tensors[k + n:], strict=True))
        outputs, final = mod.run_layer(x, tensors[k:k + n], params_, "torch",
                                       **dict(zip(extras, tensors[:k], strict=True)))
        return outputs, *final

    assert torch.autograd.gradcheck(fused, (x, *extras.values(), *state0, *params))


def _copy_case(name, torch_cls, kwargs, dtype, batch_first):
    torch.manual_seed(3)
    ref = torch_cls(4, 5, num_layers=2, bidirectional=True, batch_first=batch_first,
                    dtype=dtype, **kwargs)
    ours = module_class(torch_module(name)).from_torch(ref)
    B, T = 3, 6
    shape = (B, T, 4) if batch_first else (T, B, 4)
    x1 = torch.randn(*shape, dtype=dtype, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_()
    hsize = kwargs.get("proj_size") or 5
    h0 = torch.randn(4, B, hsize, dtype=dtype)
    state = (h0, torch.randn(4, B, 5, dtype=dtype)) if torch_cls is torch.nn.LSTM else h0
    return ref, ours, x1, x2, state


TORCH_CASES = [("lstm", "LSTM", {}), ("gru_reset_after", "GRU", {}),
               ("srnn", "RNN", {"nonlinearity": "tanh"})]


@pytest.mark.parametrize("name,layer,kwargs", TORCH_CASES)
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
@pytest.mark.parametrize("batch_first", [False, True])
def test_drop_in_for_torch_nn(name, layer, kwargs, dtype, tol, batch_first):
    ref, ours, x1, x2, state = _copy_case(name, getattr(torch.nn, layer), kwargs, dtype,
                                          batch_first)
    out1, fin1 = ref(x1, state)
    out2, fin2 = ours(x2, state)
    assert type(fin1) is type(fin2)
    assert _rel(out2, out1) <= tol
    fins1 = fin1 if isinstance(fin1, tuple) else (fin1,)
    fins2 = fin2 if isinstance(fin2, tuple) else (fin2,)
    for a, b in zip(fins2, fins1, strict=True):
        assert a.shape == b.shape and _rel(a, b) <= tol
    g = torch.randn_like(out1)
    (out1 * g).sum().backward()
    (out2 * g).sum().backward()
    assert _rel(x2.grad, x1.grad) <= tol
    back = ours.to_torch()  # our weight gradients, laid out as torch's
    for (n1, p1), (n2, p2) in zip(ref.named_parameters(), back.named_parameters(), strict=True):
        assert n1 == n2
    grads = {}
    for layer_k, suffix in ours._layers():
        for torch_name, names in torch_module(name).TORCH_WEIGHTS:
            parts = [getattr(ours, f"{n}_l{layer_k}{suffix}").grad for n in names]
            grads[f"{torch_name}_l{layer_k}{suffix}"] = torch.cat(parts)
    for key, value in grads.items():
        assert _rel(value, getattr(ref, key).grad) <= tol, key


def test_article_gru_refuses_torch_gru():
    gru = module_class(torch_module("gru"))
    with pytest.raises(TypeError, match="different functions"):
        gru.from_torch(torch.nn.GRU(3, 4))
    lstm = module_class(torch_module("lstm"))
    with pytest.raises(TypeError, match="torch.nn.LSTM"):
        lstm.from_torch(torch.nn.GRU(3, 4))


def test_no_grad_saves_nothing(monkeypatch):
    mod, layer, sizes = _make("lstm")
    calls = []
    real = mod._TORCH_OPS.forward
    monkeypatch.setattr(mod._TORCH_OPS, "forward", lambda *a: calls.append(a[3]) or real(*a))
    x = torch.randn(4, 2, sizes["input"], dtype=F64)
    with torch.no_grad():
        out, _ = layer(x)
    assert out.grad_fn is None and calls == [False]
    out, _ = layer(x)
    assert out.grad_fn is not None and calls == [False, True]


def test_unbatched_input_and_default_state():
    mod, layer, sizes = _make("gru")
    x = torch.randn(6, sizes["input"], dtype=F64)
    out, h = layer(x)
    batched, hb = layer(x.unsqueeze(1))
    assert out.shape == (6, sizes["hidden"]) and h.shape == (1, sizes["hidden"])
    assert torch.equal(out, batched.squeeze(1)) and torch.equal(h, hb.squeeze(1))


def test_bias_false_and_reset_parameters():
    mod, layer, sizes = _make("lstm", bias=False)
    names = [n for n, _ in layer.named_parameters()]
    assert not any(n.startswith("b_") for n in names)
    bound = 1 / sizes["hidden"] ** 0.5
    assert all(p.abs().max() <= bound for p in layer.parameters())
    x = torch.randn(3, 2, sizes["input"], dtype=F64)
    ref = torch.nn.LSTM(sizes["input"], sizes["hidden"], bias=False, dtype=F64)
    ours = module_class(torch_module("lstm")).from_torch(ref)
    assert _rel(ours(x)[0], ref(x)[0]) <= 1e-12


def test_torch_compile_of_reference_path():
    mod, layer, sizes = _make("srnn", dtype=torch.float32)
    layer.impl = "autograd"
    x = torch.randn(3, 2, sizes["input"])
    compiled = torch.compile(layer, backend="eager")
    assert torch.allclose(compiled(x)[0], layer(x)[0])


def test_projection_must_match():
    lstm, proj = module_class(torch_module("lstm")), module_class(torch_module("lstm_proj"))
    with pytest.raises(TypeError, match="without proj_size"):
        lstm.from_torch(torch.nn.LSTM(3, 4, proj_size=2))
    with pytest.raises(TypeError, match="with proj_size > 0"):
        proj.from_torch(torch.nn.LSTM(3, 4))


def test_output_copied_into_the_state_is_torch_rnn(tmp_path):
    """Issue 9: `output y` with `h' = y` claims torch.nn.RNN; it ended in StopIteration.
    Weights copied from torch.nn.RNN give its outputs, final state and input gradient."""
    path = tmp_path / "rnn_copy.gate"
    path.write_text("cell rnn_copy\ninput x\nstate h\noutput y\ny = tanh(linear(x, h))\n"
                    "h' = y\nequivalent torch.nn.RNN gates y\n")
    torch.manual_seed(4)
    ref = torch.nn.RNN(3, 4, num_layers=2, bidirectional=True, dtype=F64)
    ours = module_class(torch_module(str(path))).from_torch(ref)
    x1 = torch.randn(5, 2, 3, dtype=F64, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_()
    h0 = torch.randn(4, 2, 4, dtype=F64)
    (out1, fin1), (out2, fin2) = ref(x1, h0), ours(x2, h0)
    assert _rel(out2, out1) <= 1e-12 and _rel(fin2, fin1) <= 1e-12
    g = torch.randn_like(out1)
    (out1 * g).sum().backward()
    (out2 * g).sum().backward()
    assert _rel(x2.grad, x1.grad) <= 1e-10

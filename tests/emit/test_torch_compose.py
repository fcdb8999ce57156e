"""The generated torch layer composes with PyTorch (issue 11 section 2): torch.compile
(fullgraph, forward and backward, one graph for every T), torch.export, torch.func.grad and
vmap, double backward, autocast as torch.nn does it, and one clear line where something
cannot work (torch.jit.script). Values and gradients are compared with the eager layer and
with impl="autograd" (the cell as written, differentiated by autograd)."""

import math

import pytest
from conftest import require_torch
from helpers import input_width, module_class, small_sizes, torch_module

import gatespec
from gatespec.check import load_module
from gatespec.pipeline import generate_text

torch = require_torch()
F64 = torch.float64
CELLS = ["lstm", "gru", "lstm_layernorm"]  # the article's LSTM and GRU, and a layer-norm cell


def _first_by_default(*names):
    """The first case in the default run, the others marked slow (the default run stays fast)."""
    return [names[0], *(pytest.param(n, marks=pytest.mark.slow) for n in names[1:])]


def _make(name, dtype=F64, seed=0, **kwargs):
    mod = torch_module(name)
    sizes = small_sizes(mod, hidden=3, input_=2, other=2)
    extra = [sizes[s] for s in mod.SIZES if s not in ("input", "hidden")]
    torch.manual_seed(seed)
    layer = module_class(mod)(sizes["input"], sizes["hidden"], *extra, dtype=dtype, **kwargs)
    return mod, layer, sizes


def _finals(final):
    return final if isinstance(final, tuple) else (final,)


def _loss(out, final):
    """A loss that reaches every output and final state, with unequal weights."""
    w = torch.linspace(0.5, 1.5, out.numel(), dtype=out.dtype).reshape(out.shape)
    return (out * w).sum() + sum((f ** 2).sum() for f in _finals(final))


def _run(layer, x, impl):
    """Outputs, final states and gradients (input, then parameters) of _loss."""
    layer.impl = impl
    layer.zero_grad()
    x = x.detach().clone().requires_grad_()
    out, final = layer(x)
    _loss(out, final).backward()
    grads = [x.grad, *(p.grad for p in layer.parameters())]
    return out.detach(), [f.detach() for f in _finals(final)], grads


def _assert_same(a, b, tol=1e-10):
    for u, v in zip(a, b, strict=True):
        if isinstance(u, list):
            _assert_same(u, v, tol)
        else:
            torch.testing.assert_close(u, v, rtol=tol, atol=tol)


# -- torch.compile -------------------------------------------------------------------------

def _check_compile(name, backend, dynamic=None, num_layers=2, lengths=(3, 4, 5)):
    """Compiled forward and backward against eager and impl="autograd", for several T;
    returns the recorded graphs."""
    from torch._dynamo.testing import CompileCounterWithBackend

    torch._dynamo.reset()
    mod, layer, sizes = _make(name, num_layers=num_layers)
    counter = CompileCounterWithBackend(backend)
    compiled = torch.compile(layer, fullgraph=True, backend=counter, dynamic=dynamic)
    frames = []
    for T in lengths:
        x = torch.randn(T, 2, sizes["input"], dtype=F64)
        got = _run(compiled, x, "torch")
        _assert_same(got, _run(layer, x, "torch"))
        _assert_same(got, _run(layer, x, "autograd"))
        frames.append(counter.frame_count)
    # no recompile for a new T: with dynamic=True nothing after the first call; by default
    # the second T makes the length dynamic (one recompile) and later ones compile nothing
    if dynamic:
        assert len(set(frames)) == 1, frames
    else:
        assert frames[-1] == frames[-2] <= 2, frames
    return mod, counter.graphs


def test_compile_fullgraph_forward_backward_one_graph_for_every_T():
    # aot_eager traces forward and backward through the ops' fake implementations, as
    # inductor does, without inductor's C++ build (test_compile_inductor, slow)
    mod, graphs = _check_compile("lstm", "aot_eager", dynamic=True, num_layers=1)
    # the graph calls this module's forward and backward ops, not an unrolled loop
    name = mod._FORWARD_OP._qualname.split("::")[1].removesuffix("_forward")
    graph = next(g for g in graphs if hasattr(g, "fwd_body_0"))  # the autograd.Function's
    forward, backward = graph.fwd_body_0.code, graph.bwd_body_0.code
    assert f"{name}_forward" in forward and f"{name}_backward" in backward
    assert "sigmoid" not in forward + backward


@pytest.mark.slow
@pytest.mark.parametrize("name", CELLS)
def test_compile_fullgraph_automatic_dynamic(name):
    _check_compile(name, "aot_eager")


@pytest.mark.slow
def test_compile_inductor():
    _check_compile("lstm", "inductor", num_layers=1, lengths=(3, 4, 6))


# -- torch.export --------------------------------------------------------------------------

@pytest.mark.parametrize("name", _first_by_default(*CELLS))
def test_export_with_dynamic_T(name):
    mod, layer, sizes = _make(name)
    x = torch.randn(4, 2, sizes["input"], dtype=F64)
    program = torch.export.export(layer, (x,), dynamic_shapes={"input": {0: torch.export.Dim("T", min=1)}})
    run = program.module()
    assert mod._FORWARD_OP._qualname.split("::")[1] in str(program.graph)
    for T in (1, 6):
        x = torch.randn(T, 2, sizes["input"], dtype=F64, requires_grad=True)
        out, final = run(x)
        _loss(out, final).backward()  # the op's own backward rule
        expected = _run(layer, x, "autograd")
        _assert_same([out.detach(), [f.detach() for f in _finals(final)], x.grad],
                     [*expected[:2], expected[2][0]])


# -- torch.func and double backward ---------------------------------------------------------

@pytest.mark.parametrize("name", CELLS)
def test_func_grad_matches_autograd(name):
    mod, layer, sizes = _make(name)
    params = {k: v.detach() for k, v in layer.named_parameters()}
    x = torch.randn(4, 2, sizes["input"], dtype=F64)

    def loss(params, x):
        return _loss(*torch.func.functional_call(layer, params, (x,)))

    grads = torch.func.grad(loss, argnums=(0, 1))(params, x)
    expected = _run(layer, x, "autograd")[2]
    _assert_same([grads[1], *grads[0].values()], expected)


@pytest.mark.parametrize("name", CELLS)
def test_vmap_over_a_batch_of_inputs(name):
    mod, layer, sizes = _make(name)
    xs = torch.randn(3, 4, 2, sizes["input"], dtype=F64)
    for dim in (0, 2):  # the mapped dimension first, and inside (T, V, B, input)
        inputs = xs.movedim(0, dim)
        out, final = torch.func.vmap(layer, in_dims=dim)(inputs)
        for k in range(3):
            o, f = layer(xs[k])
            _assert_same([out[k], [g[k] for g in _finals(final)]], [o, list(_finals(f))])


def test_vmap_of_grad_per_sample_gradients():
    mod, layer, sizes = _make("lstm")
    params = {k: v.detach() for k, v in layer.named_parameters()}
    xs = torch.randn(3, 4, 2, sizes["input"], dtype=F64)

    def loss(params, x):
        return _loss(*torch.func.functional_call(layer, params, (x,)))

    grads = torch.func.vmap(torch.func.grad(loss), in_dims=(None, 0))(params, xs)
    for k in range(3):
        _assert_same([g[k] for g in grads.values()], _run(layer, xs[k], "autograd")[2][1:])


def test_vmap_over_stacked_weights():
    """Mapped weights (an ensemble) cannot fold into the batch: one op call per member."""
    mod, layer, sizes = _make("lstm")
    members = [_make("lstm", seed=s)[1] for s in range(3)]
    stacked = {k: torch.stack([dict(m.named_parameters())[k].detach() for m in members])
               for k, _ in layer.named_parameters()}
    x = torch.randn(4, 2, sizes["input"], dtype=F64)
    out, _ = torch.func.vmap(lambda p: torch.func.functional_call(layer, p, (x,)))(stacked)
    for k, member in enumerate(members):
        _assert_same([out[k]], [member(x)[0]])


def test_func_vjp_and_jacrev_match_autograd():
    """torch.func.vjp calls the backward after leaving its transform (as jacrev does,
    under vmap): the gradients are still the reference's."""
    mod, layer, sizes = _make("lstm")
    x = torch.randn(3, 2, sizes["input"], dtype=F64)
    cotangent = torch.randn(3, 2, sizes["hidden"], dtype=F64)
    results = {}
    for impl in ("torch", "autograd"):
        layer.impl = impl
        _, vjp = torch.func.vjp(lambda x: layer(x)[0], x)
        results[impl] = [vjp(cotangent)[0], torch.func.jacrev(lambda x: layer(x)[0])(x)]
    _assert_same(results["torch"], results["autograd"])


def test_forward_mode_refused_in_one_line():
    mod, layer, sizes = _make("gru")
    x, v = torch.randn(2, 3, 2, sizes["input"], dtype=F64)
    with pytest.raises(NotImplementedError, match=r"^gru: the fused layer has no forward-mode "
                                                  r"derivative .* use impl='autograd'"):
        torch.func.jvp(lambda x: layer(x)[0], (x,), (v,))
    layer.impl = "autograd"  # what the message says works
    _, tangent = torch.func.jvp(lambda x: layer(x)[0], (x,), (v,))
    jacobian = torch.func.jacrev(lambda x: layer(x)[0])(x)
    _assert_same([tangent], [(jacobian * v).sum(dim=(3, 4, 5))])


def test_vmap_of_the_backward_op():
    mod, layer, sizes = _make("lstm")
    x = torch.randn(3, 2, sizes["input"], dtype=F64)
    state0 = [torch.randn(2, sizes["hidden"], dtype=F64) for _ in mod.STATES]
    params = list(layer.layer_params(0).values())
    with torch.no_grad():
        saved = mod._FORWARD_OP(x, state0, params, None, "torch", False, True)[3:]
        d_outputs = torch.randn(4, 3, 2, sizes["hidden"], dtype=F64)

        def backward(d):
            return mod._BACKWARD_OP(d, state0, x, saved, params, None, "torch", False)

        mapped = torch.func.vmap(backward)(d_outputs)
        for k in range(4):
            _assert_same([m[k] for m in mapped], backward(d_outputs[k]))


@pytest.mark.parametrize("name", _first_by_default("gru", "lstm", "lstm_layernorm"))
def test_gradgradcheck(name):
    mod = torch_module(name)
    sizes = small_sizes(mod, hidden=2, input_=2, other=2)
    gen = torch.Generator().manual_seed(2)

    def rand(*shape):
        return (0.5 * torch.randn(*shape, generator=gen, dtype=F64)).requires_grad_()

    x = rand(2, 2, sizes[mod.INPUT_SIZE])
    state0 = [rand(2, sizes[mod.STATE_SIZES[s]]) for s in mod.STATES]
    params = [rand(*(sizes[s] for s in shape)) for shape in mod.PARAMS.values()]
    n = len(state0)

    def fused(x, *tensors):
        outputs, final = mod.run_layer(x, tensors[:n], dict(zip(mod.PARAMS, tensors[n:],
                                                                 strict=True)), "torch")
        return outputs, *final

    assert torch.autograd.gradgradcheck(fused, (x, *state0, *params))


def test_first_backward_keeps_the_fused_path():
    """Only create_graph=True differentiates the reference: a plain backward runs the
    derived backward op (and so the double-backward fallback costs nothing otherwise)."""
    mod, layer, sizes = _make("lstm")
    calls = []
    real = mod._TORCH_OPS.backward
    mod._TORCH_OPS.backward = lambda *a, **k: calls.append(1) or real(*a, **k)
    try:
        x = torch.randn(3, 2, sizes["input"], dtype=F64, requires_grad=True)
        out, _ = layer(x)
        (g,) = torch.autograd.grad(out.sum(), x, create_graph=True)
        assert calls == [] and g.requires_grad
        out, _ = layer(x)
        out.sum().backward()
        assert calls == [1]
    finally:
        mod._TORCH_OPS.backward = real


# -- autocast --------------------------------------------------------------------------------

@pytest.mark.parametrize("name,torch_layer", [
    ("lstm", "LSTM"), pytest.param("gru_torch", "GRU", marks=pytest.mark.slow)])
def test_autocast_computes_like_torch_nn_lstm(name, torch_layer):
    """Every cell computes in the autocast dtype, as torch.nn.LSTM does (on the CPU,
    torch.nn.GRU returns float32 from bfloat16 products, so only its values compare)."""
    torch.manual_seed(5)
    ref = getattr(torch.nn, torch_layer)(4, 8, num_layers=2)
    ours = module_class(torch_module(name)).from_torch(ref)
    x1 = torch.randn(6, 3, 4, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out1, fin1 = ref(x1)
        out2, fin2 = ours(x2)
    for a, b in zip([out2, *_finals(fin2)], [out1, *_finals(fin1)], strict=True):
        assert a.dtype == torch.bfloat16 and b.dtype == (torch.bfloat16 if name == "lstm"
                                                         else torch.float32)
        torch.testing.assert_close(a.float(), b.float(), rtol=0.05, atol=0.02)
    out1.float().sum().backward()
    out2.float().sum().backward()
    assert x2.grad.dtype == x1.grad.dtype == torch.float32
    torch.testing.assert_close(x2.grad, x1.grad, rtol=0.05, atol=0.05)
    assert all(p.grad.dtype == torch.float32 for p in ours.parameters())


@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize("impl", _first_by_default("torch", "autograd"))
def test_autocast_runs_the_cell_in_its_dtype(name, impl):
    """Cells torch.nn lacks: under autocast the layer computes in bfloat16 throughout, so its
    output is the float32 layer's within bfloat16 rounding, by either path."""
    mod, layer, sizes = _make(name, dtype=torch.float32, impl=impl)
    x = torch.randn(5, 2, sizes["input"])
    state = tuple(torch.randn(1, 2, sizes[mod.STATE_SIZES[s]]) for s in mod.STATES)
    state = state[0] if len(state) == 1 else state
    expected, _ = layer(x, state)
    half = tuple(s.bfloat16() for s in _finals(state))  # taken, as torch.nn takes it
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, final = layer(x, half[0] if len(half) == 1 else half)
    assert out.dtype == torch.bfloat16 and all(f.dtype == torch.bfloat16 for f in _finals(final))
    torch.testing.assert_close(out.float(), expected, rtol=0.05, atol=0.03)


def test_autocast_leaves_float64_alone():
    mod, layer, sizes = _make("lstm")
    x = torch.randn(3, 2, sizes["input"], dtype=F64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, _ = layer(x)
    assert out.dtype == F64 and torch.equal(out, layer(x)[0])


# -- what cannot work says so, in one line ---------------------------------------------------

def test_jit_script_refused_in_one_line():
    mod, layer, sizes = _make("lstm")
    with pytest.raises(TypeError) as info:
        torch.jit.script(layer)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("torch.jit.script cannot compile gatespec's LSTM (lstm.gate")
    assert "use torch.compile(model), torch.export.export(model, (input,))" in message


def test_jit_trace_records_the_op_for_inference():
    mod, layer, sizes = _make("gru")
    traced = torch.jit.trace(layer, (torch.randn(4, 2, sizes["input"], dtype=F64),))
    x = torch.randn(7, 2, sizes["input"], dtype=F64, requires_grad=True)
    out, h = traced(x)
    _assert_same([out, h], list(layer(x)))
    with pytest.raises(RuntimeError, match="kept no cache for a backward pass .* train the "
                                           "module itself, or torch.compile it"):
        out.sum().backward()


# -- the ops ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", gatespec.cells.names())
def test_fake_shapes_are_the_real_ones(name):
    """What torch.compile and torch.export are told each op returns is what it returns."""
    mod, layer, sizes = _make(name)
    # the ops take x packed with the further inputs (gru_cond's context)
    x = torch.randn(3, 2, input_width(mod, layer._layer_sizes[0]), dtype=F64)
    state0 = [torch.randn(2, sizes[mod.STATE_SIZES[s]], dtype=F64) for s in mod.STATES]
    params = list(layer.layer_params(0).values())
    with torch.no_grad():  # as the ops run their implementations: below autograd
        for keep in (True, False):
            real = mod._op_forward(x, state0, params, None, "torch", False, keep)
            fake = mod._op_forward_fake(x, state0, params, None, "torch", False, keep)
            assert [t.shape for t in real] == [t.shape for t in fake]
            assert all(t.dtype == F64 for t in real)
        saved = mod._op_forward(x, state0, params, None, "torch", False, True)[1 + len(state0):]
        args = (torch.randn_like(real[0]), state0, x, saved, params, None, "torch", False)
        assert ([t.shape for t in mod._op_backward(*args)]
                == [t.shape for t in mod._op_backward_fake(*args)])


def test_batch_sizes_reach_the_backend_only_when_given():
    """INTERFACE: backends get the keyword batch_sizes only when it is not None, so one that
    has not learnt it keeps working for full-length batches."""
    mod, layer, sizes = _make("lstm")
    seen = []
    real_forward, real_backward = mod._TORCH_OPS.forward, mod._TORCH_OPS.backward

    def forward(*args, **kwargs):
        seen.append(("forward", sorted(kwargs)))
        return real_forward(*args)

    def backward(*args, **kwargs):
        seen.append(("backward", sorted(kwargs)))
        return real_backward(*args)

    mod._TORCH_OPS.forward, mod._TORCH_OPS.backward = forward, backward
    try:
        x = torch.randn(3, 2, sizes["input"], dtype=F64, requires_grad=True)
        state0 = tuple(torch.zeros(2, sizes["hidden"], dtype=F64) for _ in mod.STATES)
        params = layer.layer_params(0)
        mod.run_layer(x, state0, params, "torch")[0].sum().backward()
        full = torch.tensor([2, 2, 2])
        mod.run_layer(x, state0, params, "torch", batch_sizes=full)[0].sum().backward()
    finally:
        mod._TORCH_OPS.forward, mod._TORCH_OPS.backward = real_forward, real_backward
    assert seen == [("forward", []), ("backward", []),
                    ("forward", ["batch_sizes"]), ("backward", ["batch_sizes"])]


def test_reference_with_batch_sizes_runs_each_sequence_at_its_length():
    """The path double backward and impl="autograd" take for a batch with lengths."""
    mod, layer, sizes = _make("lstm")
    lengths = [4, 2, 2, 1]
    x = torch.randn(4, 4, sizes["input"], dtype=F64)
    state0 = tuple(torch.randn(4, sizes["hidden"], dtype=F64) for _ in mod.STATES)
    params = layer.layer_params(0)
    batch_sizes = torch.tensor([sum(n > t for n in lengths) for t in range(4)])
    out, final = mod._reference(x, state0, params, batch_sizes)
    for b, n in enumerate(lengths):
        alone, alone_final = mod._reference(x[:n, b:b + 1], tuple(s[b:b + 1] for s in state0),
                                            params)
        _assert_same([out[:n, b:b + 1], *(f[b:b + 1] for f in final)], [alone, *alone_final])
        assert torch.all(out[n:, b] == 0)


@pytest.mark.slow
@pytest.mark.parametrize("name", CELLS)
def test_opcheck(name):
    """torch.library.opcheck: schema, fake tensors, autograd registration, AOT dispatch."""
    mod, layer, sizes = _make(name)
    x = torch.randn(3, 2, sizes["input"], dtype=F64, requires_grad=True)
    state0 = [torch.randn(2, sizes[mod.STATE_SIZES[s]], dtype=F64) for s in mod.STATES]
    params = list(layer.layer_params(0).values())
    torch.library.opcheck(mod._FORWARD_OP, (x, state0, params, None, "torch", False, True))


def _cell(name, body):
    return f"cell {name}\ninput x\nstate h\n{body}\n"


def test_op_names_unique_per_module():
    """Two modules for cells of one name, a module imported twice, and gatespec.compile's
    in-memory module beside a file of the same cell: each has its own ops, and each runs
    its own cell."""
    def load(body):
        (file_name, code), = generate_text(_cell("same", body), "same.gate", "torch").items()
        return load_module(code, file_name[:-3])

    tanh, relu, again = (load(f"h' = {f}(linear(x, h))") for f in ("tanh", "relu", "relu"))
    memory = gatespec.compile(_cell("same", "h' = relu(linear(x, h))"), target="torch")
    modules = [tanh, relu, again, memory]
    names = [m._FORWARD_OP._qualname for m in modules]
    assert len(set(names)) == 4, names
    assert names[2] == names[1].replace("_forward", "_2_forward")  # a suffix, not a replaced op
    x = -torch.ones(2, 1, 3, dtype=F64)
    for m in modules:
        layer = module_class(m)(3, 2, dtype=F64)
        with torch.no_grad():
            for p in layer.parameters():
                p.fill_(0.5)
        out, _ = layer(x)
        # each unit: 0.5 * (-1 - 1 - 1) + 0.5 (bias) = -1 from zero state
        assert out[0, 0, 0].item() == pytest.approx(math.tanh(-1.0) if m is tanh else 0.0)

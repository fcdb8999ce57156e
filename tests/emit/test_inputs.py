"""Further input sequences (`input x, c[context]`) in the generated modules' interfaces:
keyword arguments named after the input, checked as the main input is, gradients returned,
and read alike by every layer and direction (a reverse direction reversed). The values
themselves are checked against hand-written references and autograd elsewhere (gru_cond
in the per-cell tests, the corpus's masks_and_inputs and context_pointwise)."""

import numpy as np
import pytest
from conftest import require_module, require_torch
from helpers import module_class, numpy_module, torch_module


def _numpy_problem(T=4, B=2):
    mod = numpy_module("gru_cond")
    rng = np.random.default_rng(0)
    params = mod.init_params({"input": 3, "hidden": 4, "context": 5}, rng)
    return mod, params, rng.normal(size=(T, B, 3)), rng.normal(size=(T, B, 5))


def test_numpy_interface():
    mod, params, x, c = _numpy_problem()
    assert mod.EXTRA_INPUTS == {"c": "context"} and mod.SIZES == ("input", "hidden", "context")
    out, final, cache = mod.forward(x, None, params, c=c)
    dx, d_state0, d_params, d_inputs = mod.backward(np.ones_like(out), None, cache, params)
    assert dx.shape == x.shape and set(d_inputs) == {"c"} and d_inputs["c"].shape == c.shape
    y, state = mod.step(x[0], None, params, c=c[0])
    np.testing.assert_allclose(y, out[0], rtol=0, atol=1e-15)
    # the context matters, at every step
    other, _, _ = mod.forward(x, None, params, c=c + 1.0)
    assert np.abs(other - out).min() > 0


def test_numpy_refusals_name_the_argument():
    mod, params, x, c = _numpy_problem()
    with pytest.raises(TypeError, match="missing 1 required keyword-only argument: 'c'"):
        mod.forward(x, None, params)
    with pytest.raises(ValueError, match=r"c must have shape \(T, B, context\) = \(4, 2, 5\), "
                                         r"got \(4, 2, 4\)"):
        mod.forward(x, None, params, c=c[..., :4])
    with pytest.raises(ValueError, match=r"c must have shape \(T, B, context\) = \(4, 2, 5\), "
                                         r"got \(3, 2, 5\)"):
        mod.forward(x, None, params, c=c[:3])
    with pytest.raises(TypeError, match="c has dtype float32, but x has float64"):
        mod.forward(x, None, params, c=c.astype(np.float32))


def _torch(**kwargs):
    torch = require_torch()
    mod = torch_module("gru_cond")
    torch.manual_seed(0)
    return torch, mod, module_class(mod)(3, 4, 5, dtype=torch.float64, **kwargs)


def test_torch_constructor_and_layouts():
    """context_size after the sizes torch.nn has; batch_first and unbatched inputs give the
    time-major result, the context laid out as the input."""
    torch, mod, layer = _torch()
    assert layer.context_size == 5 and mod.EXTRA_INPUTS == {"c": "context"}
    x, c = torch.randn(6, 2, 3, dtype=torch.float64), torch.randn(6, 2, 5, dtype=torch.float64)
    out, h = layer(x, c=c)
    first = module_class(mod)(3, 4, 5, dtype=torch.float64, batch_first=True)
    first.load_state_dict(layer.state_dict())
    out_bf, h_bf = first(x.transpose(0, 1), c=c.transpose(0, 1))
    assert torch.equal(out_bf.transpose(0, 1), out) and torch.equal(h_bf, h)
    alone, _ = layer(x[:, 1], c=c[:, 1])
    assert (alone - out[:, 1]).abs().max() < 1e-14


def test_torch_reverse_direction_reads_the_context_reversed_within_each_length():
    torch, mod, layer = _torch(bidirectional=True)
    x, c = torch.randn(5, 2, 3, dtype=torch.float64), torch.randn(5, 2, 5, dtype=torch.float64)
    out, h = layer(x, c=c, lengths=[5, 3])
    for b, n in enumerate([5, 3]):
        params = layer.layer_params(0, reverse=True)
        back, _ = mod.run_layer(x[:n, b:b + 1].flip(0), (torch.zeros(1, 4, dtype=torch.float64),),
                                params, "autograd", c=c[:n, b:b + 1].flip(0))
        assert (back.flip(0)[:, 0] - out[:n, b, 4:]).abs().max() < 1e-14


def test_torch_refusals_name_the_argument():
    torch, mod, layer = _torch()
    x, c = torch.randn(6, 2, 3, dtype=torch.float64), torch.randn(6, 2, 5, dtype=torch.float64)
    with pytest.raises(TypeError, match="missing 1 required keyword-only argument: 'c'"):
        layer(x)
    with pytest.raises(ValueError, match=r"c must have size \[6, 2, 5\] \(input's sizes but "
                                         r"the last, context_size\), got \[6, 2, 4\]"):
        layer(x, c=c[..., :4])
    with pytest.raises(ValueError, match="c must have the dtype and device of input"):
        layer(x, c=c.float())
    with pytest.raises(TypeError, match="c must be a tensor, got list"):
        layer(x, c=[1.0])
    pack = torch.nn.utils.rnn.pack_sequence
    packed = pack([x[:, 0], x[:4, 1]])
    with pytest.raises(TypeError, match="c must be a PackedSequence, as input is one"):
        layer(packed, c=c)
    with pytest.raises(ValueError, match="c must be packed as input is"):
        layer(packed, c=pack([c[:, 0], c[:3, 1]]))
    with pytest.raises(ValueError, match=r"c must have shape \(T, B, context\) with x's T"):
        mod.run_layer(x, (torch.zeros(2, 4, dtype=torch.float64),), layer.layer_params(0),
                      "torch", c=c[:3])


def test_torch_packed_sequence_with_context():
    torch, mod, layer = _torch(num_layers=2)
    x, c = torch.randn(5, 3, 3, dtype=torch.float64), torch.randn(5, 3, 5, dtype=torch.float64)
    lengths = [2, 5, 3]
    pack = torch.nn.utils.rnn.pack_padded_sequence
    out, h = layer(pack(x, lengths, enforce_sorted=False),
                   c=pack(c, lengths, enforce_sorted=False))
    padded, h2 = layer(x, c=c, lengths=lengths)
    unpacked = torch.nn.utils.rnn.pad_packed_sequence(out, total_length=5)[0]
    assert (unpacked - padded).abs().max() < 1e-14 and (h - h2).abs().max() < 1e-14


def test_a_further_input_of_x_size_is_refused_for_stacked_layers(tmp_path):
    """Layer 1 reads layer 0's output as x, but the further input keeps its size."""
    torch = require_torch()
    from gatespec.check import load_module
    from gatespec.pipeline import generate

    spec = tmp_path / "same_size.gate"
    spec.write_text("cell same_size\ninput x, v[input]\nstate h\nh' = tanh(linear(x * v, h))\n")
    (name, text), = generate(str(spec), "torch").items()
    cls = module_class(load_module(text, name[:-3]))
    with pytest.raises(ValueError, match="the input v has the size of x, 'input', which layer 1 "
                                         "reads at 4 but v keeps at 3"):
        cls(3, 4, num_layers=2, dtype=torch.float64)


def test_jax_interface():
    require_module("jax")
    import jax.numpy as jnp

    from gatespec.check import load_module
    from gatespec.pipeline import generate

    (name, text), = generate("gru_cond", "jax").items()
    mod = load_module(text, name[:-3])
    npm, params, x, c = _numpy_problem()
    params32 = {k: jnp.asarray(v, jnp.float32) for k, v in params.items()}
    out, _ = mod.forward(jnp.asarray(x, jnp.float32), None, params32,
                         c=jnp.asarray(c, jnp.float32))
    expected, _, _ = npm.forward(x, None, params, c=c)
    assert np.abs(np.asarray(out) - expected).max() < 1e-5
    with pytest.raises(ValueError, match=r"c must be a \(T, B, context\) = \(4, 2, 5\) float32"):
        mod.forward(jnp.asarray(x, jnp.float32), None, params32,
                    c=jnp.asarray(c[..., :4], jnp.float32))


@pytest.mark.slow
def test_compile_and_export_with_a_context_and_masks():
    """torch.compile (fullgraph, AOT tracing through the fake ops) and torch.export of
    gru_cond with its context, and of lstm_zoneout in eval mode: the expectation) and in
    training mode with given masks, against the eager autograd reference."""
    torch, mod, layer = _torch()
    x, c = torch.randn(5, 2, 3, dtype=torch.float64), torch.randn(5, 2, 5, dtype=torch.float64)
    torch._dynamo.reset()
    compiled = torch.compile(layer, fullgraph=True, backend="aot_eager")
    layer.impl = "torch"
    got, _ = compiled(x, c=c)
    layer.impl = "autograd"
    expected, _ = layer(x, c=c)
    assert (got - expected).abs().max() < 1e-12
    layer.impl = "torch"
    program = torch.export.export(layer, (x,), {"c": c})
    assert (program.module()(x, c=c)[0] - expected).abs().max() < 1e-12

    zmod = torch_module("lstm_zoneout")
    zoned = module_class(zmod)(3, 4, dtype=torch.float64).eval()
    program = torch.export.export(zoned, (x,))
    zoned.impl = "autograd"
    assert (program.module()(x)[0] - zoned(x)[0]).abs().max() < 1e-12
    zoned.train()
    masks = {k: [(torch.rand(5, 2, 4) > 0.5).double()] for k in zmod.MASKS}
    zoned.impl = "torch"
    torch._dynamo.reset()
    got = torch.compile(zoned, fullgraph=True, backend="aot_eager")(x, masks=masks)[0]
    zoned.impl = "autograd"
    assert (got - zoned(x, masks=masks)[0]).abs().max() < 1e-12

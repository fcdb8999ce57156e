"""The JAX target: the same values and gradients as the NumPy target, under jit, vmap and
grad, and the same function as Flax's own cells where it claims to be."""

import glob
from functools import cache

import numpy as np
import pytest
from conftest import ROOT, require_module
from helpers import extra_inputs, numpy_module, small_sizes

from gatespec import cells
from gatespec.check import load_module
from gatespec.pipeline import generate

CORPUS = sorted(glob.glob(str(ROOT / "tests" / "corpus" / "*.gate")))


@cache
def jax_module(spec: str):
    (name, text), = generate(spec, "jax").items()
    return load_module(text, name[:-3])


@pytest.fixture
def x64():
    """float64 arrays in JAX for one test (the flag is global: restored after)."""
    jax = require_module("jax")
    before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield jax
    jax.config.update("jax_enable_x64", before)


def data(module, seed=0, T=3, B=2):
    """Sizes, parameters, input, initial state and cotangents, as float64 NumPy arrays."""
    rng = np.random.default_rng(seed)
    sizes = small_sizes(module, hidden=4, input_=3, other=2)
    sizes = {s: sizes[s] for s in module.SIZES}
    params = {k: 0.5 * rng.standard_normal(tuple(sizes[s] for s in shape))
              for k, shape in module.PARAMS.items()}
    for name, value in module.CONSTANT_INIT.items():  # a layer-norm gain near 1
        params[name] = params[name] + value
    x = rng.standard_normal((T, B, sizes[module.INPUT_SIZE]))
    state0 = [0.5 * rng.standard_normal((B, sizes[module.STATE_SIZES[s]])) for s in module.STATES]
    if "n" in module.STATES and "m" in module.STATES:  # sLSTM's normaliser is positive
        state0[module.STATES.index("n")] = np.abs(state0[module.STATES.index("n")]) + 0.5
    return params, x, tuple(state0), rng


def params_size(module, params, size):
    """The number of a size name, read off the parameters."""
    return next(params[k].shape[shape.index(size)] for k, shape in module.PARAMS.items()
                if size in shape)


def errors_against_numpy(spec: str, impls=("derived", "autodiff")) -> dict[str, float]:
    """For each impl, the largest difference from the NumPy target over the outputs, the
    final state and every gradient (of outputs and final state both weighted at random)."""
    import jax
    import jax.numpy as jnp

    ours, reference = jax_module(spec), numpy_module(spec)
    params, x, state0, rng = data(ours)
    # further input sequences (a context): keyword arguments of both, differentiated
    extras = extra_inputs(ours, small_sizes(ours, hidden=4, input_=3, other=2), *x.shape[:2],
                          lambda shape: np.random.default_rng(1).standard_normal(shape))
    # masks of zoneout() and dropout(): drawn once, given to both (constants to the gradient)
    masks = {} if not hasattr(ours, "MASKS") else {"masks": {
        name: (np.random.default_rng(2).random((*x.shape[:2], params_size(ours, params, size)))
               >= rate) / (1.0 if kind == "zoneout" else 1 - rate)
        for name, (size, kind, rate, _) in ours.MASKS.items()}}
    out, final, cache_ = reference.forward(x, state0, params, **extras, **masks)
    d_out = rng.standard_normal(out.shape)
    d_final = tuple(rng.standard_normal(s.shape) for s in final)
    dx, d_state0, d_params, *d_extras = reference.backward(d_out, d_final, cache_, params)
    expected = (out, final, dx, d_state0, d_params, *d_extras)
    worst = {}
    for impl in impls:
        def run(x, state0, params, extras, impl=impl):
            return ours.forward(x, state0, params, impl=impl, **extras, **masks)

        (o, f), vjp = jax.vjp(run, jnp.asarray(x), tuple(map(jnp.asarray, state0)),
                              {k: jnp.asarray(v) for k, v in params.items()},
                              {k: jnp.asarray(v) for k, v in extras.items()})
        gx, gs, gp, ge = vjp((jnp.asarray(d_out), tuple(map(jnp.asarray, d_final))))
        got = (o, f, gx, gs, gp, *([ge] if extras else []))
        leaves = zip(jax.tree.leaves(got), jax.tree.leaves(expected), strict=True)
        worst[impl] = max(float(np.abs(np.asarray(a) - b).max()) for a, b in leaves)
        if impl == "derived":  # forward only runs the input-only work inside the scan
            o, f = run(x, state0, params, extras)
            leaves = zip(jax.tree.leaves((o, f)), jax.tree.leaves((out, final)), strict=True)
            worst["forward only"] = max(float(np.abs(np.asarray(a) - b).max())
                                        for a, b in leaves)
        assert all(np.asarray(a).dtype == np.float64 for a in jax.tree.leaves(got))
    return worst


def test_values_and_gradients_equal_numpy(x64):
    worst = errors_against_numpy("lstm")
    assert max(worst.values()) <= 1e-10, worst


@pytest.mark.slow
@pytest.mark.parametrize("spec", [*cells.names(), *CORPUS])
def test_every_cell_equals_numpy(spec, x64):
    worst = errors_against_numpy(spec)
    assert max(worst.values()) <= 1e-10, worst


def test_jit_vmap_value_and_grad_float32():
    """A batch of sequences through vmap, under jit, in float32: the derived gradient is
    the one JAX takes through its own batched lax.scan (autodiff), to float32 rounding."""
    jax = require_module("jax")
    import jax.numpy as jnp

    gru = jax_module("gru")
    params, x, state0, _ = data(gru, T=5)
    params = {k: jnp.asarray(v, jnp.float32) for k, v in params.items()}
    xs = jnp.asarray(np.stack([x, 2 * x, -x]), jnp.float32)  # three sequences

    def loss(params, xs, impl):
        run = jax.vmap(lambda x: gru.forward(x, None, params, impl=impl)[0])
        return jnp.sum(jnp.sin(run(xs)))

    derived = jax.jit(jax.value_and_grad(loss), static_argnums=2)(params, xs, "derived")
    autodiff = jax.value_and_grad(loss)(params, xs, "autodiff")
    for a, b in zip(jax.tree.leaves(derived), jax.tree.leaves(autodiff), strict=True):
        assert a.dtype == jnp.float32
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)


def test_step_is_one_forward_step_and_impl_is_checked():
    require_module("jax")
    lstm = jax_module("lstm")
    params, x, state0, _ = data(lstm)
    params = {k: np.float32(v) for k, v in params.items()}
    x, state0 = np.float32(x), tuple(map(np.float32, state0))
    out, final = lstm.forward(x[:1], state0, params)
    y, new = lstm.step(x[0], state0, params)
    np.testing.assert_array_equal(out[0], y)
    for a, b in zip(final, new, strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="impl must be one of"):
        lstm.forward(x, state0, params, impl="torch")
    with pytest.raises(TypeError, match="dtype"):
        lstm.forward(np.float64(x), None, params)


@pytest.mark.parametrize("spec", ["srnn", pytest.param("lstm_layernorm", marks=pytest.mark.slow)])
def test_init_params_bounds_and_constants(spec):
    jax = require_module("jax")
    module = jax_module(spec)
    sizes = {"input": 3, "hidden": 16}
    params = module.init_params(jax.random.key(0), sizes)
    bound = 1 / 4
    for name, value in params.items():
        assert value.shape == tuple(sizes[s] for s in module.PARAMS[name])
        if name in module.CONSTANT_INIT:
            assert np.all(np.asarray(value) == module.CONSTANT_INIT[name])
        else:
            assert np.abs(value).max() < bound and np.abs(value).max() > bound / 2
    with pytest.raises(ValueError, match="sizes"):
        module.init_params(jax.random.key(0), {"hidden": 3})


# OptimizedLSTMCell keeps LSTMCell's parameters (one tree): the default run checks one
@pytest.mark.parametrize(("spec", "flax_cell"), [
    ("lstm", "LSTMCell"), pytest.param("lstm", "OptimizedLSTMCell", marks=pytest.mark.slow),
    ("gru_reset_after", "GRUCell")])
def test_flax_cells_compute_the_same_function(spec, flax_cell, x64):
    """Flax's cell over a sequence (flax.linen.RNN) with its own random weights, and ours
    with the converted weights: same outputs and final state; and back again."""
    jax = x64
    nn = require_module("flax.linen")
    import jax.numpy as jnp

    module = jax_module(spec)
    assert flax_cell in module.FLAX_CELLS
    x = jax.random.normal(jax.random.key(0), (2, 5, 3), jnp.float64)  # (B, T, input)
    rnn = nn.RNN(getattr(nn, flax_cell)(features=4, param_dtype=jnp.float64,
                                        dtype=jnp.float64), return_carry=True)
    variables = rnn.init(jax.random.key(1), x)
    carry, out = rnn.apply(variables, x)
    flax_params = variables["params"]["cell"]
    params = module.from_flax(flax_params)
    ours, final = module.forward(jnp.swapaxes(x, 0, 1), None, params)
    np.testing.assert_allclose(jnp.swapaxes(ours, 0, 1), out, rtol=1e-12, atol=1e-12)
    for a, b in zip(jax.tree.leaves(module.carry_to_flax(final)), jax.tree.leaves(carry),
                    strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    assert module.carry_from_flax(module.carry_to_flax(final)) == tuple(final)
    back = module.to_flax(params)["params"]
    assert jax.tree.structure(back) == jax.tree.structure(dict(flax_params))
    for a, b in zip(jax.tree.leaves(back), jax.tree.leaves(dict(flax_params)), strict=True):
        np.testing.assert_array_equal(a, b)


def test_flax_refuses_a_cell_with_another_function():
    require_module("jax")
    for spec in ("gru",):  # the article's GRU: the reset gate before the linear map
        with pytest.raises(TypeError, match="GRUCell, which applies the reset gate after"):
            jax_module(spec).from_flax({})


@pytest.mark.slow  # two compilations; the README's JAX example runs the layer by default
def test_flax_layer_trains(x64):
    """The Flax layer: parameters as init_params makes them, batch-major input, and a
    gradient step that lowers the loss."""
    jax = x64
    require_module("flax")
    import jax.numpy as jnp

    module = jax_module("lstm")
    layer = module.LSTM(hidden_size=8, param_dtype=jnp.float64)
    x = jax.random.normal(jax.random.key(0), (2, 6, 3), jnp.float64)
    variables = layer.init(jax.random.key(1), x)
    assert {k: v.shape for k, v in variables["params"].items()} == {
        k: tuple({"input": 3, "hidden": 8}[s] for s in shape) for k, shape in module.PARAMS.items()}
    assert max(float(jnp.abs(v).max()) for v in variables["params"].values()) <= 8 ** -0.5

    def loss(variables):
        outputs, _ = layer.apply(variables, x)
        return jnp.mean((outputs - 0.5) ** 2)

    value_and_grad = jax.jit(jax.value_and_grad(loss))  # compiled once, called twice
    value, grads = value_and_grad(variables)
    stepped = jax.tree.map(lambda v, g: v - 0.5 * g, variables, grads)
    assert value_and_grad(stepped)[0] < value


@pytest.mark.slow
@pytest.mark.parametrize("spec", cells.names())
def test_only_cells_with_a_flax_twin_convert(spec):
    """lstm and gru_reset_after have Flax twins; every other built-in cell refuses."""
    require_module("jax")
    module = jax_module(spec)
    if cells.canonical(spec) in ("lstm", "gru_reset_after"):
        assert module.FLAX_CELLS
    else:
        assert not hasattr(module, "FLAX_CELLS")
        with pytest.raises(TypeError, match="no layer that flax.linen has"):
            module.to_flax({})


def test_compile_makes_a_jax_module():
    require_module("jax")
    import gatespec

    module = gatespec.compile("srnn", "jax")
    assert module.__name__.startswith("gatespec.compiled.srnn_jax_")
    params, x, state0, _ = data(module)
    params = {k: np.float32(v) for k, v in params.items()}
    out, final = module.forward(np.float32(x), None, params)
    assert out.shape == x.shape[:2] + (params["W_hh"].shape[0],) and len(final) == 1

"""Variable-length batches in the JAX target: forward(..., lengths=) against the NumPy
target with the same lengths (itself checked against each sequence run alone) and against
each sequence run alone through the JAX module; NaN padding, jit (traced lengths), vmap,
the Flax layer's seq_lengths against flax.linen.RNN's, and the refusals of bad lengths."""

import numpy as np
import pytest
from conftest import require_module
from helpers import extra_inputs, numpy_module, small_sizes
from test_jax import data, jax_module, x64  # noqa: F401 (a fixture)

from gatespec import cells

LENGTHS = np.array([3, 4, 1])  # unsorted, one at full length T = 4, one of a single step
T = 4
DEFAULT = ("lstm",)  # the rest (sru, whose input is read element-wise, too): -m slow
SLOW = [pytest.param(c, marks=pytest.mark.slow) for c in cells.names() if c not in DEFAULT]


def case(module, seed=0):
    """Parameters, input with NaN past each length, initial state, a generator and the
    (T, B, 1) padding, as float64 NumPy arrays."""
    params, x, state0, rng = data(module, seed=seed, T=T, B=len(LENGTHS))
    padded = (np.arange(T)[:, None] >= LENGTHS)[..., None]
    return params, np.where(padded, np.nan, x), state0, rng, padded


def run_jax(module, impl, x, state0, params, d_out, d_final, lengths=LENGTHS, extras=None):
    """Outputs, final state and the gradients of <outputs, d_out> + <final, d_final>,
    all under one jax.jit with lengths traced; extras: further input sequences (gru_cond's
    context), given, not differentiated here."""
    import jax
    import jax.numpy as jnp

    @jax.jit
    def run(x, state0, params, lengths, d_out, d_final, extras):
        (o, f), vjp = jax.vjp(lambda x, s, p: module.forward(x, s, p, lengths, impl, **extras),
                              x, state0, params)
        return o, f, *vjp((d_out, d_final))

    as_jax = jax.tree.map(jnp.asarray, (x, state0, params, lengths, d_out, d_final,
                                        extras or {}))
    return jax.tree.map(np.asarray, run(*as_jax))


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("spec", [*DEFAULT, *SLOW])
def test_lengths_equal_numpy_and_each_sequence_alone(spec):
    ours, reference = jax_module(spec), numpy_module(spec)
    params, x, state0, rng, padded = case(ours)
    # further inputs, NaN past each length as x (never read there)
    extras = extra_inputs(ours, small_sizes(ours, hidden=4, input_=3, other=2), T,
                          len(LENGTHS), lambda shape: np.where(
                              padded, np.nan, np.random.default_rng(1).standard_normal(shape)))
    out, final, cache = reference.forward(np.where(padded, 0.0, x), state0, params,
                                          lengths=LENGTHS, **{k: np.where(padded, 0.0, v)
                                                              for k, v in extras.items()})
    d_out = np.where(padded, np.nan, rng.standard_normal(out.shape))
    d_final = tuple(rng.standard_normal(s.shape) for s in final)
    dx, d_state0, d_params, *_ = reference.backward(np.where(padded, 0.0, d_out), d_final,
                                                    cache, params)
    expected = (out, final, dx, d_state0, d_params)
    jax = require_module("jax")
    results = {}
    for impl in ("derived", "autodiff"):
        got = run_jax(ours, impl, x, state0, params, d_out, d_final, extras=extras)
        results[impl] = got
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(expected), strict=True):
            assert a.dtype == np.float64
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-10, err_msg=impl)

    # each sequence alone at its own length, without lengths: the same values, and the
    # weight gradients summed over the sequences
    o, f, gx, gs, gp = results["derived"]
    summed = {k: np.zeros_like(v) for k, v in params.items()}
    for b, n in enumerate(LENGTHS):
        one = slice(b, b + 1)
        o1, f1, gx1, gs1, gp1 = run_jax(ours, "derived", x[:n, one], tuple(s[one] for s in state0),
                                        params, d_out[:n, one], tuple(g[one] for g in d_final),
                                        lengths=None,
                                        extras={k: v[:n, one] for k, v in extras.items()})
        np.testing.assert_allclose(o[:n, b], o1[:, 0], rtol=0, atol=1e-12)
        assert not o[n:, b].any()  # zeros past the length
        np.testing.assert_allclose(gx[:n, b], gx1[:, 0], rtol=0, atol=1e-12)
        assert not gx[n:, b].any()  # nothing flows back from the padded steps
        for a, a1 in [*zip(f, f1, strict=True), *zip(gs, gs1, strict=True)]:
            np.testing.assert_allclose(a[b], a1[0], rtol=0, atol=1e-12)
        for k in summed:
            summed[k] += gp1[k]
    for k in params:
        np.testing.assert_allclose(gp[k], summed[k], rtol=0, atol=1e-10, err_msg=k)


def test_vmap_over_batches_with_lengths_float32():
    """vmap over three batches, each with its own lengths, under jit in float32: the derived
    gradient equals autodiff's, and each batch equals its own call."""
    jax = require_module("jax")
    import jax.numpy as jnp

    gru = jax_module("gru")
    params, x, state0, _ = data(gru, T=T, B=len(LENGTHS))
    params = {k: jnp.asarray(v, jnp.float32) for k, v in params.items()}
    xs = jnp.asarray(np.stack([x, 2 * x, -x]), jnp.float32)
    lengths = jnp.asarray([LENGTHS, LENGTHS[::-1], [4, 4, 4]])

    def loss(params, xs, lengths, impl):
        run = jax.vmap(lambda x, n: gru.forward(x, None, params, n, impl))
        outputs, (h_n,) = run(xs, lengths)
        return jnp.sum(jnp.sin(outputs)) + jnp.sum(h_n ** 2)

    grad = jax.jit(jax.value_and_grad(loss), static_argnums=3)
    derived = grad(params, xs, lengths, "derived")
    autodiff = grad(params, xs, lengths, "autodiff")
    for a, b in zip(jax.tree.leaves(derived), jax.tree.leaves(autodiff), strict=True):
        assert a.dtype == jnp.float32
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)
    one = gru.forward(xs[1], None, params, lengths[1])[0]
    np.testing.assert_allclose(jax.vmap(lambda x, n: gru.forward(x, None, params, n)[0])(
        xs, lengths)[1], one, rtol=1e-6, atol=1e-7)


@pytest.mark.slow  # a Flax compilation; the default run checks forward's lengths
@pytest.mark.usefixtures("x64")
def test_flax_layer_seq_lengths_as_flax_rnn():
    """The layer with seq_lengths and flax.linen.RNN(LSTMCell) with the same seq_lengths and
    weights: the same outputs within each length and the same final carry."""
    jax = require_module("jax")
    nn = require_module("flax.linen")
    import jax.numpy as jnp

    module = jax_module("lstm")
    x = jax.random.normal(jax.random.key(0), (3, T, 2), jnp.float64)  # (B, T, input)
    lengths = jnp.asarray(LENGTHS)
    rnn = nn.RNN(nn.LSTMCell(features=4, param_dtype=jnp.float64, dtype=jnp.float64),
                 return_carry=True)
    variables = rnn.init(jax.random.key(1), x)
    carry, out = rnn.apply(variables, x, seq_lengths=lengths)
    params = module.from_flax(variables["params"]["cell"])
    ours, final = module.LSTM(hidden_size=4, param_dtype=jnp.float64).apply(
        {"params": params}, x, seq_lengths=lengths)
    within = (np.arange(T) < LENGTHS[:, None])[..., None]  # (B, T, 1)
    np.testing.assert_allclose(np.where(within, ours, 0), np.where(within, out, 0),
                               rtol=1e-12, atol=1e-12)
    assert not np.asarray(ours)[~within[..., 0]].any()
    for a, b in zip(module.carry_to_flax(final), carry, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("lengths,error,match", [
    ([3, 4], ValueError, r"lengths must have shape \(B,\) = \(3,\).*got \(2,\)"),
    ([[3, 4, 1]], ValueError, r"lengths must have shape \(B,\)"),
    ([3, 0, 1], ValueError, r"lengths must be in 1\.\.T = 1\.\.4; got 0\.\.3"),
    ([3, 5, 1], ValueError, r"lengths must be in 1\.\.T = 1\.\.4; got 1\.\.5"),
    ([3.0, 4.0, 1.0], TypeError, r"lengths must hold integers, got dtype float"),
    ([True, True, True], TypeError, r"lengths must hold integers, got dtype bool"),
    (4, TypeError, r"lengths must be an integer array of shape \(B,\) = \(3,\), or None; got int"),
    ("derived", TypeError, r"lengths must be an integer array.*got str"),
])
def test_bad_lengths_are_refused(lengths, error, match):
    require_module("jax")
    lstm = jax_module("lstm")
    params, x, state0, _ = data(lstm, T=T, B=3)
    params = {k: np.float32(v) for k, v in params.items()}
    with pytest.raises(error, match=match):
        lstm.forward(np.float32(x), None, params, lengths)

"""Variable-length batches in the NumPy target: forward(..., lengths=) and backward() against
each sequence run alone at its own length (an independent check: the plain full-length
path), for every built-in cell and every corpus cell; one finite-difference check; and the
refusals of bad lengths."""

from pathlib import Path

import numpy as np
import pytest
from helpers import extra_inputs, numpy_module, small_sizes

from gatespec import cells

CORPUS_DIR = Path(__file__).resolve().parent.parent / "corpus"
CORPUS = [str(p) for p in sorted(CORPUS_DIR.glob("*.gate"))]
LENGTHS = np.array([3, 5, 1, 4])  # unsorted, one at full length T = 5, one of a single step


def _case(mod, seed=0, T=5, dtype=np.float64):
    rng = np.random.default_rng(seed)
    sizes = small_sizes(mod, hidden=4, input_=3, other=3)
    params = mod.init_params({s: sizes[s] for s in mod.SIZES}, rng, dtype)
    B = len(LENGTHS)
    x = rng.normal(size=(T, B, sizes[mod.INPUT_SIZE])).astype(dtype)
    # positive states: sLSTM's normaliser state divides
    state0 = tuple((0.5 + 0.5 * rng.random((B, sizes[mod.STATE_SIZES[s]]))).astype(dtype)
                   for s in mod.STATES)
    return rng, params, x, state0


@pytest.mark.parametrize("spec", cells.names() + CORPUS,
                         ids=lambda s: Path(s).stem if s.endswith(".gate") else s)
def test_lengths_match_each_sequence_alone(spec):
    mod = numpy_module(spec)
    rng, params, x, state0 = _case(mod)
    T, B = x.shape[:2]
    # further input sequences (gru_cond's context), cut along with x
    extras = extra_inputs(mod, small_sizes(mod, hidden=4, input_=3, other=3), T, B,
                          lambda shape: np.random.default_rng(1).normal(size=shape))
    out, final, cache = mod.forward(x, state0, params, lengths=LENGTHS, **extras)
    g_out = rng.normal(size=out.shape)
    g_fin = tuple(rng.normal(size=f.shape) for f in final)
    dx, d_state0, d_params, *d_extras = mod.backward(g_out, g_fin, cache, params)
    summed = {k: np.zeros_like(v) for k, v in params.items()}
    for b, n in enumerate(LENGTHS):
        one = slice(b, b + 1)
        o1, f1, c1 = mod.forward(x[:n, one], tuple(s[one] for s in state0), params,
                                 **{k: v[:n, one] for k, v in extras.items()})
        np.testing.assert_allclose(out[:n, b], o1[:, 0], rtol=1e-12, atol=1e-13)
        assert not out[n:, b].any()  # zeros past the length
        for a, f in zip(final, f1, strict=True):
            np.testing.assert_allclose(a[b], f[0], rtol=1e-12, atol=1e-13)
        dx1, ds1, dp1, *de1 = mod.backward(g_out[:n, one], tuple(g[one] for g in g_fin), c1,
                                           params)
        np.testing.assert_allclose(dx[:n, b], dx1[:, 0], rtol=1e-10, atol=1e-12)
        for k in extras:
            np.testing.assert_allclose(d_extras[0][k][:n, b], de1[0][k][:, 0], rtol=1e-10,
                                       atol=1e-12)
            assert not d_extras[0][k][n:, b].any()
        assert not dx[n:, b].any()  # nothing flows back from the padded steps
        for a, d in zip(d_state0, ds1, strict=True):
            np.testing.assert_allclose(a[b], d[0], rtol=1e-10, atol=1e-12)
        for k in summed:
            summed[k] += dp1[k]
    for k in params:
        np.testing.assert_allclose(d_params[k], summed[k], rtol=1e-10, atol=1e-12, err_msg=k)


def test_lengths_finite_differences():
    """The lstm's gradients with lengths against central differences of its own forward:
    every entry of x (zero past the lengths: no output reads it), the states and a weight."""
    mod = numpy_module("lstm")
    rng, params, x, state0 = _case(mod, seed=1, T=4)
    lengths = np.array([2, 4, 1, 3])
    out, final, cache = mod.forward(x, state0, params, lengths=lengths)
    g_out = rng.normal(size=out.shape)
    g_fin = tuple(rng.normal(size=f.shape) for f in final)
    dx, d_state0, d_params = mod.backward(g_out, g_fin, cache, params)

    def loss():
        o, f, _ = mod.forward(x, state0, params, keep_cache=False, lengths=lengths)
        return np.sum(o * g_out) + sum(np.sum(a * g) for a, g in zip(f, g_fin, strict=True))

    eps = 1e-6
    for array, grad in ((x, dx), (state0[0], d_state0[0]), (state0[1], d_state0[1]),
                        (params["W_fh"], d_params["W_fh"])):
        numeric = np.zeros_like(array)
        for idx in np.ndindex(array.shape):
            keep = array[idx]
            array[idx] = keep + eps
            up = loss()
            array[idx] = keep - eps
            numeric[idx] = (up - loss()) / (2 * eps)
            array[idx] = keep
        np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)
    assert not dx[2:, 0].any() and not dx[1:, 2].any()


@pytest.mark.parametrize("name", ["lstm", "lstm_layernorm", "sru"])
def test_padding_is_never_read(name):
    """NaN in x and d_outputs past the lengths change nothing (sru reads its input in
    element-wise statements too)."""
    mod = numpy_module(name)
    rng, params, x, state0 = _case(mod)
    padded = np.arange(x.shape[0])[:, None] >= LENGTHS  # (T, B)
    dirty = np.where(padded[..., None], np.nan, x)
    results = []
    for inp in (x * ~padded[..., None], dirty):
        out, final, cache = mod.forward(inp, state0, params, lengths=LENGTHS)
        g = np.where(padded[..., None], np.nan, np.ones_like(out))
        dx, d_state0, d_params = mod.backward(g, None, cache, params)
        results.append([out, *final, dx, *d_state0, *d_params.values()])
    assert not np.isnan(np.concatenate([a.ravel() for a in results[1]])).any()
    for a, b in zip(*results, strict=True):
        np.testing.assert_array_equal(a, b)


def test_full_lengths_are_no_lengths():
    mod = numpy_module("gru")
    rng, params, x, state0 = _case(mod)
    T, B = x.shape[:2]
    plain = mod.forward(x, state0, params)
    full = mod.forward(x, state0, params, lengths=[T] * B)
    np.testing.assert_array_equal(plain[0], full[0])
    g = rng.normal(size=plain[0].shape)
    for a, b in zip(mod.backward(g, None, plain[2], params)[:2],
                    mod.backward(g, None, full[2], params)[:2], strict=True):
        np.testing.assert_allclose(a if isinstance(a, np.ndarray) else a[0],
                                   b if isinstance(b, np.ndarray) else b[0], rtol=1e-13)


def test_lengths_keep_dtype_and_no_cache():
    mod = numpy_module("lstm")
    _, params, x, state0 = _case(mod, dtype=np.float32)
    out, final, cache = mod.forward(x, state0, params, keep_cache=False, lengths=LENGTHS)
    assert cache is None and out.dtype == np.float32
    assert all(f.dtype == np.float32 for f in final)
    assert not out[1:, 2].any()


@pytest.mark.parametrize("lengths,error,match", [
    ([3, 5, 1], ValueError, r"lengths must have shape \(B,\) = \(4,\).*got \(3,\)"),
    ([[3, 5, 1, 4]], ValueError, r"lengths must have shape \(B,\)"),
    ([3, 0, 1, 4], ValueError, r"lengths must be in 1\.\.T = 1\.\.5; got 0\.\.4"),
    ([3, 6, 1, 4], ValueError, r"lengths must be in 1\.\.T = 1\.\.5; got 1\.\.6"),
    ([3.0, 5.0, 1.0, 4.0], TypeError, r"lengths must hold integers, got dtype float64"),
    ([True, True, True, True], TypeError, r"lengths must hold integers, got dtype bool"),
    (5, TypeError, r"lengths must be an integer array of shape \(B,\) = \(4,\), or None; got int"),
])
def test_bad_lengths_are_refused(lengths, error, match):
    mod = numpy_module("lstm")
    _, params, x, state0 = _case(mod)
    with pytest.raises(error, match=match):
        mod.forward(x, state0, params, lengths=lengths)

"""Generated NumPy modules against the hand-written references (tests/reference_cells.py),
which were written straight from the article's equations (restated in the README's
introduction), independently of the generator."""

import numpy as np
import pytest
import reference_cells as ref
from helpers import numpy_module, packed_backward, packed_forward, packed_step

CELLS = sorted(ref.CELLS)


def _rel(a, b):
    return np.abs(np.asarray(a) - b).max() / max(np.abs(b).max(), 1e-300)


def _problem(name, seed, T=6, B=3, N=5, H=4, dtype=np.float64):
    mod = numpy_module(name)
    rng = np.random.default_rng(seed)
    cell = ref.CELLS[name]
    n_in, n_states, _ = ref.dims(cell, N, H)  # sru reads x[hidden]; lstm_proj has h[proj]
    params = {k: v.astype(dtype) for k, v in ref.init_params(cell, N, H, rng).items()}
    x = rng.normal(size=(T, B, n_in)).astype(dtype)
    state0 = cell.valid_state0(tuple(rng.normal(size=(B, n)).astype(dtype) for n in n_states))
    return mod, params, x, state0, rng


@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize("seed", [0, 1])
def test_matches_reference_float64(name, seed):
    mod, params, x, state0, rng = _problem(name, seed)
    cell = ref.CELLS[name]
    assert mod.STATES == cell.STATES and mod.OUTPUT == cell.OUTPUT
    assert dict(mod.PARAMS) == dict(cell.PARAMS)
    out, fin, cache = packed_forward(mod, x, state0, params)
    r_out, r_fin = cell.forward(x, state0, params)
    assert _rel(out, r_out) <= 1e-10
    for a, b in zip(fin, r_fin, strict=True):
        assert _rel(a, b) <= 1e-10
    d_out = rng.normal(size=out.shape)
    d_fin = tuple(rng.normal(size=s.shape) for s in fin)
    dx, ds0, dp = packed_backward(mod, d_out, d_fin, cache, params)
    r_dx, r_ds0, r_dp = cell.backward(x, state0, params, d_out, d_fin)
    # a reference's packed dx holds the masks' gradients too (lstm_zoneout): the modules
    # treat masks as constants
    assert _rel(dx, r_dx[..., :dx.shape[-1]]) <= 1e-10
    for a, b in zip(ds0, r_ds0, strict=True):
        assert _rel(a, b) <= 1e-10
    assert set(dp) == set(r_dp)
    for k in dp:
        assert _rel(dp[k], r_dp[k]) <= 1e-10, k


@pytest.mark.parametrize("name", CELLS)
def test_float32_close_to_float64(name):
    mod, params, x, state0, rng = _problem(name, 2)
    out64, _, cache64 = packed_forward(mod, x, state0, params)
    p32 = {k: v.astype(np.float32) for k, v in params.items()}
    out32, fin32, cache32 = packed_forward(mod, x.astype(np.float32), tuple(s.astype(np.float32) for s in state0), p32)
    assert out32.dtype == np.float32 and all(s.dtype == np.float32 for s in fin32)
    assert _rel(out32, out64) < 1e-5
    d_out = rng.normal(size=out64.shape)
    g64 = packed_backward(mod, d_out, None, cache64, params)
    g32 = packed_backward(mod, d_out.astype(np.float32), None, cache32, p32)
    assert g32[0].dtype == np.float32
    assert all(v.dtype == np.float32 for v in g32[2].values())
    assert _rel(g32[0], g64[0]) < 1e-4
    for k in g64[2]:
        assert _rel(g32[2][k], g64[2][k]) < 1e-4, k


@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extreme_preactivations_are_finite(name, dtype):
    """Pre-activations of +-1e4 give no overflow, no division by zero and no NaN.
    (Underflow to zero, e.g. exp(-1e4), is exact and allowed.)"""
    mod, params, x, state0, rng = _problem(name, 3, dtype=dtype)
    params = {k: np.sign(v).astype(dtype) * dtype(1e4) / v.size for k, v in params.items()}
    x = np.sign(x).astype(dtype) * dtype(1e4)
    with np.errstate(over="raise", divide="raise", invalid="raise", under="ignore"):
        out, fin, cache = packed_forward(mod, x, state0, params)
        grads = packed_backward(mod, np.ones_like(out), None, cache, params)
    assert np.isfinite(out).all()
    assert np.isfinite(grads[0]).all()
    assert all(np.isfinite(g).all() for g in grads[2].values())


@pytest.mark.parametrize("name", CELLS)
def test_zero_initial_state_and_step(name):
    mod, params, x, _, _ = _problem(name, 4)
    out, fin, _ = packed_forward(mod, x, None, params)
    zeros = tuple(np.zeros_like(s) for s in fin)
    out0, _, _ = packed_forward(mod, x, zeros, params)
    np.testing.assert_array_equal(out, out0)
    state = None
    for t in range(x.shape[0]):
        y, state = packed_step(mod, x[t], state if state is not None else zeros, params)
        np.testing.assert_allclose(y, out[t], rtol=0, atol=1e-14)


def test_article_gru_differs_from_torch_gru():
    """Reset before vs after the linear map are different functions (article-equations.md)."""
    article, torch_form = numpy_module("gru"), numpy_module("gru_reset_after")
    rng = np.random.default_rng(5)
    p = article.init_params({"input": 3, "hidden": 4}, rng)
    q = dict(p)
    q["W_nx"], q["b_nx"], q["b_nh"] = p["W_nx"], q.pop("b_n"), np.zeros(4)
    x = rng.normal(size=(3, 2, 3))
    h0 = (rng.normal(size=(2, 4)),)
    a, _, _ = article.forward(x, h0, p)
    b, _, _ = torch_form.forward(x, h0, q)
    assert np.abs(a - b).max() > 1e-3

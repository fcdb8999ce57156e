"""Self-checks of the hand-written reference cells in reference_cells.py.

* Backward vs. central finite differences (float64) for every cell, over
  x, every initial state and every parameter.
* Forward of lstm / gru_reset_after / srnn vs. torch.nn.LSTM / GRU / RNN with copied
  weights (skipped if torch is not importable), including gradients.
"""

import numpy as np
import pytest
from conftest import require_torch

try:  # tests/ on sys.path (pytest "prepend" mode, no tests/__init__.py)
    import reference_cells as rc
except ImportError:  # tests/ imported as a package
    from tests import reference_cells as rc

T, B, N, H = 4, 3, 5, 4
EPS = 1e-6
TOL = 1e-6


def _rel_err(a, b):
    return np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-12)


def _problem(name, seed=0):
    rng = np.random.default_rng(seed)
    cell = rc.CELLS[name]
    n_in, n_states, n_out = rc.dims(cell, N, H)
    params = rc.init_params(name, N, H, rng)
    x = rng.standard_normal((T, B, n_in))
    state0 = cell.valid_state0(tuple(rng.uniform(-0.5, 0.5, (B, n)) for n in n_states))
    d_out = rng.standard_normal((T, B, n_out))
    d_fin = tuple(rng.standard_normal((B, n)) for n in n_states)
    return cell, params, x, state0, d_out, d_fin


def _loss(cell, x, state0, params, d_out, d_fin):
    outs, fin = cell.forward(x, state0, params)
    val = np.sum(outs * d_out)
    for s, d in zip(fin, d_fin):
        if d is not None:
            val += np.sum(s * d)
    return val


def _fd(f, arr):
    """Central finite-difference gradient of scalar f() w.r.t. arr (in place)."""
    g = np.zeros_like(arr)
    it = np.nditer(arr, flags=["multi_index"])
    for _ in it:
        idx = it.multi_index
        old = arr[idx]
        arr[idx] = old + EPS
        fp = f()
        arr[idx] = old - EPS
        fm = f()
        arr[idx] = old
        g[idx] = (fp - fm) / (2 * EPS)
    return g


def fd_errors(name, seed=0, drop_final=None):
    """Return {quantity: relative error} of analytic vs. FD gradients."""
    cell, params, x, state0, d_out, d_fin = _problem(name, seed)
    if drop_final is not None:
        d_fin = tuple(None if k == drop_final else d for k, d in zip(cell.STATES, d_fin))
    dx, ds0, dp = cell.backward(x, state0, params, d_out, d_fin)

    def f():
        return _loss(cell, x, state0, params, d_out, d_fin)

    errs = {"x": _rel_err(dx, _fd(f, x))}
    for s, (s0, d) in zip(cell.STATES, zip(state0, ds0)):
        errs[f"{s}0"] = _rel_err(d, _fd(f, s0))
    assert set(dp) == set(params)
    for k in params:
        assert dp[k].shape == params[k].shape
        errs[k] = _rel_err(dp[k], _fd(f, params[k]))
    return errs


@pytest.mark.parametrize("name", sorted(rc.CELLS))
@pytest.mark.parametrize("seed", [0, 1])
def test_backward_matches_finite_differences(name, seed):
    errs = fd_errors(name, seed)
    worst = max(errs, key=errs.get)
    assert errs[worst] <= TOL, f"{name}: worst {worst} rel err {errs[worst]:.3g}"


@pytest.mark.parametrize("name", sorted(rc.CELLS))
def test_backward_none_final_grads(name):
    """d_final_state entries may be None (zero)."""
    cell = rc.CELLS[name]
    for s in cell.STATES:
        errs = fd_errors(name, seed=2, drop_final=s)
        assert max(errs.values()) <= TOL


@pytest.mark.parametrize("name", sorted(rc.CELLS))
def test_api_shapes_and_zero_state(name):
    cell, params, x, _, d_out, _ = _problem(name)
    _, n_states, n_out = rc.dims(cell, N, H)
    assert set(cell.PARAMS) == set(params)
    outs, fin = cell.forward(x, None, params)
    zeros = tuple(np.zeros((B, n)) for n in n_states)
    outs2, fin2 = cell.forward(x, zeros, params)
    for a, b in zip(fin, fin2):
        np.testing.assert_array_equal(a, b)
    assert outs.shape == (T, B, n_out)
    assert isinstance(fin, tuple) and len(fin) == len(cell.STATES)
    assert [s.shape for s in fin] == [(B, n) for n in n_states]
    np.testing.assert_array_equal(outs, outs2)
    if cell.OUTPUT in cell.STATES:
        # The output sequence is the output state at each step.
        np.testing.assert_array_equal(outs[-1], fin[cell.STATES.index(cell.OUTPUT)])
    else:  # an intermediate output (sru)
        assert cell.OUTPUT not in cell.STATES and name == "sru"
    dx, ds0, dp = cell.backward(x, None, params, d_out, (None,) * len(cell.STATES))
    assert dx.shape == x.shape and len(ds0) == len(cell.STATES)
    assert all(dp[k].shape == params[k].shape for k in params)
    # Passing d_final_state=None as a whole means zero too.
    dx2, _, _ = cell.backward(x, None, params, d_out, None)
    np.testing.assert_array_equal(dx, dx2)


# ---------------------------------------------------------------- torch checks


def _torch_case(name, seed=0):
    torch = require_torch()
    torch.manual_seed(seed)
    mod_cls = {"lstm": torch.nn.LSTM, "gru_reset_after": torch.nn.GRU, "srnn": torch.nn.RNN}[name]
    kw = {"nonlinearity": "tanh"} if name == "srnn" else {}
    mod = mod_cls(N, H, **kw).double()
    W_ih = mod.weight_ih_l0.detach().numpy()
    W_hh = mod.weight_hh_l0.detach().numpy()
    b_ih = mod.bias_ih_l0.detach().numpy()
    b_hh = mod.bias_hh_l0.detach().numpy()
    gates = {"lstm": "ifgo", "gru_reset_after": "rzn", "srnn": "h"}[name]
    p = {}
    for j, k in enumerate(gates):
        sl = slice(j * H, (j + 1) * H)
        p[f"W_{k}x"] = W_ih[sl].copy()
        p[f"W_{k}h"] = W_hh[sl].copy()
        if name == "gru_reset_after" and k == "n":
            p["b_nx"] = b_ih[sl].copy()
            p["b_nh"] = b_hh[sl].copy()
        else:
            p[f"b_{k}"] = b_ih[sl] + b_hh[sl]
    assert set(p) == set(rc.CELLS[name].PARAMS)
    return torch, mod, p, gates


@pytest.mark.parametrize("name", ["lstm", "gru_reset_after", "srnn"])
def test_matches_torch(name):
    torch, mod, p, gates = _torch_case(name)
    cell = rc.CELLS[name]
    rng = np.random.default_rng(3)
    x = rng.standard_normal((T, B, N))
    state0 = tuple(rng.uniform(-0.5, 0.5, (B, H)) for _ in cell.STATES)
    d_out = rng.standard_normal((T, B, H))
    d_fin = tuple(rng.standard_normal((B, H)) for _ in cell.STATES)

    xt = torch.tensor(x, requires_grad=True)
    s0t = [torch.tensor(s[None], requires_grad=True) for s in state0]
    outs_t, fin_t = mod(xt, tuple(s0t) if name == "lstm" else s0t[0])
    fin_t = fin_t if name == "lstm" else (fin_t,)

    outs, fin = cell.forward(x, state0, p)
    np.testing.assert_allclose(outs, outs_t.detach().numpy(), rtol=1e-12, atol=1e-12)
    for a, b in zip(fin, fin_t):
        np.testing.assert_allclose(a, b.detach().numpy()[0], rtol=1e-12, atol=1e-12)

    # Gradients against torch autograd as well.
    loss = (outs_t * torch.tensor(d_out)).sum()
    for s, d in zip(fin_t, d_fin):
        loss = loss + (s[0] * torch.tensor(d)).sum()
    loss.backward()
    dx, ds0, dp = cell.backward(x, state0, p, d_out, d_fin)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    for a, b in zip(ds0, s0t):
        np.testing.assert_allclose(a, b.grad.numpy()[0], rtol=1e-10, atol=1e-12)
    gih, ghh = mod.weight_ih_l0.grad.numpy(), mod.weight_hh_l0.grad.numpy()
    gbih, gbhh = mod.bias_ih_l0.grad.numpy(), mod.bias_hh_l0.grad.numpy()
    for j, k in enumerate(gates):
        sl = slice(j * H, (j + 1) * H)
        np.testing.assert_allclose(dp[f"W_{k}x"], gih[sl], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(dp[f"W_{k}h"], ghh[sl], rtol=1e-10, atol=1e-12)
        if name == "gru_reset_after" and k == "n":
            np.testing.assert_allclose(dp["b_nx"], gbih[sl], rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(dp["b_nh"], gbhh[sl], rtol=1e-10, atol=1e-12)
        else:
            np.testing.assert_allclose(dp[f"b_{k}"], gbih[sl], rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(dp[f"b_{k}"], gbhh[sl], rtol=1e-10, atol=1e-12)

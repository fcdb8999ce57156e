"""The generated NumPy module refuses bad input at its entry points (forward, backward, step,
init_params) with a TypeError or ValueError that names the argument and the shape it must
have, instead of broadcasting it into a wrong answer."""

import re

import numpy as np
import pytest
from helpers import numpy_module

from gatespec.build import build
from gatespec.check import load_module
from gatespec.derive import derive
from gatespec.emit import emit_numpy
from gatespec.parse import parse
from gatespec.schedule import schedule

# lstm_proj: h has size proj, c size hidden, so a message shows which size it means
SIZES = {"input": 3, "hidden": 5, "proj": 2}
T, B = 6, 4


def _setup(dtype=np.float64):
    mod = numpy_module("lstm_proj")
    rng = np.random.default_rng(0)
    p = mod.init_params(SIZES, rng, dtype)
    x = rng.normal(size=(T, B, 3)).astype(dtype)
    h, c = rng.normal(size=(B, 2)).astype(dtype), rng.normal(size=(B, 5)).astype(dtype)
    return mod, x, h, c, p


def _with(p, **changes):
    return {**p, **changes}


def _zero_hidden(p):
    return {k: np.zeros(tuple(0 if s == "hidden" else SIZES[s] for s in shape))
            for k, shape in numpy_module("lstm_proj").PARAMS.items()}


# name: (forward's arguments from (x, h, c, params), error type, exact message or /regex/)
FORWARD_BAD = {
    "bare state": (lambda x, h, c, p: (x, h, p), TypeError,
                   "state0 must be a tuple of 2 arrays in STATES order ('h', 'c'), or None; "
                   "got array of shape (4, 2)"),
    "three states": (lambda x, h, c, p: (x, (h, c, c), p), TypeError,
                     "/state0 must be a tuple .* got tuple of length 3"),
    "state (H,)": (lambda x, h, c, p: (x, (h, c[0]), p), ValueError,
                   "state0[1] (c) must have shape (B, hidden) = (4, 5), got (5,)"),
    "state (1, H)": (lambda x, h, c, p: (x, (h[:1], c), p), ValueError,
                     "state0[0] (h) must have shape (B, proj) = (4, 2), got (1, 2)"),
    "state of the other size": (lambda x, h, c, p: (x, (c, c), p), ValueError,
                                "state0[0] (h) must have shape (B, proj) = (4, 2), got (4, 5)"),
    "scalar state": (lambda x, h, c, p: (x, (h, 0.0), p), TypeError,
                     "state0[1] (c) must be a NumPy array, got float"),
    "bias (1,)": (lambda x, h, c, p: (x, None, _with(p, b_i=np.zeros(1))), ValueError,
                  "params['b_i'] must have shape (hidden,) = (5,), got (1,)"),
    "bias (B, H)": (lambda x, h, c, p: (x, None, _with(p, b_f=np.zeros((B, 5)))), ValueError,
                    "params['b_f'] must have shape (hidden,) = (5,), got (4, 5)"),
    "transposed weight": (lambda x, h, c, p: (x, None, _with(p, W_hc=p["W_hc"].T)), ValueError,
                          "params['W_hc'] must have shape (proj, hidden) = (2, 5), got (5, 2)"),
    "missing parameter": (lambda x, h, c, p: (x, None, {k: v for k, v in p.items() if k != "b_o"}),
                          ValueError, "params must have the keys of PARAMS: missing ['b_o']"),
    "unknown parameter": (lambda x, h, c, p: (x, None, _with(p, b_n=p["b_o"])), ValueError,
                          "params must have the keys of PARAMS: unknown ['b_n']"),
    "params not a dict": (lambda x, h, c, p: (x, None, list(p.values())), TypeError,
                          "params must be a dict keyed as PARAMS, got list"),
    "x 2-D": (lambda x, h, c, p: (x[0], None, p), ValueError,
              "x must have shape (T, B, input) = (T, B, 3), got (4, 3)"),
    "x 4-D": (lambda x, h, c, p: (x[None], None, p), ValueError,
              "x must have shape (T, B, input) = (T, B, 3), got (1, 6, 4, 3)"),
    "x of the wrong width": (lambda x, h, c, p: (x[..., :2], None, p), ValueError,
                             "x must have shape (T, B, input) = (6, 4, 3), got (6, 4, 2)"),
    "state of another batch": (lambda x, h, c, p: (x[:, :3], (h, c), p), ValueError,
                               "state0[0] (h) must have shape (B, proj) = (3, 2), got (4, 2)"),
    "x a list": (lambda x, h, c, p: (x.tolist(), None, p), TypeError,
                 "x must be a NumPy array, got list"),
    "x integer": (lambda x, h, c, p: (x.astype(int), None, p), TypeError,
                  "x must be float32 or float64, got int64"),
    "x float16": (lambda x, h, c, p: (x.astype(np.float16), None, p), TypeError,
                  "x must be float32 or float64, got float16"),
    "state float32": (lambda x, h, c, p: (x, (h, c.astype(np.float32)), p), TypeError,
                      "state0[1] (c) has dtype float32, but x has float64: "
                      "all arrays must have one dtype"),
    "parameter float32": (lambda x, h, c, p: (x, None, _with(p, W_ix=p["W_ix"].astype(np.float32))),
                          TypeError, "params['W_ix'] has dtype float32, but x has float64: "
                                     "all arrays must have one dtype"),
    "T = 0": (lambda x, h, c, p: (x[:0], None, p), ValueError,
              "x has shape (0, 4, 3): T must be at least 1"),
    "B = 0": (lambda x, h, c, p: (x[:, :0], None, p), ValueError,
              "x has shape (6, 0, 3): B must be at least 1"),
    "hidden = 0": (lambda x, h, c, p: (x, None, _zero_hidden(p)), ValueError,
                   "params['W_ix'] has shape (0, 3): hidden must be at least 1"),
}


def _raises(kind, message):
    pattern = message[1:] if message.startswith("/") else "^" + re.escape(message) + "$"
    return pytest.raises(kind, match=pattern)


@pytest.mark.parametrize("case", FORWARD_BAD)
def test_forward_refuses(case):
    make, kind, message = FORWARD_BAD[case]
    mod, *arrays = _setup()
    with _raises(kind, message):
        mod.forward(*make(*arrays))


def test_bare_state_of_a_one_state_cell_is_refused():
    """Regression: a bare h0 (B, H) was read as a tuple, so every sequence started from
    row 0 of it (relative error 1.56)."""
    mod = numpy_module("gru")
    rng = np.random.default_rng(1)
    p = mod.init_params({"input": 3, "hidden": 4}, rng)
    x, h0 = rng.normal(size=(5, 2, 3)), rng.normal(size=(2, 4))
    with _raises(TypeError, "/state0 must be a tuple of 1 arrays .* got array of shape \\(2, 4\\)"):
        mod.forward(x, h0, p)
    assert mod.forward(x, (h0,), p)[0].shape == (5, 2, 4)


@pytest.mark.parametrize("call,kind,message", [
    (lambda m, x, h, c, p: m.step(x[0], h, p), TypeError,
     "/state must be a tuple of 2 arrays .* got array of shape \\(4, 2\\)"),
    (lambda m, x, h, c, p: m.step(x, (h, c), p), ValueError,
     "x_t must have shape (B, input) = (B, 3), got (6, 4, 3)"),
    (lambda m, x, h, c, p: m.step(x[0], (h, c[:1]), p), ValueError,
     "state[1] (c) must have shape (B, hidden) = (4, 5), got (1, 5)"),
    (lambda m, x, h, c, p: m.step(x[0, :0], None, p), ValueError,
     "x_t has shape (0, 3): B must be at least 1"),
])
def test_step_refuses(call, kind, message):
    mod, *arrays = _setup()
    with _raises(kind, message):
        call(mod, *arrays)


@pytest.mark.parametrize("call,kind,message", [
    (lambda m, out, fin, cache, p: m.backward(out[:, :2], None, cache, p), ValueError,
     "d_outputs must have shape (T, B, proj) = (6, 4, 2), got (6, 2, 2)"),
    (lambda m, out, fin, cache, p: m.backward(out[-1], None, cache, p), ValueError,
     "d_outputs must have shape (T, B, proj) = (6, 4, 2), got (4, 2)"),
    (lambda m, out, fin, cache, p: m.backward(out, fin[0], cache, p), TypeError,
     "/d_final_state must be a tuple of 2 arrays .* got array of shape \\(4, 2\\)"),
    (lambda m, out, fin, cache, p: m.backward(None, (None, fin[1][0]), cache, p), ValueError,
     "d_final_state[1] (c) must have shape (B, hidden) = (4, 5), got (5,)"),
    (lambda m, out, fin, cache, p: m.backward(out.astype(np.float32), None, cache, p), TypeError,
     "d_outputs has dtype float32, but forward's x has float64: all arrays must have one dtype"),
    (lambda m, out, fin, cache, p: m.backward(out, None, None, p), TypeError,
     "cache must be the cache that forward() returned (keep_cache=True)"),
    (lambda m, out, fin, cache, p: m.backward(out, None, cache, _with(p, b_i=p["b_i"][:1])),
     ValueError, "params['b_i'] must have shape (hidden,) = (5,), got (1,)"),
    (lambda m, out, fin, cache, p: m.backward(out, None, cache, _with(p, extra=p["b_i"])),
     ValueError, "params must have the keys of PARAMS: unknown ['extra']"),
])
def test_backward_refuses(call, kind, message):
    mod, x, h, c, p = _setup()
    out, fin, cache = mod.forward(x, (h, c), p)
    with _raises(kind, message):
        call(mod, out, fin, cache, p)


@pytest.mark.parametrize("sizes,kwargs,kind,message", [
    ({"input": 3, "hidden": 5}, {}, ValueError, "sizes must have the keys of SIZES: missing ['proj']"),
    ({**SIZES, "depth": 2}, {}, ValueError, "sizes must have the keys of SIZES: unknown ['depth']"),
    ({**SIZES, "hidden": 0}, {}, ValueError, "sizes['hidden'] must be at least 1, got 0"),
    ({**SIZES, "hidden": 5.0}, {}, TypeError, "sizes['hidden'] must be an integer, got float"),
    ([3, 5, 2], {}, TypeError, "sizes must be a dict keyed as SIZES, got list"),
    (SIZES, {"dtype": np.float16}, TypeError, "dtype must be float32 or float64, got float16"),
])
def test_init_params_refuses(sizes, kwargs, kind, message):
    with _raises(kind, message):
        numpy_module("lstm_proj").init_params(sizes, **kwargs)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_valid_calls_still_work(dtype):
    mod, x, h, c, p = _setup(dtype)
    out, fin, cache = mod.forward(x, [h, c], p)  # a list in STATES order is a tuple too
    assert out.dtype == dtype and out.shape == (T, B, 2)
    dx, d_state0, d_params = mod.backward(None, (None, np.ones_like(c)), cache, p)
    assert dx.shape == x.shape and d_state0[1].shape == c.shape and d_params.keys() == p.keys()
    y, state = mod.step(x[0], (h, c), p)
    np.testing.assert_array_equal(y, out[0])
    assert mod.forward(x[:1, :1], None, p)[0].shape == (1, 1, 2)  # T = B = 1


def test_checked_once_per_call(monkeypatch):
    """The checks run at the entry point, not in the time loop."""
    mod, x, h, c, p = _setup()
    calls = []
    real = mod._check
    monkeypatch.setattr(mod, "_check", lambda *a: calls.append(1) or real(*a))
    _, _, cache = mod.forward(x, (h, c), p)
    mod.backward(None, None, cache, p)
    assert len(calls) == 2


def test_sizes_named_like_the_axes():
    """A cell may name its sizes T and B: they are not the time and batch axes."""
    text = "cell axes \"test\"\ninput x[T]\nstate h[B]\nh' = tanh(linear(x, h))\n"
    plan = schedule(derive(build(parse(text, "axes.gate"))))
    mod = load_module(emit_numpy(plan, "axes.gate"), "axes_numpy")
    rng = np.random.default_rng(2)
    p = mod.init_params({"T": 3, "B": 5}, rng)
    x = rng.normal(size=(7, 2, 3))
    out, (h,), _ = mod.forward(x, (rng.normal(size=(2, 5)),), p)
    assert out.shape == (7, 2, 5) and h.shape == (2, 5)
    with _raises(ValueError, "state0[0] (h) must have shape (B, B) = (2, 5), got (5, 5)"):
        mod.forward(x, (rng.normal(size=(5, 5)),), p)

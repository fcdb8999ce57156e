"""Hand-written NumPy reference implementations of recurrent cells.

These are the test oracle for generated code: every forward step and every
backward-through-time step below is written by hand from the cell equations
(no symbolic tools, no autograd).

Conventions
-----------
* ``x`` is time-major, shape (T, B, N); states are (B, H) arrays.
* Weights have shape (out, in) like torch, so ``W x`` for a batch is
  ``x @ W.T``.  Biases and diagonal (peephole) weights have shape (H,).
* Each cell exposes ``PARAMS`` (name -> tuple of size names), ``STATES``,
  ``OUTPUT``, ``forward(x, state0, params) -> (outputs, final_state)`` and
  ``backward(x, state0, params, d_outputs, d_final_state)
  -> (dx, d_state0, d_params)``.  ``state0`` may be None (zeros); entries of
  ``d_final_state`` (or the whole tuple) may be None (zero).
* ``CELLS`` maps cell name -> cell object; ``init_params`` draws random
  parameters in uniform(-0.5, 0.5).
"""

from typing import ClassVar

import numpy as np

Shapes = dict[str, tuple[str, ...]]


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def _lin(p, name, v):
    """W v for a batch of row vectors v (B, in) with W of shape (out, in)."""
    return v @ p[name].T


def _lin_back(p, g, name, v, da):
    """Backward of _lin: accumulate dW into g[name], return dv."""
    g[name] += da.T @ v
    return da @ p[name]


class _Cell:
    """Generic time loop; subclasses define ``step`` and ``step_back``."""

    name: ClassVar[str] = ""
    PARAMS: ClassVar[Shapes] = {}
    STATES: ClassVar[tuple[str, ...]] = ()
    OUTPUT: ClassVar[str] = ""

    def _state0(self, x, state0, params):
        B = x.shape[1]
        H = params[next(iter(self.PARAMS))].shape[0]  # first param is (hidden, ...)
        if state0 is None:
            return tuple(np.zeros((B, H), dtype=x.dtype) for _ in self.STATES)
        return tuple(np.zeros((B, H), dtype=x.dtype) if s is None else s for s in state0)

    def forward(self, x, state0, params):
        state = self._state0(x, state0, params)
        out_i = self.STATES.index(self.OUTPUT)
        outputs = []
        for t in range(x.shape[0]):
            state, _ = self.step(x[t], state, params)
            outputs.append(state[out_i])
        return np.stack(outputs), state

    def backward(self, x, state0, params, d_outputs, d_final_state):
        state = self._state0(x, state0, params)
        T = x.shape[0]
        # Forward pass, keeping the per-step caches.
        caches = []
        for t in range(T):
            state, cache = self.step(x[t], state, params)
            caches.append(cache)
        # Backward through time.
        if d_final_state is None:
            d_final_state = (None,) * len(self.STATES)
        dstate = [
            np.zeros_like(s) if d is None else np.array(d, dtype=s.dtype)
            for s, d in zip(state, d_final_state)
        ]
        out_i = self.STATES.index(self.OUTPUT)
        grads = {k: np.zeros_like(v) for k, v in params.items()}
        dx = np.zeros_like(x)
        for t in range(T - 1, -1, -1):
            if d_outputs is not None:
                dstate[out_i] = dstate[out_i] + d_outputs[t]
            dx[t], dstate = self.step_back(tuple(dstate), caches[t], params, grads)
            dstate = list(dstate)
        return dx, tuple(dstate), grads


class SRNN(_Cell):
    """Elman RNN.

    h_t = tanh(W_hx x_t + W_hh h + b_h)
    """

    name = "srnn"
    PARAMS: ClassVar[Shapes] = {
        "W_hx": ("hidden", "input"),
        "W_hh": ("hidden", "hidden"),
        "b_h": ("hidden",),
    }
    STATES = ("h",)
    OUTPUT = "h"

    def step(self, x, state, p):
        (h,) = state
        h_t = np.tanh(_lin(p, "W_hx", x) + _lin(p, "W_hh", h) + p["b_h"])
        return (h_t,), (x, h, h_t)

    def step_back(self, dstate, cache, p, g):
        (dh_t,) = dstate
        x, h, h_t = cache
        da = dh_t * (1.0 - h_t**2)
        g["b_h"] += da.sum(0)
        dx = _lin_back(p, g, "W_hx", x, da)
        dh = _lin_back(p, g, "W_hh", h, da)
        return dx, (dh,)


def _lstm_params(peephole):
    ps = {}
    for k in "ifgo":
        ps[f"W_{k}x"] = ("hidden", "input")
        ps[f"W_{k}h"] = ("hidden", "hidden")
        ps[f"b_{k}"] = ("hidden",)
    if peephole:
        for k in "ifo":
            ps[f"w_{k}c"] = ("hidden",)
    return ps


class LSTM(_Cell):
    """LSTM with forget gate (Gers 2000).

    i = σ(W_ix x + W_ih h + b_i)
    f = σ(W_fx x + W_fh h + b_f)
    g = tanh(W_gx x + W_gh h + b_g)
    o = σ(W_ox x + W_oh h + b_o)
    c_t = f⊙c + i⊙g
    h_t = o⊙tanh(c_t)
    """

    name = "lstm"
    PARAMS: ClassVar[Shapes] = _lstm_params(peephole=False)
    STATES = ("h", "c")
    OUTPUT = "h"

    def step(self, x, state, p):
        h, c = state

        def pre(k):
            return _lin(p, f"W_{k}x", x) + _lin(p, f"W_{k}h", h) + p[f"b_{k}"]

        i = sigmoid(pre("i"))
        f = sigmoid(pre("f"))
        g = np.tanh(pre("g"))
        o = sigmoid(pre("o"))
        c_t = f * c + i * g
        tc = np.tanh(c_t)
        h_t = o * tc
        return (h_t, c_t), (x, h, c, i, f, g, o, tc)

    def step_back(self, dstate, cache, p, grads):
        dh_t, dc_t = dstate
        x, h, c, i, f, g, o, tc = cache
        do = dh_t * tc
        dc_tot = dc_t + dh_t * o * (1.0 - tc**2)
        da = {
            "i": dc_tot * g * i * (1.0 - i),
            "f": dc_tot * c * f * (1.0 - f),
            "g": dc_tot * i * (1.0 - g**2),
            "o": do * o * (1.0 - o),
        }
        dc = dc_tot * f
        dx = np.zeros_like(x)
        dh = np.zeros_like(h)
        for k, d in da.items():
            grads[f"b_{k}"] += d.sum(0)
            dx += _lin_back(p, grads, f"W_{k}x", x, d)
            dh += _lin_back(p, grads, f"W_{k}h", h, d)
        return dx, (dh, dc)


class LSTMPeephole(_Cell):
    """LSTM with peephole connections (Gers 2003).

    i = σ(W_ix x + W_ih h + b_i + w_ic⊙c)
    f = σ(W_fx x + W_fh h + b_f + w_fc⊙c)
    g = tanh(W_gx x + W_gh h + b_g)
    c_t = f⊙c + i⊙g
    o = σ(W_ox x + W_oh h + b_o + w_oc⊙c_t)
    h_t = o⊙tanh(c_t)
    """

    name = "lstm_peephole"
    PARAMS: ClassVar[Shapes] = _lstm_params(peephole=True)
    STATES = ("h", "c")
    OUTPUT = "h"

    def step(self, x, state, p):
        h, c = state

        def pre(k):
            return _lin(p, f"W_{k}x", x) + _lin(p, f"W_{k}h", h) + p[f"b_{k}"]

        i = sigmoid(pre("i") + p["w_ic"] * c)
        f = sigmoid(pre("f") + p["w_fc"] * c)
        g = np.tanh(pre("g"))
        c_t = f * c + i * g
        o = sigmoid(pre("o") + p["w_oc"] * c_t)
        tc = np.tanh(c_t)
        h_t = o * tc
        return (h_t, c_t), (x, h, c, i, f, g, o, c_t, tc)

    def step_back(self, dstate, cache, p, grads):
        dh_t, dc_t = dstate
        x, h, c, i, f, g, o, c_t, tc = cache
        da_o = dh_t * tc * o * (1.0 - o)
        grads["w_oc"] += (da_o * c_t).sum(0)
        dc_tot = dc_t + dh_t * o * (1.0 - tc**2) + da_o * p["w_oc"]
        da = {
            "i": dc_tot * g * i * (1.0 - i),
            "f": dc_tot * c * f * (1.0 - f),
            "g": dc_tot * i * (1.0 - g**2),
            "o": da_o,
        }
        grads["w_ic"] += (da["i"] * c).sum(0)
        grads["w_fc"] += (da["f"] * c).sum(0)
        dc = dc_tot * f + da["i"] * p["w_ic"] + da["f"] * p["w_fc"]
        dx = np.zeros_like(x)
        dh = np.zeros_like(h)
        for k, d in da.items():
            grads[f"b_{k}"] += d.sum(0)
            dx += _lin_back(p, grads, f"W_{k}x", x, d)
            dh += _lin_back(p, grads, f"W_{k}h", h, d)
        return dx, (dh, dc)


class GRU(_Cell):
    """GRU as in Cho et al. 2014 (reset applied before the linear map).

    r = σ(W_rx x + W_rh h + b_r)
    z = σ(W_zx x + W_zh h + b_z)
    n = tanh(W_nx x + W_nh (r⊙h) + b_n)
    h_t = z⊙h + (1−z)⊙n
    """

    name = "gru"
    PARAMS: ClassVar[Shapes] = {
        "W_rx": ("hidden", "input"),
        "W_rh": ("hidden", "hidden"),
        "b_r": ("hidden",),
        "W_zx": ("hidden", "input"),
        "W_zh": ("hidden", "hidden"),
        "b_z": ("hidden",),
        "W_nx": ("hidden", "input"),
        "W_nh": ("hidden", "hidden"),
        "b_n": ("hidden",),
    }
    STATES = ("h",)
    OUTPUT = "h"

    def step(self, x, state, p):
        (h,) = state
        r = sigmoid(_lin(p, "W_rx", x) + _lin(p, "W_rh", h) + p["b_r"])
        z = sigmoid(_lin(p, "W_zx", x) + _lin(p, "W_zh", h) + p["b_z"])
        rh = r * h
        n = np.tanh(_lin(p, "W_nx", x) + _lin(p, "W_nh", rh) + p["b_n"])
        h_t = z * h + (1.0 - z) * n
        return (h_t,), (x, h, r, z, rh, n)

    def step_back(self, dstate, cache, p, g):
        (dh_t,) = dstate
        x, h, r, z, rh, n = cache
        dh = dh_t * z
        da_z = dh_t * (h - n) * z * (1.0 - z)
        da_n = dh_t * (1.0 - z) * (1.0 - n**2)
        g["b_n"] += da_n.sum(0)
        dx = _lin_back(p, g, "W_nx", x, da_n)
        drh = _lin_back(p, g, "W_nh", rh, da_n)
        dh += drh * r
        da_r = drh * h * r * (1.0 - r)
        for k, d in (("r", da_r), ("z", da_z)):
            g[f"b_{k}"] += d.sum(0)
            dx += _lin_back(p, g, f"W_{k}x", x, d)
            dh += _lin_back(p, g, f"W_{k}h", h, d)
        return dx, (dh,)


class GRUTorch(_Cell):
    """GRU in the torch.nn.GRU form (reset applied after the linear map).

    r = σ(W_rx x + W_rh h + b_r)
    z = σ(W_zx x + W_zh h + b_z)
    n = tanh(W_nx x + b_nx + r⊙(W_nh h + b_nh))
    h_t = z⊙h + (1−z)⊙n
    """

    name = "gru_torch"
    PARAMS: ClassVar[Shapes] = {
        "W_rx": ("hidden", "input"),
        "W_rh": ("hidden", "hidden"),
        "b_r": ("hidden",),
        "W_zx": ("hidden", "input"),
        "W_zh": ("hidden", "hidden"),
        "b_z": ("hidden",),
        "W_nx": ("hidden", "input"),
        "b_nx": ("hidden",),
        "W_nh": ("hidden", "hidden"),
        "b_nh": ("hidden",),
    }
    STATES = ("h",)
    OUTPUT = "h"

    def step(self, x, state, p):
        (h,) = state
        r = sigmoid(_lin(p, "W_rx", x) + _lin(p, "W_rh", h) + p["b_r"])
        z = sigmoid(_lin(p, "W_zx", x) + _lin(p, "W_zh", h) + p["b_z"])
        m = _lin(p, "W_nh", h) + p["b_nh"]
        n = np.tanh(_lin(p, "W_nx", x) + p["b_nx"] + r * m)
        h_t = z * h + (1.0 - z) * n
        return (h_t,), (x, h, r, z, m, n)

    def step_back(self, dstate, cache, p, g):
        (dh_t,) = dstate
        x, h, r, z, m, n = cache
        dh = dh_t * z
        da_z = dh_t * (h - n) * z * (1.0 - z)
        da_n = dh_t * (1.0 - z) * (1.0 - n**2)
        g["b_nx"] += da_n.sum(0)
        dx = _lin_back(p, g, "W_nx", x, da_n)
        dm = da_n * r
        g["b_nh"] += dm.sum(0)
        dh += _lin_back(p, g, "W_nh", h, dm)
        da_r = da_n * m * r * (1.0 - r)
        for k, d in (("r", da_r), ("z", da_z)):
            g[f"b_{k}"] += d.sum(0)
            dx += _lin_back(p, g, f"W_{k}x", x, d)
            dh += _lin_back(p, g, f"W_{k}h", h, d)
        return dx, (dh,)


CELLS = {
    "lstm": LSTM(),
    "gru": GRU(),
    "srnn": SRNN(),
    "gru_torch": GRUTorch(),
    "lstm_peephole": LSTMPeephole(),
}


def init_params(cell, N, H, rng, dtype=np.float64):
    """Random parameters in uniform(-0.5, 0.5); ``cell`` is a name or a cell."""
    if isinstance(cell, str):
        cell = CELLS[cell]
    sizes = {"input": N, "hidden": H}
    return {
        name: rng.uniform(-0.5, 0.5, size=tuple(sizes[s] for s in shape)).astype(dtype)
        for name, shape in cell.PARAMS.items()
    }

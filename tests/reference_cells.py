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
* Sizes other than input/hidden: ``INPUT_SIZE`` and ``STATE_SIZES`` name the
  size of x and of each state (``sru`` reads x[hidden]; ``lstm_proj`` has
  h[proj]); ``problem_sizes`` and ``dims`` give the numbers for a test
  problem.  The output may be an intermediate instead of a state (``sru``):
  then ``output_of`` returns it and ``step_back`` takes its gradient as
  ``d_out``.  ``valid_state0`` maps a random initial state into the cell's
  domain (``slstm`` needs a positive normaliser n).
* Further input sequences (``gru_cond`` reads x and a context c): ``EXTRA_INPUTS``
  maps each name to its size, and ``x`` is then every input side by side on the
  last axis, in declaration order (x first), as the generated modules pack them
  inside; ``dx`` is the gradient of that packed array. ``split_inputs`` cuts one
  into its parts.
* Masks of zoneout() and dropout() (``lstm_zoneout``): ``MASKS`` maps each mask's
  name to its size, and the masks come last in the packed ``x``, as given arrays
  (the generated modules take them as ``masks=``). The functions are linear in a
  mask, so any real values test them; ``dx`` holds their gradients too (the generated
  modules treat masks as constants and return none).
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


def split_inputs(cell, packed, sizes):
    """A packed input (x, then EXTRA_INPUTS in order, on the last axis) -> [x, *extras]."""
    widths = [sizes[cell.INPUT_SIZE], *(sizes[s] for s in cell.EXTRA_INPUTS.values())]
    return np.split(packed, np.cumsum(widths)[:-1], axis=-1)


class _Cell:
    """Generic time loop; subclasses define ``step`` and ``step_back``."""

    name: ClassVar[str] = ""
    PARAMS: ClassVar[Shapes] = {}
    STATES: ClassVar[tuple[str, ...]] = ()
    OUTPUT: ClassVar[str] = ""
    INPUT_SIZE: ClassVar[str] = "input"
    EXTRA_INPUTS: ClassVar[dict[str, str]] = {}  # further inputs packed after x: name -> size
    MASKS: ClassVar[dict[str, str]] = {}  # masks packed after them: name -> size
    STATE_SIZES: ClassVar[tuple[str, ...] | None] = None  # None: every state is `hidden`

    def state_sizes(self):
        return self.STATE_SIZES or ("hidden",) * len(self.STATES)

    def state_dims(self, params):
        """The number of elements of each state, read off the parameter shapes."""
        dims = {}
        for name, shape in self.PARAMS.items():
            dims.update(zip(shape, params[name].shape))
        return tuple(dims[s] for s in self.state_sizes())

    def valid_state0(self, state0):
        """A random initial state mapped into the cell's domain (identity here)."""
        return state0

    def output_of(self, state, cache):
        """This step's output; an output that is not a state is overridden."""
        return state[self.STATES.index(self.OUTPUT)]

    def _state0(self, x, state0, params):
        B = x.shape[1]
        dims = self.state_dims(params)
        if state0 is None:
            return tuple(np.zeros((B, n), dtype=x.dtype) for n in dims)
        return tuple(np.zeros((B, n), dtype=x.dtype) if s is None else s
                     for s, n in zip(state0, dims))

    def forward(self, x, state0, params):
        state = self._state0(x, state0, params)
        outputs = []
        for t in range(x.shape[0]):
            state, cache = self.step(x[t], state, params)
            outputs.append(self.output_of(state, cache))
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
        grads = {k: np.zeros_like(v) for k, v in params.items()}
        dx = np.zeros_like(x)
        for t in range(T - 1, -1, -1):
            if self.OUTPUT not in self.STATES:  # the output is an intermediate (sru)
                d_out = None if d_outputs is None else d_outputs[t]
                dx[t], dstate = self.step_back(tuple(dstate), caches[t], params, grads, d_out)
            else:
                out_i = self.STATES.index(self.OUTPUT)
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


class GRUResetAfter(_Cell):
    """GRU in the torch.nn.GRU form (reset applied after the linear map).

    r = σ(W_rx x + W_rh h + b_r)
    z = σ(W_zx x + W_zh h + b_z)
    n = tanh(W_nx x + b_nx + r⊙(W_nh h + b_nh))
    h_t = z⊙h + (1−z)⊙n
    """

    name = "gru_reset_after"
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


def _lin_gates(p, x, h, gates):
    """Pre-activations W_kx x + W_kh h + b_k of the gates named in `gates`."""
    return {k: _lin(p, f"W_{k}x", x) + _lin(p, f"W_{k}h", h) + p[f"b_{k}"] for k in gates}


def _lin_gates_back(p, grads, x, h, da):
    """Backward of _lin_gates: accumulate W_kx, W_kh, b_k; return (dx, dh)."""
    dx = np.zeros_like(x)
    dh = np.zeros_like(h)
    for k, d in da.items():
        grads[f"b_{k}"] += d.sum(0)
        dx += _lin_back(p, grads, f"W_{k}x", x, d)
        dh += _lin_back(p, grads, f"W_{k}h", h, d)
    return dx, dh


def _xh_params(gates, h_size="hidden"):
    ps = {}
    for k in gates:
        ps[f"W_{k}x"] = ("hidden", "input")
        ps[f"W_{k}h"] = ("hidden", h_size)
        ps[f"b_{k}"] = ("hidden",)
    return ps


def _x_params(gates, input_size="input"):
    ps = {}
    for k in gates:
        ps[f"W_{k}x"] = ("hidden", input_size)
        ps[f"b_{k}"] = ("hidden",)
    return ps


class LSTMNoOutputTanh(_Cell):
    """LSTM without the output activation (Gers et al. 2003; article section 2.5).

    i, f, g, o as in the LSTM; c_t = f⊙c + i⊙g; h_t = o⊙c_t
    """

    name = "lstm_no_output_tanh"
    PARAMS: ClassVar[Shapes] = _lstm_params(peephole=False)
    STATES = ("h", "c")
    OUTPUT = "h"

    def step(self, x, state, p):
        h, c = state
        a = _lin_gates(p, x, h, "ifgo")
        i, f, o = sigmoid(a["i"]), sigmoid(a["f"]), sigmoid(a["o"])
        g = np.tanh(a["g"])
        c_t = f * c + i * g
        h_t = o * c_t
        return (h_t, c_t), (x, h, c, i, f, g, o, c_t)

    def step_back(self, dstate, cache, p, grads):
        dh_t, dc_t = dstate
        x, h, c, i, f, g, o, c_t = cache
        dc_tot = dc_t + dh_t * o
        da = {
            "i": dc_tot * g * i * (1.0 - i),
            "f": dc_tot * c * f * (1.0 - f),
            "g": dc_tot * i * (1.0 - g**2),
            "o": dh_t * c_t * o * (1.0 - o),
        }
        dx, dh = _lin_gates_back(p, grads, x, h, da)
        return dx, (dh, dc_tot * f)


class LSTMProj(_Cell):
    """LSTM with a recurrent projection (Sak et al. 2014); torch.nn.LSTM(proj_size=P).

    i, f, g, o read x and h (P elements); c_t = f⊙c + i⊙g (H elements);
    h_t = W_hc (o⊙tanh(c_t)), W_hc of shape (P, H), no bias.
    """

    name = "lstm_proj"
    PARAMS: ClassVar[Shapes] = {**_xh_params("ifgo", h_size="proj"), "W_hc": ("proj", "hidden")}
    STATES = ("h", "c")
    OUTPUT = "h"
    STATE_SIZES = ("proj", "hidden")

    def step(self, x, state, p):
        h, c = state
        a = _lin_gates(p, x, h, "ifgo")
        i, f, o = sigmoid(a["i"]), sigmoid(a["f"]), sigmoid(a["o"])
        g = np.tanh(a["g"])
        c_t = f * c + i * g
        tc = np.tanh(c_t)
        mo = o * tc  # Sak's m_t
        h_t = _lin(p, "W_hc", mo)
        return (h_t, c_t), (x, h, c, i, f, g, o, tc, mo)

    def step_back(self, dstate, cache, p, grads):
        dh_t, dc_t = dstate
        x, h, c, i, f, g, o, tc, mo = cache
        dmo = _lin_back(p, grads, "W_hc", mo, dh_t)
        dc_tot = dc_t + dmo * o * (1.0 - tc**2)
        da = {
            "i": dc_tot * g * i * (1.0 - i),
            "f": dc_tot * c * f * (1.0 - f),
            "g": dc_tot * i * (1.0 - g**2),
            "o": dmo * tc * o * (1.0 - o),
        }
        dx, dh = _lin_gates_back(p, grads, x, h, da)
        return dx, (dh, dc_tot * f)


class LSTMCIFG(_Cell):
    """LSTM with coupled input and forget gate (Greff et al. 2017).

    f, g, o as in the LSTM; c_t = f⊙c + (1−f)⊙g; h_t = o⊙tanh(c_t)
    """

    name = "lstm_cifg"
    PARAMS: ClassVar[Shapes] = _xh_params("fgo")
    STATES = ("h", "c")
    OUTPUT = "h"

    def step(self, x, state, p):
        h, c = state
        a = _lin_gates(p, x, h, "fgo")
        f, o = sigmoid(a["f"]), sigmoid(a["o"])
        g = np.tanh(a["g"])
        c_t = f * c + (1.0 - f) * g
        tc = np.tanh(c_t)
        return (o * tc, c_t), (x, h, c, f, g, o, tc)

    def step_back(self, dstate, cache, p, grads):
        dh_t, dc_t = dstate
        x, h, c, f, g, o, tc = cache
        dc_tot = dc_t + dh_t * o * (1.0 - tc**2)
        da = {
            "f": dc_tot * (c - g) * f * (1.0 - f),
            "g": dc_tot * (1.0 - f) * (1.0 - g**2),
            "o": dh_t * tc * o * (1.0 - o),
        }
        dx, dh = _lin_gates_back(p, grads, x, h, da)
        return dx, (dh, dc_tot * f)


class MGU(_Cell):
    """Minimal gated unit (Zhou et al. 2016).

    f = σ(W_fx x + W_fh h + b_f)
    n = tanh(W_nx x + W_nh (f⊙h) + b_n)
    h_t = (1−f)⊙h + f⊙n
    """

    name = "mgu"
    PARAMS: ClassVar[Shapes] = _xh_params("fn")
    STATES = ("h",)
    OUTPUT = "h"

    def step(self, x, state, p):
        (h,) = state
        f = sigmoid(_lin(p, "W_fx", x) + _lin(p, "W_fh", h) + p["b_f"])
        fh = f * h
        n = np.tanh(_lin(p, "W_nx", x) + _lin(p, "W_nh", fh) + p["b_n"])
        return ((1.0 - f) * h + f * n,), (x, h, f, fh, n)

    def step_back(self, dstate, cache, p, g):
        (dh_t,) = dstate
        x, h, f, fh, n = cache
        dh = dh_t * (1.0 - f)
        df = dh_t * (n - h)
        da_n = dh_t * f * (1.0 - n**2)
        g["b_n"] += da_n.sum(0)
        dx = _lin_back(p, g, "W_nx", x, da_n)
        dfh = _lin_back(p, g, "W_nh", fh, da_n)
        df += dfh * h
        dh += dfh * f
        da_f = df * f * (1.0 - f)
        g["b_f"] += da_f.sum(0)
        dx += _lin_back(p, g, "W_fx", x, da_f)
        dh += _lin_back(p, g, "W_fh", h, da_f)
        return dx, (dh,)


class JANET(_Cell):
    """JANET (van der Westhuizen & Lasenby 2018), β = 1; one state h = c.

    s = W_sx x + W_sh h + b_s
    g = tanh(W_gx x + W_gh h + b_g)
    h_t = σ(s)⊙h + (1 − σ(s − β))⊙g
    """

    name = "janet"
    BETA = 1.0
    PARAMS: ClassVar[Shapes] = _xh_params("sg")
    STATES = ("h",)
    OUTPUT = "h"

    def step(self, x, state, p):
        (h,) = state
        a = _lin_gates(p, x, h, "sg")
        sf = sigmoid(a["s"])
        si = sigmoid(a["s"] - self.BETA)
        g = np.tanh(a["g"])
        return (sf * h + (1.0 - si) * g,), (x, h, sf, si, g)

    def step_back(self, dstate, cache, p, grads):
        (dh_t,) = dstate
        x, h, sf, si, g = cache
        da = {
            "s": dh_t * (h * sf * (1.0 - sf) - g * si * (1.0 - si)),
            "g": dh_t * (1.0 - si) * (1.0 - g**2),
        }
        dx, dh = _lin_gates_back(p, grads, x, h, da)
        return dx, (dh + dh_t * sf,)


class IndRNN(_Cell):
    """IndRNN (Li et al. 2018).

    h_t = relu(W_hx x + w_hh⊙h + b_h)
    """

    name = "indrnn"
    PARAMS: ClassVar[Shapes] = {
        "W_hx": ("hidden", "input"),
        "b_h": ("hidden",),
        "w_hh": ("hidden",),
    }
    STATES = ("h",)
    OUTPUT = "h"

    def step(self, x, state, p):
        (h,) = state
        h_t = np.maximum(_lin(p, "W_hx", x) + p["w_hh"] * h + p["b_h"], 0.0)
        return (h_t,), (x, h, h_t)

    def step_back(self, dstate, cache, p, g):
        (dh_t,) = dstate
        x, h, h_t = cache
        da = dh_t * (h_t > 0)
        g["b_h"] += da.sum(0)
        g["w_hh"] += (da * h).sum(0)
        dx = _lin_back(p, g, "W_hx", x, da)
        return dx, (da * p["w_hh"],)


class AntisymmetricRNN(_Cell):
    """AntisymmetricRNN (Chang et al. 2019), from the paper's equation (forward Euler):

    h_t = h + ε tanh((W − Wᵀ − γI) h + V x + b),  ε = γ = 0.01 (as the cell file)

    W is W_hh, V is W_hx. Backward: with M = W − Wᵀ − γI and δa the pre-activation's
    gradient, δM = Σ δa hᵀ, and since M depends on W twice, δW = δM − δMᵀ.
    """

    name = "antisymmetric_rnn"
    EPS = 0.01
    GAMMA = 0.01
    PARAMS: ClassVar[Shapes] = {
        "W_hh": ("hidden", "hidden"),
        "W_hx": ("hidden", "input"),
        "b_h": ("hidden",),
    }
    STATES = ("h",)
    OUTPUT = "h"

    def _m(self, p):
        W = p["W_hh"]
        return W - W.T - self.GAMMA * np.eye(W.shape[0])

    def step(self, x, state, p):
        (h,) = state
        a_t = np.tanh(h @ self._m(p).T + _lin(p, "W_hx", x) + p["b_h"])
        return (h + self.EPS * a_t,), (x, h, a_t)

    def step_back(self, dstate, cache, p, g):
        (dh_t,) = dstate
        x, h, a_t = cache
        da = self.EPS * dh_t * (1.0 - a_t**2)
        g["b_h"] += da.sum(0)
        dM = da.T @ h
        g["W_hh"] += dM - dM.T
        dx = _lin_back(p, g, "W_hx", x, da)
        return dx, (dh_t + da @ self._m(p),)


class UGRNN(_Cell):
    """Update-gate RNN (Collins et al. 2017).

    c = tanh(W_cx x + W_ch h + b_c)
    g = σ(W_gx x + W_gh h + b_g)
    h_t = g⊙h + (1−g)⊙c
    """

    name = "ugrnn"
    PARAMS: ClassVar[Shapes] = _xh_params("cg")
    STATES = ("h",)
    OUTPUT = "h"

    def step(self, x, state, p):
        (h,) = state
        a = _lin_gates(p, x, h, "cg")
        c = np.tanh(a["c"])
        g = sigmoid(a["g"])
        return (g * h + (1.0 - g) * c,), (x, h, c, g)

    def step_back(self, dstate, cache, p, grads):
        (dh_t,) = dstate
        x, h, c, g = cache
        da = {
            "c": dh_t * (1.0 - g) * (1.0 - c**2),
            "g": dh_t * (h - c) * g * (1.0 - g),
        }
        dx, dh = _lin_gates_back(p, grads, x, h, da)
        return dx, (dh + dh_t * g,)


def _x_back(p, grads, x, da):
    """Backward of input-only affine maps W_kx x + b_k; returns dx."""
    dx = np.zeros_like(x)
    for k, d in da.items():
        grads[f"b_{k}"] += d.sum(0)
        dx += _lin_back(p, grads, f"W_{k}x", x, d)
    return dx


class MinGRU(_Cell):
    """minGRU (Feng et al. 2024), sequential mode.

    z = σ(W_zx x + b_z); n = W_nx x + b_n; h_t = (1−z)⊙h + z⊙n
    """

    name = "mingru"
    PARAMS: ClassVar[Shapes] = _x_params("zn")
    STATES = ("h",)
    OUTPUT = "h"

    def step(self, x, state, p):
        (h,) = state
        z = sigmoid(_lin(p, "W_zx", x) + p["b_z"])
        n = _lin(p, "W_nx", x) + p["b_n"]
        return ((1.0 - z) * h + z * n,), (x, h, z, n)

    def step_back(self, dstate, cache, p, grads):
        (dh_t,) = dstate
        x, h, z, n = cache
        da = {"z": dh_t * (n - h) * z * (1.0 - z), "n": dh_t * z}
        return _x_back(p, grads, x, da), (dh_t * (1.0 - z),)


class QRNN(_Cell):
    """QRNN with f-pooling and filters of width 1 (Bradbury et al. 2017).

    z = tanh(W_zx x + b_z); f = σ(W_fx x + b_f); h_t = f⊙h + (1−f)⊙z
    """

    name = "qrnn"
    PARAMS: ClassVar[Shapes] = _x_params("zf")
    STATES = ("h",)
    OUTPUT = "h"

    def step(self, x, state, p):
        (h,) = state
        z = np.tanh(_lin(p, "W_zx", x) + p["b_z"])
        f = sigmoid(_lin(p, "W_fx", x) + p["b_f"])
        return (f * h + (1.0 - f) * z,), (x, h, z, f)

    def step_back(self, dstate, cache, p, grads):
        (dh_t,) = dstate
        x, h, z, f = cache
        da = {"z": dh_t * (1.0 - f) * (1.0 - z**2), "f": dh_t * (h - z) * f * (1.0 - f)}
        return _x_back(p, grads, x, da), (dh_t * f,)


class MinLSTM(_Cell):
    """minLSTM (Feng et al. 2024), sequential mode (not log space).

    f = σ(W_fx x + b_f); i = σ(W_ix x + b_i); n = W_nx x + b_n
    f' = f/(f+i); i' = i/(f+i); h_t = f'⊙h + i'⊙n
    """

    name = "minlstm"
    PARAMS: ClassVar[Shapes] = _x_params("fin")
    STATES = ("h",)
    OUTPUT = "h"

    def step(self, x, state, p):
        (h,) = state
        f = sigmoid(_lin(p, "W_fx", x) + p["b_f"])
        i = sigmoid(_lin(p, "W_ix", x) + p["b_i"])
        n = _lin(p, "W_nx", x) + p["b_n"]
        S = f + i
        return (f / S * h + i / S * n,), (x, h, f, i, n, S)

    def step_back(self, dstate, cache, p, grads):
        (dh_t,) = dstate
        x, h, f, i, n, S = cache
        dfp = dh_t * h  # through f' = f/S
        dip = dh_t * n  # through i' = i/S
        # d f'/d f = i/S², d f'/d i = −f/S², d i'/d f = −i/S², d i'/d i = f/S²
        df = (dfp - dip) * i / S**2
        di = (dip - dfp) * f / S**2
        da = {"f": df * f * (1.0 - f), "i": di * i * (1.0 - i), "n": dh_t * i / S}
        return _x_back(p, grads, x, da), (dh_t * f / S,)


class SRU(_Cell):
    """Simple recurrent unit (Lei et al. 2018, with the v⊙c terms); x has H elements.

    u = W_ux x
    f = σ(W_fx x + w_fc⊙c + b_f)
    r = σ(W_rx x + w_rc⊙c + b_r)
    c_t = f⊙c + (1−f)⊙u
    h_t = r⊙c_t + (1−r)⊙x      (the output; not a state)
    """

    name = "sru"
    PARAMS: ClassVar[Shapes] = {
        "W_ux": ("hidden", "hidden"),
        **_x_params("f", "hidden"),
        "w_fc": ("hidden",),
        **_x_params("r", "hidden"),
        "w_rc": ("hidden",),
    }
    STATES = ("c",)
    OUTPUT = "h"
    INPUT_SIZE = "hidden"

    def step(self, x, state, p):
        (c,) = state
        u = _lin(p, "W_ux", x)
        f = sigmoid(_lin(p, "W_fx", x) + p["w_fc"] * c + p["b_f"])
        r = sigmoid(_lin(p, "W_rx", x) + p["w_rc"] * c + p["b_r"])
        c_t = f * c + (1.0 - f) * u
        h_t = r * c_t + (1.0 - r) * x
        return (c_t,), (x, c, u, f, r, c_t, h_t)

    def output_of(self, state, cache):
        return cache[-1]

    def step_back(self, dstate, cache, p, grads, d_out):
        (dc_t,) = dstate
        x, c, u, f, r, c_t, _ = cache
        dh = np.zeros_like(c_t) if d_out is None else d_out
        dx = dh * (1.0 - r)
        da_r = dh * (c_t - x) * r * (1.0 - r)
        dc_tot = dc_t + dh * r
        da_f = dc_tot * (c - u) * f * (1.0 - f)
        du = dc_tot * (1.0 - f)
        grads["w_fc"] += (da_f * c).sum(0)
        grads["w_rc"] += (da_r * c).sum(0)
        dc = dc_tot * f + da_f * p["w_fc"] + da_r * p["w_rc"]
        dx += _lin_back(p, grads, "W_ux", x, du)
        dx += _x_back(p, grads, x, {"f": da_f, "r": da_r})
        return dx, (dc,)


class SLSTM(_Cell):
    """sLSTM of xLSTM (Beck et al. 2024), one head, sigmoid forget gate, stabilised.

    z = tanh(W_z[x;h] + b_z); ĩ = W_i[x;h] + b_i; f̃ = W_f[x;h] + b_f
    o = σ(W_o[x;h] + b_o); log f = log σ(f̃)
    m_t = max(log f + m, ĩ)          (gradient to the first operand at a tie)
    i' = exp(ĩ − m_t); f' = exp(log f + m − m_t)
    c_t = f'⊙c + i'⊙z; n_t = f'⊙n + i'; h_t = o⊙c_t/n_t
    """

    name = "slstm"
    PARAMS: ClassVar[Shapes] = _xh_params("zifo")
    STATES = ("h", "c", "n", "m")
    OUTPUT = "h"

    def valid_state0(self, state0):
        h, c, n, m = state0
        return (h, c, np.abs(n) + 0.5, m)

    def step(self, x, state, p):
        h, c, n, m = state
        a = _lin_gates(p, x, h, "zifo")
        z = np.tanh(a["z"])
        it = a["i"]
        logf = -np.logaddexp(0.0, -a["f"])
        o = sigmoid(a["o"])
        lfm = logf + m
        m_t = np.maximum(lfm, it)
        ip = np.exp(it - m_t)
        fp = np.exp(lfm - m_t)
        c_t = fp * c + ip * z
        n_t = fp * n + ip
        h_t = o * c_t / n_t
        return (h_t, c_t, n_t, m_t), (x, h, c, n, z, it, logf, o, lfm, ip, fp, c_t, n_t)

    def step_back(self, dstate, cache, p, grads):
        dh_t, dc_t, dn_t, dm_t = dstate
        x, h, c, n, z, it, logf, o, lfm, ip, fp, c_t, n_t = cache
        do = dh_t * c_t / n_t
        dc_tot = dc_t + dh_t * o / n_t
        dn_tot = dn_t - dh_t * o * c_t / n_t**2
        dfp = dc_tot * c + dn_tot * n
        dip = dc_tot * z + dn_tot
        # ip = exp(ĩ − m_t), fp = exp(lfm − m_t): d/d(arg) = the value itself.
        dm_tot = dm_t - dip * ip - dfp * fp
        first = lfm >= it
        dlfm = dfp * fp + dm_tot * first
        dit = dip * ip + dm_tot * ~first
        # d log σ(f̃)/d f̃ = 1 − σ(f̃) = 1 − exp(log f)
        da = {
            "z": dc_tot * ip * (1.0 - z**2),
            "i": dit,
            "f": dlfm * (1.0 - np.exp(logf)),
            "o": do * o * (1.0 - o),
        }
        dx, dh = _lin_gates_back(p, grads, x, h, da)
        return dx, (dh, dc_tot * fp, dn_tot * fp, dlfm)


LN_EPS = 1e-5  # as torch.nn.LayerNorm


def _ln(u, gain, bias=None):
    """Layer normalisation over the units (last axis) of a batch of row vectors:
    y = gain ⊙ û + bias with û = (u − mean(u)) / s, s = sqrt(mean((u − mean(u))²) + eps)
    (population variance).  Returns y and the cache (û, s) of the backward pass."""
    centred = u - u.mean(-1, keepdims=True)
    s = np.sqrt((centred**2).mean(-1, keepdims=True) + LN_EPS)
    xhat = centred / s
    y = gain * xhat if bias is None else gain * xhat + bias
    return y, (xhat, s)


def _ln_back(p, grads, dy, cache, gain, bias=None):
    """Backward of _ln, by hand.  With n units, ∂s/∂u_k = û_k / n, so
    ∂û_j/∂u_k = (δ_jk − 1/n) / s − û_j û_k / (n s); with g = dy ⊙ gain (the adjoint of û):
        du = (g − mean(g) − û ⊙ mean(g ⊙ û)) / s.
    Accumulates d gain = Σ dy ⊙ û and d bias = Σ dy (over the batch); returns du."""
    xhat, s = cache
    grads[gain] += (dy * xhat).sum(0)
    if bias is not None:
        grads[bias] += dy.sum(0)
    g = dy * p[gain]
    return (g - g.mean(-1, keepdims=True) - xhat * (g * xhat).mean(-1, keepdims=True)) / s


class LSTMLayerNorm(_Cell):
    """Layer-normalised LSTM (Ba, Kiros & Hinton 2016, section 3.1): the input and the
    recurrent term of each gate normalised separately, and the cell state before the
    output tanh.  LN_{α,β}(u) = α ⊙ (u − mean(u)) / sqrt(var(u) + 1e-5) + β.

    i = σ(LN_{α_ix}(W_ix x) + LN_{α_ih,β_ih}(W_ih h))       (likewise f, o)
    g = tanh(LN_{α_gx}(W_gx x) + LN_{α_gh,β_gh}(W_gh h))
    c_t = f⊙c + i⊙g
    h_t = o⊙tanh(LN_{α_hc,β_hc}(c_t))
    """

    name = "lstm_layernorm"
    PARAMS: ClassVar[Shapes] = {
        **{name: shape for k in "ifgo" for name, shape in (
            (f"W_{k}x", ("hidden", "input")), (f"alpha_{k}x", ("hidden",)),
            (f"W_{k}h", ("hidden", "hidden")), (f"alpha_{k}h", ("hidden",)),
            (f"beta_{k}h", ("hidden",)))},
        "alpha_hc": ("hidden",),
        "beta_hc": ("hidden",),
    }
    STATES = ("h", "c")
    OUTPUT = "h"

    def step(self, x, state, p):
        h, c = state
        a, ln = {}, {}
        for k in "ifgo":
            ax, ln[f"{k}x"] = _ln(_lin(p, f"W_{k}x", x), p[f"alpha_{k}x"])
            ah, ln[f"{k}h"] = _ln(_lin(p, f"W_{k}h", h), p[f"alpha_{k}h"], p[f"beta_{k}h"])
            a[k] = ax + ah
        i, f, o = sigmoid(a["i"]), sigmoid(a["f"]), sigmoid(a["o"])
        g = np.tanh(a["g"])
        c_t = f * c + i * g
        yc, ln["hc"] = _ln(c_t, p["alpha_hc"], p["beta_hc"])
        tc = np.tanh(yc)
        h_t = o * tc
        return (h_t, c_t), (x, h, c, i, f, g, o, tc, ln)

    def step_back(self, dstate, cache, p, grads):
        dh_t, dc_t = dstate
        x, h, c, i, f, g, o, tc, ln = cache
        # h_t = o ⊙ tanh(y_c), y_c = LN(c_t): through y_c into c_t
        dyc = dh_t * o * (1.0 - tc**2)
        dc_tot = dc_t + _ln_back(p, grads, dyc, ln["hc"], "alpha_hc", "beta_hc")
        da = {
            "i": dc_tot * g * i * (1.0 - i),
            "f": dc_tot * c * f * (1.0 - f),
            "g": dc_tot * i * (1.0 - g**2),
            "o": dh_t * tc * o * (1.0 - o),
        }
        # a_k = LN(W_kx x) + LN(W_kh h): each layer norm receives da_k unchanged
        dx = np.zeros_like(x)
        dh = np.zeros_like(h)
        for k, d in da.items():
            dmx = _ln_back(p, grads, d, ln[f"{k}x"], f"alpha_{k}x")
            dmh = _ln_back(p, grads, d, ln[f"{k}h"], f"alpha_{k}h", f"beta_{k}h")
            dx += _lin_back(p, grads, f"W_{k}x", x, dmx)
            dh += _lin_back(p, grads, f"W_{k}h", h, dmh)
        return dx, (dh, dc_tot * f)


def _cumax(u):
    """Shen et al. 2019's cumax over the units: y_k = sum_{j <= k} softmax(u)_j. Returns
    (y, softmax), the softmax taken after subtracting the row's maximum."""
    e = np.exp(u - u.max(axis=-1, keepdims=True))
    s = e / e.sum(axis=-1, keepdims=True)
    return np.cumsum(s, axis=-1), s


def _cumax_back(dy, s):
    """Backward of _cumax. y_k = sum_{j <= k} s_j, so dL/ds_j = sum_{k >= j} dy_k; the
    softmax's Jacobian ds_j/du_m = s_j (1[j = m] - s_m) then gives
    dL/du_m = s_m (dL/ds_m - sum_j dL/ds_j s_j)."""
    ds = np.flip(np.cumsum(np.flip(dy, -1), axis=-1), -1)
    return s * (ds - (ds * s).sum(axis=-1, keepdims=True))


class ONLSTM(_Cell):
    """ON-LSTM (Shen et al. 2019) with unchunked master gates:
    f, i, o = sigmoid(.), g = tanh(.), mf = cumax(.), mi = 1 - cumax(.),
    w = mf * mi, fh = f * w + (mf - w), ih = i * w + (mi - w),
    c_t = fh * c + ih * g, h_t = o * tanh(c_t)."""

    name = "on_lstm"
    GATES = ("f", "i", "o", "g", "mf", "mi")
    PARAMS: ClassVar[Shapes] = _xh_params(GATES)
    STATES = ("h", "c")
    OUTPUT = "h"

    def step(self, x, state, p):
        h, c = state
        a = _lin_gates(p, x, h, self.GATES)
        f, i, o = sigmoid(a["f"]), sigmoid(a["i"]), sigmoid(a["o"])
        g = np.tanh(a["g"])
        mf, s_f = _cumax(a["mf"])
        cm, s_i = _cumax(a["mi"])
        mi = 1.0 - cm
        w = mf * mi
        fh = f * w + (mf - w)
        ih = i * w + (mi - w)
        c_t = fh * c + ih * g
        tc = np.tanh(c_t)
        h_t = o * tc
        return (h_t, c_t), (x, h, c, f, i, o, g, mf, mi, s_f, s_i, w, fh, ih, tc)

    def step_back(self, dstate, cache, p, grads):
        dh_t, dc_t = dstate
        x, h, c, f, i, o, g, mf, mi, s_f, s_i, w, fh, ih, tc = cache
        dc = dc_t + dh_t * o * (1.0 - tc**2)
        dfh, dih = dc * c, dc * g
        # w enters fh as f * w - w and ih as i * w - w
        dw = dfh * (f - 1.0) + dih * (i - 1.0)
        dmf = dfh + dw * mi  # fh reads mf directly, w = mf * mi
        dmi = dih + dw * mf
        da = {
            "f": dfh * w * f * (1.0 - f),
            "i": dih * w * i * (1.0 - i),
            "o": dh_t * tc * o * (1.0 - o),
            "g": dc * ih * (1.0 - g**2),
            "mf": _cumax_back(dmf, s_f),
            "mi": _cumax_back(-dmi, s_i),  # mi = 1 - cumax
        }
        dx, dh = _lin_gates_back(p, grads, x, h, da)
        return dx, (dh, dc * fh)


class MLSTM(_Cell):
    """Multiplicative LSTM (Krause et al. 2016), with a bias on every gate and on ĥ.

    m = (W_mx x) ⊙ (W_mh h)
    u = W_ux x + W_um m + b_u          (the paper's ĥ)
    i, f, o = σ(W_kx x + W_km m + b_k)
    c_t = f⊙c + i⊙u
    h_t = tanh(c_t ⊙ o)
    """

    name = "mlstm"
    PARAMS: ClassVar[Shapes] = {
        "W_mx": ("hidden", "input"), "W_mh": ("hidden", "hidden"),
        **{name: shape for k in "uifo" for name, shape in (
            (f"W_{k}x", ("hidden", "input")), (f"W_{k}m", ("hidden", "hidden")),
            (f"b_{k}", ("hidden",)))},
    }
    STATES = ("h", "c")
    OUTPUT = "h"

    def step(self, x, state, p):
        h, c = state
        mx, mh = _lin(p, "W_mx", x), _lin(p, "W_mh", h)
        m = mx * mh
        pre = {k: _lin(p, f"W_{k}x", x) + _lin(p, f"W_{k}m", m) + p[f"b_{k}"] for k in "uifo"}
        u = pre["u"]
        i, f, o = (sigmoid(pre[k]) for k in "ifo")
        c_t = f * c + i * u
        h_t = np.tanh(c_t * o)
        return (h_t, c_t), (x, h, c, mx, mh, m, u, i, f, o, c_t, h_t)

    def step_back(self, dstate, cache, p, grads):
        dh_t, dc_t = dstate
        x, h, c, mx, mh, m, u, i, f, o, c_t, h_t = cache
        da = dh_t * (1.0 - h_t**2)  # through h_t = tanh(a), a = c_t ⊙ o
        dc_tot = dc_t + da * o
        dpre = {
            "u": dc_tot * i,
            "i": dc_tot * u * i * (1.0 - i),
            "f": dc_tot * c * f * (1.0 - f),
            "o": da * c_t * o * (1.0 - o),
        }
        dx = np.zeros_like(x)
        dm = np.zeros_like(m)
        for k, d in dpre.items():
            grads[f"b_{k}"] += d.sum(0)
            dx += _lin_back(p, grads, f"W_{k}x", x, d)
            dm += _lin_back(p, grads, f"W_{k}m", m, d)
        dx += _lin_back(p, grads, "W_mx", x, dm * mh)
        dh = _lin_back(p, grads, "W_mh", h, dm * mx)
        return dx, (dh, dc_tot * f)


class GRUCond(_Cell):
    """Conditioned GRU: the decoder of Cho et al. 2014 (appendix A.1.2), with biases, reading
    the context c_t at every step (x is [x_t, c_t] side by side).

    r = σ(W_rx x + W_rh h + W_rc c + b_r)
    z = σ(W_zx x + W_zh h + W_zc c + b_z)
    n = tanh(W_nx x + b_n + r⊙(W_nh h + W_nc c))
    h_t = z⊙h + (1−z)⊙n
    """

    name = "gru_cond"
    PARAMS: ClassVar[Shapes] = {
        **{f"{k}": v for g in "rz" for k, v in (
            (f"W_{g}x", ("hidden", "input")), (f"W_{g}h", ("hidden", "hidden")),
            (f"W_{g}c", ("hidden", "context")), (f"b_{g}", ("hidden",)))},
        "W_nx": ("hidden", "input"),
        "b_n": ("hidden",),
        "W_nh": ("hidden", "hidden"),
        "W_nc": ("hidden", "context"),
    }
    STATES = ("h",)
    OUTPUT = "h"
    EXTRA_INPUTS: ClassVar[dict[str, str]] = {"c": "context"}

    def step(self, xc, state, p):
        (h,) = state
        n_in = p["W_rx"].shape[1]
        x, c = xc[:, :n_in], xc[:, n_in:]
        r = sigmoid(_lin(p, "W_rx", x) + _lin(p, "W_rh", h) + _lin(p, "W_rc", c) + p["b_r"])
        z = sigmoid(_lin(p, "W_zx", x) + _lin(p, "W_zh", h) + _lin(p, "W_zc", c) + p["b_z"])
        m = _lin(p, "W_nh", h) + _lin(p, "W_nc", c)
        n = np.tanh(_lin(p, "W_nx", x) + p["b_n"] + r * m)
        h_t = z * h + (1.0 - z) * n
        return (h_t,), (x, c, h, r, z, m, n)

    def step_back(self, dstate, cache, p, g):
        (dh_t,) = dstate
        x, c, h, r, z, m, n = cache
        dh = dh_t * z
        da_z = dh_t * (h - n) * z * (1.0 - z)
        da_n = dh_t * (1.0 - z) * (1.0 - n**2)
        g["b_n"] += da_n.sum(0)
        dx = _lin_back(p, g, "W_nx", x, da_n)
        dm = da_n * r
        dh += _lin_back(p, g, "W_nh", h, dm)
        dc = _lin_back(p, g, "W_nc", c, dm)
        da_r = da_n * m * r * (1.0 - r)
        for k, d in (("r", da_r), ("z", da_z)):
            g[f"b_{k}"] += d.sum(0)
            dx += _lin_back(p, g, f"W_{k}x", x, d)
            dh += _lin_back(p, g, f"W_{k}h", h, d)
            dc += _lin_back(p, g, f"W_{k}c", c, d)
        return np.concatenate([dx, dc], axis=-1), (dh,)


class LSTMZoneout(_Cell):
    """LSTM with zoneout on c and h (Krueger et al. 2017), Haste's masks (1 keeps the new
    value); x is [x_t, d^c_t, d^h_t] side by side.

    i, f, g, o as in the LSTM; c~ = f⊙c + i⊙g
    c_t = d^c⊙c~ + (1−d^c)⊙c
    h_t = d^h⊙(o⊙tanh(c~)) + (1−d^h)⊙h        (tanh of the candidate, not of c_t)
    """

    name = "lstm_zoneout"
    PARAMS: ClassVar[Shapes] = _lstm_params(peephole=False)
    STATES = ("h", "c")
    OUTPUT = "h"
    MASKS: ClassVar[dict[str, str]] = {"mask_c": "hidden", "mask_h": "hidden"}

    def step(self, xm, state, p):
        h, c = state
        n_in, n = p["W_ix"].shape[1], p["W_ix"].shape[0]
        x, dc, dh = xm[:, :n_in], xm[:, n_in:n_in + n], xm[:, n_in + n:]
        pre = _lin_gates(p, x, h, "ifgo")
        i, f, o = sigmoid(pre["i"]), sigmoid(pre["f"]), sigmoid(pre["o"])
        g = np.tanh(pre["g"])
        cand = f * c + i * g
        tc = np.tanh(cand)
        c_t = dc * cand + (1.0 - dc) * c
        h_t = dh * (o * tc) + (1.0 - dh) * h
        return (h_t, c_t), (x, h, c, i, f, g, o, cand, tc, dc, dh)

    def step_back(self, dstate, cache, p, grads):
        dh_t, dc_t = dstate
        x, h, c, i, f, g, o, cand, tc, dc, dh = cache
        d_mask_h = dh_t * (o * tc - h)
        d_mask_c = dc_t * (cand - c)
        d_new_h = dh_t * dh  # reaches o ⊙ tanh(c~)
        d_cand = dc_t * dc + d_new_h * o * (1.0 - tc**2)
        da = {
            "i": d_cand * g * i * (1.0 - i),
            "f": d_cand * c * f * (1.0 - f),
            "g": d_cand * i * (1.0 - g**2),
            "o": d_new_h * tc * o * (1.0 - o),
        }
        dx, dh_prev = _lin_gates_back(p, grads, x, h, da)
        dh_prev += dh_t * (1.0 - dh)
        dc_prev = dc_t * (1.0 - dc) + d_cand * f
        return np.concatenate([dx, d_mask_c, d_mask_h], axis=-1), (dh_prev, dc_prev)


class DeltaRNN(_Cell):
    """Delta-RNN (Ororbia, Mikolov & Reitter 2017), written with the paper's names.

    d1 = α⊙(V h)⊙(W x),  d2 = β1⊙(V h) + β2⊙(W x)
    z = tanh(d1 + d2 + b),  r = σ(W x + b_r)
    h_t = (1−r)⊙z + r⊙h          (outer activation: the identity)
    gatespec's names: W = W_ux, V = W_vh, α = b_d1, β1 = b_dv, β2 = b_du, b = b_z, b_r = b_r.
    """

    name = "delta_rnn"
    PARAMS: ClassVar[Shapes] = {
        "W_ux": ("hidden", "input"), "W_vh": ("hidden", "hidden"), "b_d1": ("hidden",),
        "b_dv": ("hidden",), "b_du": ("hidden",), "b_z": ("hidden",), "b_r": ("hidden",),
    }
    STATES = ("h",)
    OUTPUT = "h"

    def step(self, x, state, p):
        (h,) = state
        wx = _lin(p, "W_ux", x)
        vh = _lin(p, "W_vh", h)
        alpha, beta1, beta2 = p["b_d1"], p["b_dv"], p["b_du"]
        z = np.tanh(alpha * vh * wx + beta1 * vh + beta2 * wx + p["b_z"])
        r = sigmoid(wx + p["b_r"])
        return ((1.0 - r) * z + r * h,), (x, h, wx, vh, z, r)

    def step_back(self, dstate, cache, p, g):
        (dh_t,) = dstate
        x, h, wx, vh, z, r = cache
        alpha, beta1, beta2 = p["b_d1"], p["b_dv"], p["b_du"]
        dh = dh_t * r
        dr = dh_t * (h - z)
        da_z = dh_t * (1.0 - r) * (1.0 - z**2)  # through tanh
        da_r = dr * r * (1.0 - r)  # through the sigmoid
        g["b_z"] += da_z.sum(0)
        g["b_r"] += da_r.sum(0)
        g["b_d1"] += (da_z * vh * wx).sum(0)
        g["b_dv"] += (da_z * vh).sum(0)
        g["b_du"] += (da_z * wx).sum(0)
        d_wx = da_z * (alpha * vh + beta2) + da_r  # W x feeds z twice and the gate
        d_vh = da_z * (alpha * wx + beta1)
        dx = _lin_back(p, g, "W_ux", x, d_wx)
        dh += _lin_back(p, g, "W_vh", h, d_vh)
        return dx, (dh,)


CELLS = {
    "lstm": LSTM(),
    "gru": GRU(),
    "srnn": SRNN(),
    "gru_reset_after": GRUResetAfter(),
    "lstm_peephole": LSTMPeephole(),
    "lstm_no_output_tanh": LSTMNoOutputTanh(),
    "lstm_proj": LSTMProj(),
    "lstm_cifg": LSTMCIFG(),
    "mgu": MGU(),
    "janet": JANET(),
    "indrnn": IndRNN(),
    "ugrnn": UGRNN(),
    "mingru": MinGRU(),
    "minlstm": MinLSTM(),
    "qrnn": QRNN(),
    "sru": SRU(),
    "slstm": SLSTM(),
    "lstm_layernorm": LSTMLayerNorm(),
    "on_lstm": ONLSTM(),
    "mlstm": MLSTM(),
    "antisymmetric_rnn": AntisymmetricRNN(),
    "gru_cond": GRUCond(),
    "lstm_zoneout": LSTMZoneout(),
    "delta_rnn": DeltaRNN(),
}


def problem_sizes(N, H):
    """Size numbers of a test problem: input N, hidden H, proj H - 1 (differs from H) and
    context N + 1 (differs from both)."""
    return {"input": N, "hidden": H, "proj": max(H - 1, 1), "context": N + 1}


def dims(cell, N, H):
    """(input width, state widths, output width) of ``cell`` in a test problem."""
    if isinstance(cell, str):
        cell = CELLS[cell]
    sizes = problem_sizes(N, H)
    states = tuple(sizes[s] for s in cell.state_sizes())
    out = states[cell.STATES.index(cell.OUTPUT)] if cell.OUTPUT in cell.STATES else H
    width = sizes[cell.INPUT_SIZE] + sum(sizes[s] for s in (*cell.EXTRA_INPUTS.values(),
                                                            *cell.MASKS.values()))
    return width, states, out


def init_params(cell, N, H, rng, dtype=np.float64):
    """Random parameters in uniform(-0.5, 0.5); ``cell`` is a name or a cell."""
    if isinstance(cell, str):
        cell = CELLS[cell]
    sizes = problem_sizes(N, H)
    return {
        name: rng.uniform(-0.5, 0.5, size=tuple(sizes[s] for s in shape)).astype(dtype)
        for name, shape in cell.PARAMS.items()
    }

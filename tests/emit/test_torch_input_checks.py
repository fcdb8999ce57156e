"""The generated torch module refuses what torch.nn's recurrent layers refuse: each bad input
below makes torch.nn.LSTM (or GRU) raise, and ours raise a ValueError or TypeError naming the
argument, before any work. Valid inputs of every layout still give torch.nn's results."""

import re

import pytest
from conftest import require_torch
from helpers import module_class, torch_module

from gatespec.build import build
from gatespec.check import load_module
from gatespec.derive import derive
from gatespec.emit import emit_torch
from gatespec.parse import parse
from gatespec.schedule import schedule

torch = require_torch()
N, H, T, B = 4, 5, 6, 3


def _z(*shape, **kwargs):
    return torch.zeros(*shape, **kwargs)


def _pair(*shape, **kwargs):
    return _z(*shape, **kwargs), _z(*shape, **kwargs)


X = (T, B, N)
# name: (input shape or tensor maker, state, what our message must contain)
LSTM_BAD = {
    "state (B, H)": (X, _pair(B, H), "Expected state[0] (h_0) size (1, 3, 5), got [3, 5]"),
    "state (1, 1, H)": (X, _pair(1, 1, H), "Expected state[0] (h_0) size (1, 3, 5), got [1, 1, 5]"),
    "state (2, B, H) for one layer": (X, _pair(2, B, H), "Expected state[0] (h_0) size (1, 3, 5)"),
    "cell state (1, B, 1)": (X, (_z(1, B, H), _z(1, B, 1)),
                             "Expected state[1] (c_0) size (1, 3, 5), got [1, 3, 1]"),
    "float64 state, float32 input": (X, _pair(1, B, H, dtype=torch.float64),
                                     "state[0] (h_0) must have the dtype and device of input"),
    "state on another device": (X, _pair(1, B, H, device="meta"),
                                "state[0] (h_0) must have the dtype and device of input"),
    "bare tensor for two states": (X, _z(1, B, H), "state must be the tuple (h_0, c_0)"),
    "three states": (X, (_z(1, B, H),) * 3, "state must be the tuple (h_0, c_0)"),
    "unbatched input, batched state": ((T, N), _pair(1, B, H),
                                       "Expected state[0] (h_0) size (1, 5), got [1, 3, 5]"),
    "unbatched input, state (H,)": ((T, N), _pair(H), "Expected state[0] (h_0) size (1, 5), got [5]"),
    "float64 input": (lambda: torch.zeros(X, dtype=torch.float64), None,
                      "input dtype (torch.float64) does not match weight dtype (torch.float32)"),
    "integer input": (lambda: torch.zeros(X, dtype=torch.int64), None, "input dtype (torch.int64)"),
    "input on another device": (lambda: torch.zeros(X, device="meta"), None,
                                "input is on meta, the weights on cpu"),
    "4-D input": ((1, T, B, N), None, "Expected input to be 2D or 3D, got 4D instead"),
    "1-D input": ((N,), None, "Expected input to be 2D or 3D, got 1D instead"),
    "wrong feature size": ((T, B, N + 1), None, "input.size(-1) must be equal to input_size. "
                                                "Expected 4, got 5"),
    "empty sequence": ((0, B, N), None, "Expected sequence length to be larger than 0"),
    "empty unbatched sequence": ((0, N), None, "Expected sequence length to be larger than 0"),
    "input a list": (lambda: [[0.0] * N], None, "input must be a tensor, got list"),
}

GRU_BAD = {
    "state (B, H)": (X, _z(B, H), "Expected state (h_0) size (1, 3, 5), got [3, 5]"),
    "state (1, 1, H)": (X, _z(1, 1, H), "Expected state (h_0) size (1, 3, 5), got [1, 1, 5]"),
    "state (2, B, H) for one layer": (X, _z(2, B, H), "Expected state (h_0) size (1, 3, 5)"),
    "float64 state": (X, _z(1, B, H, dtype=torch.float64),
                      "state (h_0) must have the dtype and device of input"),
    "a number for the state": (X, 5, "state must be h_0, a (num_layers * num_directions, B, size) "
                                     "tensor, or None; got int"),
}


CASES = [*(("LSTM", "lstm", LSTM_BAD[k]) for k in LSTM_BAD),
         *(("GRU", "gru_reset_after", GRU_BAD[k]) for k in GRU_BAD)]


@pytest.mark.parametrize("layer,name,case", CASES,
                         ids=[*(f"LSTM-{k}" for k in LSTM_BAD), *(f"GRU-{k}" for k in GRU_BAD)])
def test_refuses_what_torch_nn_refuses(layer, name, case):
    make, state, message = case
    torch.manual_seed(0)
    ref = getattr(torch.nn, layer)(N, H)
    ours = module_class(torch_module(name)).from_torch(ref)
    x = make() if callable(make) else torch.randn(make)
    with pytest.raises(Exception):  # noqa: B017 - torch.nn raises several types
        ref(x, state)
    with pytest.raises((ValueError, TypeError), match=re.escape(message)):
        ours(x, state)


@pytest.mark.parametrize("layout", [
    dict(unbatched=True), dict(unbatched=True, num_layers=2, bidirectional=True),
    dict(batch_first=True, bidirectional=True, num_layers=2), dict(num_layers=3),
    dict(empty_batch=True), dict(state_list=True),
])
def test_valid_layouts_match_torch_nn(layout):
    layout = dict(layout)
    unbatched, empty, as_list = (layout.pop(k, False) for k in ("unbatched", "empty_batch",
                                                                 "state_list"))
    torch.manual_seed(1)
    ref = torch.nn.LSTM(N, H, dtype=torch.float64, **layout)
    ours = module_class(torch_module("lstm")).from_torch(ref)
    batch = 0 if empty else B
    shape = (T, N) if unbatched else (batch, T, N) if ref.batch_first else (T, batch, N)
    x = torch.randn(shape, dtype=torch.float64)
    lead = (ref.num_layers * (2 if ref.bidirectional else 1),) + (() if unbatched else (batch,))
    state = [torch.randn(*lead, H, dtype=torch.float64) for _ in range(2)]
    state = state if as_list else tuple(state)
    out1, (h1, c1) = ref(x, state)
    out2, (h2, c2) = ours(x, state)
    for a, b in ((out2, out1), (h2, h1), (c2, c1)):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


COPY_INPUT = "cell copyin \"test\"\ninput x\nstate h, q[input]\nq' = x\nh' = tanh(linear(x, q, h))\n"


def test_state_of_input_size_refuses_stacked_layers():
    """Regression: num_layers=2 built, then failed in a matmul: layer 1's q would have the size
    of layer 0's output, but the layers' states are stacked in one tensor of one size."""
    plan = schedule(derive(build(parse(COPY_INPUT, "copyin.gate"))))
    cls = module_class(load_module(emit_torch(plan, "copyin.gate"), "copyin_torch"))
    with pytest.raises(ValueError, match="the state q has size 'input', which layer 1 would need "
                                         "at 10 and layer 0 at 3"):
        cls(3, 5, num_layers=2, bidirectional=True)
    for kwargs in (dict(input_size=3, bidirectional=True), dict(input_size=5, num_layers=2)):
        layer = cls(hidden_size=5, dtype=torch.float64, **kwargs)  # what still works
        out, (h, q) = layer(torch.randn(4, 2, kwargs["input_size"], dtype=torch.float64))
        assert q.shape == (layer.num_layers * (2 if layer.bidirectional else 1), 2,
                           kwargs["input_size"])

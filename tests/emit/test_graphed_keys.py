"""The CUDA-graphs wrapper (_Graphed) with variable lengths: a captured graph bakes in each
step's row count, so batch_sizes must be part of its key. Capturing needs a GPU
(bench/gpu_check.py runs it); the keys and the calls it makes are checked here on the CPU."""

from conftest import require_torch
from helpers import torch_module


class Recorder:
    """A backend that records the keywords it was called with."""

    def __init__(self):
        self.calls = []

    def forward(self, *args, **kw):
        self.calls.append(("forward", len(args), kw))
        return "out"

    def backward(self, *args, **kw):
        self.calls.append(("backward", len(args), kw))
        return "grads"


def graphed(backend):
    mod = torch_module("lstm")
    wrapper = mod._Graphed(backend)
    keys = []

    def run(key, fn, *args):  # in place of capture and replay: the key, then a plain call
        keys.append(key)
        return fn(*args)

    wrapper._run = run
    return wrapper, keys


def test_batch_sizes_are_part_of_the_key_and_reach_the_backend():
    torch = require_torch()
    backend = Recorder()
    wrapper, keys = graphed(backend)
    x, state0, params = torch.zeros(3, 2, 4), (torch.zeros(2, 5),), {"w": torch.zeros(1)}
    for sizes in (None, [2, 2, 1], [2, 1, 1]):
        bs = None if sizes is None else torch.tensor(sizes)
        assert wrapper.forward(x, state0, params, True, batch_sizes=bs) == "out"
        assert wrapper.backward(x, state0, {}, params, batch_sizes=bs) == "grads"
    forward_keys, backward_keys = keys[0::2], keys[1::2]
    assert len(set(forward_keys)) == 3 and len(set(backward_keys)) == 3
    # ("forward", shape, dtype, keep_cache, steps, weights), ("backward", shape, dtype, steps, ...)
    assert [k[4] for k in forward_keys] == [None, (2, 2, 1), (2, 1, 1)]
    assert [k[3] for k in backward_keys] == [None, (2, 2, 1), (2, 1, 1)]
    # full lengths pass no keyword at all (a backend without batch_sizes still runs them)
    assert backend.calls[0] == ("forward", 4, {}) and backend.calls[1] == ("backward", 4, {})
    assert [c[2]["batch_sizes"].tolist() for c in backend.calls[2:]] == [[2, 2, 1]] * 2 + [
        [2, 1, 1]] * 2

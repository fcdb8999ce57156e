"""Run in a subprocess with TRITON_INTERPRET=1 (set before triton is imported): every
given cell's Triton kernels, forward and backward, against the torch-ops path on CPU."""

import os
import sys

os.environ["TRITON_INTERPRET"] = "1"

import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from helpers import input_width, small_sizes, torch_module, triton_module  # noqa: E402


def check(name: str) -> float:
    ops, kernels = torch_module(name), triton_module(name)
    sizes = small_sizes(ops, hidden=4, input_=3, other=2)
    gen = torch.Generator().manual_seed(0)
    params = {k: 0.5 * torch.randn(tuple(sizes[s] for s in shape), generator=gen)
              for k, shape in ops.PARAMS.items()}
    x = torch.randn(3, 2, input_width(ops, sizes), generator=gen)
    state0 = [0.5 * torch.randn(2, sizes[ops.STATE_SIZES[s]], generator=gen) for s in ops.STATES]
    if "n" in ops.STATES and "m" in ops.STATES:  # sLSTM's normaliser is positive
        state0[ops.STATES.index("n")] = state0[ops.STATES.index("n")].abs() + 0.5
    out1, fin1, cache1 = ops._forward(x, tuple(state0), params, True)
    out2, fin2, cache2 = kernels.forward(x, tuple(state0), params, True)
    d_out = torch.randn(out1.shape, generator=gen)
    d_fin = tuple(torch.randn(s.shape, generator=gen) for s in fin1)
    g1 = ops._backward(d_out, d_fin, cache1, params)
    g2 = kernels.backward(d_out, d_fin, cache2, params)
    pairs = [(out1, out2), *zip(fin1, fin2, strict=True), (g1[0], g2[0]),
             *zip(g1[1], g2[1], strict=True), *((g1[2][k], g2[2][k]) for k in g1[2])]
    return max(((a - b).abs().max() / b.abs().max().clamp_min(1.0)).item() for a, b in pairs)


if __name__ == "__main__":
    for cell in sys.argv[1:]:
        print(cell, f"{check(cell):.3e}", flush=True)

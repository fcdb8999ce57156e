"""Run under TRITON_INTERPRET=1 (see test_triton.py): the Triton scan path of each named
cell against the step-by-step loop of its torch module (torch ops), float64, forward and
backward; prints `name worst-error scan-kernel-calls`."""

import sys

import torch
from helpers import torch_module, triton_module


def check(name: str) -> tuple[float, int]:
    module = triton_module(name)
    calls = []
    kernel = module._scan_kernel
    module._scan_kernel = type("Counted", (), {"__getitem__": lambda self, grid: (
        calls.append(grid), kernel[grid])[1]})()
    torch.manual_seed(0)
    H, N, B = 5, 4, 3
    params = {k: torch.randn(*[H if s == "hidden" else N for s in shape], dtype=torch.float64)
              for k, shape in torch_module(name).PARAMS.items()}
    worst = 0.0
    for T in (3, 70):  # a part of a chunk of 64 steps; one and a part
        x = torch.randn(T, B, N, dtype=torch.float64)
        state0 = (torch.randn(B, H, dtype=torch.float64),)
        results = []
        for run in (torch_module(name), module):
            out, final, cache = run._forward(x, state0, params, True) if run is not module else \
                module.forward(x, state0, params, True, scan=True)
            torch.manual_seed(T)
            d = (torch.randn_like(out), (torch.randn(B, H, dtype=torch.float64),))
            grads = (run._backward(*d, cache, params) if run is not module
                     else module.backward(*d, cache, params, scan=True))
            results.append([out, *final, grads[0], *grads[1], *(grads[2][k] for k in params)])
        for a, b in zip(*results, strict=True):
            worst = max(worst, (a - b).abs().max().item())
    module._scan_kernel = kernel
    return worst, len(calls)


if __name__ == "__main__":
    for name in sys.argv[1:]:
        err, calls = check(name)
        print(name, err, calls)

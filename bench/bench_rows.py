"""What the row reductions cost: the generated on_lstm (two cumax master gates) against the
generated lstm at the same sizes, on the CPU in float32, torch's default thread count.

For each cell this times (median wall time of several repeats after a warm-up) one training
step, forward and torch.autograd.grad of a fixed random projection of the output with
respect to the input and every parameter, with the derived fused backward (impl="torch") and
with autograd through the step-by-step reference (impl="autograd"). The four runs go
round-robin within each repeat, so drift in machine load hits them alike; the machine may be
shared and noisy, so read the ratios, not the absolute times.

Run:  python bench/bench_rows.py [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import gatespec


def layer_for(name: str, sizes: dict):
    mod = gatespec.compile(name, target="torch")
    cls = next(v for k, v in vars(mod).items()
               if isinstance(v, type) and issubclass(v, torch.nn.Module) and not k.startswith("_"))
    torch.manual_seed(0)
    return cls(sizes["N"], sizes["H"])


def step(layer, x, g, impl: str) -> float:
    layer.impl = impl
    start = time.perf_counter()
    out, _ = layer(x)
    torch.autograd.grad((out * g).sum(), [x, *layer.parameters()])
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="T=10 and fewer repeats")
    args = parser.parse_args()
    sizes = {"T": 10 if args.quick else 50, "B": 16, "N": 64, "H": 128}
    repeats = 3 if args.quick else 15
    x = torch.randn(sizes["T"], sizes["B"], sizes["N"], requires_grad=True)
    g = torch.randn(sizes["T"], sizes["B"], sizes["H"])
    runs = {(c, i): layer_for(c, sizes) for c in ("lstm", "on_lstm") for i in ("torch", "autograd")}
    times = {k: [] for k in runs}
    for _ in range(2):  # warm-up
        for (c, impl), layer in runs.items():
            step(layer, x, g, impl)
    for _ in range(repeats):
        for (c, impl), layer in runs.items():
            times[(c, impl)].append(step(layer, x, g, impl))
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"sizes {sizes}, float32, {torch.get_num_threads()} threads, median of {repeats}")
    for (c, impl), t in med.items():
        print(f"  {c:8s} impl={impl:9s} {1e3 * t:8.2f} ms")
    for impl in ("torch", "autograd"):
        print(f"on_lstm / lstm, impl={impl}: {med[('on_lstm', impl)] / med[('lstm', impl)]:.2f}")
    for c in ("lstm", "on_lstm"):
        print(f"{c}: autograd / derived: {med[(c, 'autograd')] / med[(c, 'torch')]:.2f}")


if __name__ == "__main__":
    main()

"""Benchmark the scan path of cells whose states are linear recurrences (issue 14).

For mingru, minlstm and qrnn (one layer, B=8, H=256, input 256, float32, CPU, torch's default
threads), at T in {256, 4096, 16384}, this times forward (under torch.no_grad()) and
forward+backward (torch.autograd.grad of a fixed random projection of the output, for the
input and every parameter) of three implementations of the same generated module, with the
same weights:

* ``scan``: impl="scan", the time loop as chunked scans, forward and backward;
* ``loop``: impl="torch", the step-by-step generated loop with the derived backward;
* ``eager``: impl="autograd", the cell step by step as written, under autograd (only up to
  --eager-max steps: its graph of T steps is slow to build and to walk);
* ``floor``: the matrix products with the input alone that every path does (forward: x times
  the stacked input weights; forward+backward: also the input's and the weights' gradients),
  and nothing else: what the scan cannot go below.

Each pair is checked once (outputs and input gradient close). Implementations run round-robin
within each repeat; the table gives medians and the ratios loop/scan and eager/scan.

Run:  python bench/bench_scan.py [--quick] [--cells mingru qrnn] [--lengths 256 4096]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gatespec.check import load_module  # noqa: E402
from gatespec.pipeline import generate  # noqa: E402

B, H = 8, 256
IMPLS = ("scan", "loop", "eager")
IMPL_ARG = {"scan": "scan", "loop": "torch", "eager": "autograd"}


def layer_class(cell: str):
    ((name, text),) = generate(cell, "torch").items()
    module = load_module(text, name[:-3])
    return next(v for k, v in vars(module).items() if isinstance(v, type)
                and issubclass(v, torch.nn.Module) and not k.startswith("_"))


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run_case(cls, T: int, repeats: int, eager: bool) -> dict[tuple[str, str], float]:
    torch.manual_seed(0)
    layers = {}
    impls = IMPLS if eager else IMPLS[:2]
    for impl in impls:
        torch.manual_seed(0)
        layers[impl] = cls(H, H, impl=IMPL_ARG[impl])
    x = torch.randn(T, B, H, requires_grad=True)
    proj = torch.randn(T, B, H)

    def forward(layer):
        with torch.no_grad():
            return layer(x)[0]

    def train(layer):
        out, _ = layer(x)
        return torch.autograd.grad((out * proj).sum(), [x, *layer.parameters()])

    rows = sum(shape[0] == "hidden" and shape[1:] == ("input",) for shape in
               (tuple(v) for v in _params_of(cls).values()))
    weights = torch.randn(rows * H, H)

    def floor_forward():
        return x.detach() @ weights.T

    def floor_train():
        product = x.detach() @ weights.T
        return product @ weights, product.reshape(-1, rows * H).T @ x.detach().reshape(-1, H)

    ref = {impl: (forward(layers[impl]), train(layers[impl])[0]) for impl in impls}
    for impl in impls[1:]:
        for a, b in zip(ref[impl], ref["scan"], strict=True):
            scale = b.abs().max().item()
            assert (a - b).abs().max().item() <= 1e-3 * scale, (impl, T)
    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(repeats):
        for impl in impls:
            for kind, fn in (("forward", forward), ("fwd+bwd", train)):
                times.setdefault((impl, kind), []).append(timed(lambda: fn(layers[impl])))
        times.setdefault(("floor", "forward"), []).append(timed(floor_forward))
        times.setdefault(("floor", "fwd+bwd"), []).append(timed(floor_train))
    return {key: statistics.median(v) for key, v in times.items()}


def _params_of(cls):
    return cls.forward.__globals__["PARAMS"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--cells", nargs="+", default=["mingru", "minlstm", "qrnn"])
    parser.add_argument("--lengths", nargs="+", type=int, default=[256, 4096, 16384])
    parser.add_argument("--eager-max", type=int, default=4096,
                        help="the longest T the eager loop is timed at")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, B={B} H={H} float32; "
          "median ms; ratios = other / scan; floor = the input products alone")
    print(f"{'cell':8} {'T':>6} {'pass':8} {'scan':>9} {'loop':>9} {'eager':>9} {'floor':>9} "
          f"{'loop/scan':>10} {'eager/scan':>11} {'scan/floor':>11}")
    for cell in args.cells:
        cls = layer_class(cell)
        for T in args.lengths:
            repeats = 3 if args.quick or T > 4096 else 7
            eager = T <= args.eager_max
            med = run_case(cls, T, repeats, eager)
            for kind in ("forward", "fwd+bwd"):
                ms = {impl: 1e3 * med.get((impl, kind), float("nan"))
                      for impl in (*IMPLS, "floor")}
                print(f"{cell:8} {T:>6} {kind:8} {ms['scan']:9.2f} {ms['loop']:9.2f} "
                      f"{ms['eager']:9.2f} {ms['floor']:9.2f} {ms['loop'] / ms['scan']:10.1f} "
                      f"{ms['eager'] / ms['scan']:11.1f} {ms['scan'] / ms['floor']:11.2f}",
                      flush=True)


if __name__ == "__main__":
    main()

"""Benchmark variable-length batches: does the generated module's cost follow the real steps?

On the CPU, in float32, on one thread, this times (median CPU time of the process over
several repeats after warm-up: on a shared, loaded machine the wall time mostly measures the
other jobs; the implementations run round-robin within each repeat so that drift hits them
alike) forward (under torch.no_grad()) and forward+backward (torch.autograd.grad of a fixed
random projection of the output, with respect to the input and every parameter) of

* the generated module on a PackedSequence whose B lengths are drawn uniformly from
  [T/2, T] (unsorted, enforce_sorted=False): "packed";
* the same module on the same batch at full length, every sequence T steps: "full";
* torch.nn (LSTM for the generated lstm, GRU for gru_torch), same weights, on the same
  PackedSequence: "torch.nn packed" (and, for scale, on the full-length batch);

and prints, per cell and pass, the medians and the two ratios packed / full (the real
steps are sum(lengths) / (T * B) of the padded ones, printed above) and
packed / torch.nn packed, and torch.nn's own packed / full for comparison. Each pair is checked once (outputs and final states allclose).

Two sizes: B=32 and B=256 (T=100, input 128, hidden 256). What can shrink is the recurrent
work: the input-only GEMM (before the loop) and the weight-gradient GEMMs (after it) run
over all T * B rows at once, padded or not, as the module's schedule does for every batch;
they are about a third of the forward's matrix products and two thirds of the backward's.
At B=32 on the CPU a step's cost hardly depends on its number of rows (per-operation
overhead, GEMM efficiency at few rows), so the ratio there shows the overhead of packing.

Run:  python bench/bench_varlen.py [--quick] [--threads N]  (default: 1 thread)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gatespec.check import load_module  # noqa: E402
from gatespec.pipeline import generate  # noqa: E402

CELLS = {"lstm": nn.LSTM, "gru_torch": nn.GRU}
DTYPE = torch.float32


def generated_class(cell: str) -> type[nn.Module]:
    ((filename, text),) = generate(cell, "torch").items()
    module = load_module(text, filename[:-3])
    return next(v for k, v in vars(module).items() if isinstance(v, type)
                and issubclass(v, nn.Module) and not k.startswith("_")
                and v.__module__ == module.__name__)


def median_times(fns, repeats, warmups=2):
    for _ in range(warmups):
        for fn in fns.values():
            fn()
    samples = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.process_time()
            fn()
            samples[name].append(time.process_time() - start)
    return {name: statistics.median(s) for name, s in samples.items()}


def bench_case(T, B, N, H, repeats):
    """Print one table: every cell, forward and forward+backward, at these sizes."""
    gen = torch.Generator().manual_seed(0)
    lengths = torch.randint(T // 2, T + 1, (B,), generator=gen)
    x = torch.randn(T, B, N, generator=gen, dtype=DTYPE)
    packed = nn.utils.rnn.pack_padded_sequence(x, lengths, enforce_sorted=False)
    real = lengths.sum().item() / (T * B)
    print(f"# T={T} B={B} input={N} hidden={H}; lengths uniform in [{T // 2}, {T}]: "
          f"real steps / padded steps = {real:.3f}; medians of {repeats}")
    print(f"{'cell':10} {'pass':8} {'packed ms':>10} {'full ms':>10} {'torch.nn ms':>12} "
          f"{'packed/full':>12} {'packed/torch.nn':>16} {'torch.nn packed/full':>21}")
    for cell, torch_cls in CELLS.items():
        torch.manual_seed(1)
        ref = torch_cls(N, H, dtype=DTYPE)
        ours = generated_class(cell).from_torch(ref)
        ours.impl = "torch"
        with torch.no_grad():  # the same function, once
            a, b = ours(packed)[0].data, ref(packed)[0].data
            assert torch.allclose(a, b, atol=1e-5, rtol=1e-4), (a - b).abs().max()

        def forward(module, inp):
            def run():
                with torch.no_grad():
                    module(inp)
            return run

        def train(module, inp):
            leaf = (inp.data if isinstance(inp, nn.utils.rnn.PackedSequence) else inp)
            leaf = leaf.clone().requires_grad_()
            projection = torch.randn(leaf.shape[:-1] + (H,), generator=gen, dtype=DTYPE)

            def run():
                call = (nn.utils.rnn.PackedSequence(leaf, *inp[1:])
                        if isinstance(inp, nn.utils.rnn.PackedSequence) else leaf)
                out = module(call)[0]
                out = out.data if isinstance(out, nn.utils.rnn.PackedSequence) else out
                torch.autograd.grad((out * projection).sum(), [leaf, *module.parameters()])
            return run

        for label, make in (("forward", forward), ("fwd+bwd", train)):
            times = median_times({"packed": make(ours, packed), "full": make(ours, x),
                                  "torch.nn": make(ref, packed),
                                  "torch.nn full": make(ref, x)}, repeats)
            p, f, r = times["packed"], times["full"], times["torch.nn"]
            print(f"{cell:10} {label:8} {p * 1e3:10.2f} {f * 1e3:10.2f} {r * 1e3:12.2f} "
                  f"{p / f:12.3f} {p / r:16.3f} {r / times['torch.nn full']:21.3f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, few repeats")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"# python bench/bench_varlen.py{' --quick' if args.quick else ''}: CPU, {DTYPE}, "
          f"{torch.get_num_threads()} thread(s), torch {torch.__version__}; medians of the "
          f"process's CPU time")
    cases = [(40, 16, 32, 64, 5)] if args.quick else [(100, 32, 128, 256, 15),
                                                      (100, 256, 128, 256, 5)]
    for case in cases:
        bench_case(*case)


if __name__ == "__main__":
    main()

"""Run in a subprocess with TRITON_INTERPRET=1 (set before triton is imported): each given
cell's Triton backend on a variable-length batch (batch_sizes, as a PackedSequence has) against
the same backend run on each sequence alone at its own length, in float64.

Prints one line per cell: its name, the worst relative error over outputs, final states and
every gradient, and whether every kernel launch covered exactly its step's active rows."""

import os
import sys

os.environ["TRITON_INTERPRET"] = "1"

import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from helpers import input_width, small_sizes, torch_module, triton_module  # noqa: E402

LENGTHS = [4, 2, 2, 1]  # sorted by decreasing length, as the module's forward sorts them


def inputs(ops, gen):
    sizes = small_sizes(ops, hidden=3, input_=2, other=2)
    params = {k: 0.5 * torch.randn(tuple(sizes[s] for s in shape), generator=gen, dtype=torch.float64)
              for k, shape in ops.PARAMS.items()}
    T, B = LENGTHS[0], len(LENGTHS)
    # random everywhere, padding included: nothing may read the inactive positions
    x = torch.randn(T, B, input_width(ops, sizes), generator=gen, dtype=torch.float64)
    state0 = tuple(0.5 * torch.randn(B, sizes[ops.STATE_SIZES[s]], generator=gen,
                                     dtype=torch.float64) for s in ops.STATES)
    return params, x, state0


def check(name: str) -> tuple[float, bool]:
    ops, kernels = torch_module(name), triton_module(name)
    gen = torch.Generator().manual_seed(0)
    params, x, state0 = inputs(ops, gen)
    T, B = x.shape[:2]
    batch_sizes = torch.tensor([sum(n > t for n in LENGTHS) for t in range(T)])

    launched = []  # rows of every launch, to compare with the active rows of each step
    launch = kernels._launch

    def counting(kernel, n, rows, *rest):
        launched.append(rows)
        return launch(kernel, n, rows, *rest)

    kernels._launch = counting
    try:
        out, fin, cache = kernels.forward(x, state0, params, True, batch_sizes=batch_sizes)
        forward_rows = list(launched)
        d_out = torch.randn(out.shape, generator=gen, dtype=torch.float64)
        d_fin = tuple(torch.randn(s.shape, generator=gen, dtype=torch.float64) for s in fin)
        launched.clear()
        dx, d_state0, d_params = kernels.backward(d_out, d_fin, cache, params,
                                                  batch_sizes=batch_sizes)
        backward_rows = list(launched)
    finally:
        kernels._launch = launch
    steps = batch_sizes.tolist()
    per_step_f, per_step_b = len(forward_rows) // T, len(backward_rows) // T
    rows_ok = (forward_rows == [r for r in steps for _ in range(per_step_f)]
               and backward_rows == [r for r in reversed(steps) for _ in range(per_step_b)])

    pairs = []
    total = {k: torch.zeros_like(v) for k, v in params.items()}
    for r, n in enumerate(LENGTHS):
        s0 = tuple(s[r:r + 1] for s in state0)
        o1, f1, c1 = kernels.forward(x[:n, r:r + 1], s0, params, True)
        g1 = kernels.backward(d_out[:n, r:r + 1].clone(), tuple(d[r:r + 1] for d in d_fin), c1,
                              params)
        pairs += [(out[:n, r], o1[:, 0]), (dx[:n, r], g1[0][:, 0])]
        pairs += [(a[r], b[0]) for a, b in zip(fin, f1, strict=True)]
        pairs += [(a[r], b[0]) for a, b in zip(d_state0, g1[1], strict=True)]
        # an inactive position: zero output and zero input gradient
        pairs += [(out[n:, r], torch.zeros_like(out[n:, r])), (dx[n:, r], torch.zeros_like(dx[n:, r]))]
        for k in total:
            total[k] += g1[2][k]
    pairs += [(d_params[k], total[k]) for k in total]
    # without a cache (inference): the same outputs and final states
    out0, fin0, _ = kernels.forward(x, state0, params, False, batch_sizes=batch_sizes)
    pairs += [(out0, out), *zip(fin0, fin, strict=True)]
    worst = max(((a - b).abs().max() / b.abs().max().clamp_min(1.0)).item()
                for a, b in pairs if a.numel())
    return worst, rows_ok


def refuses_bad_sizes(name: str) -> bool:
    """Batch sizes that are not a PackedSequence's are refused in words."""
    kernels = triton_module(name)
    ops = torch_module(name)
    params, x, state0 = inputs(ops, torch.Generator().manual_seed(1))
    for bad in ([4, 2, 3, 1], [4, 4, 2], [3, 3, 2, 1], [4, 3, 2, 0]):
        try:
            kernels.forward(x, state0, params, False, batch_sizes=torch.tensor(bad))
        except ValueError as e:
            if "batch_sizes must be" not in str(e):
                return False
        else:
            return False
    return True


if __name__ == "__main__":
    for cell in sys.argv[1:]:
        worst, rows_ok = check(cell)
        print(cell, f"{worst:.3e}", "rows-ok" if rows_ok else "rows-WRONG",
              "refuses-ok" if refuses_bad_sizes(cell) else "refuses-WRONG", flush=True)

"""GPU check of the generated kernels: correctness against torch.nn (cuDNN) and the
autograd reference, variable-length batches (batch_sizes) of the kernel backends against each
sequence run alone, then timings against cuDNN. Run on a machine with a CUDA GPU:

    python bench/gpu_check.py            # about 3-4 minutes, most of it building the CUDA extensions
    python bench/gpu_check.py --quick    # smaller timing problem, fewer repeats

It imports the checked-in modules under generated/ (gatespec itself is not needed there),
builds each cell's CUDA extension once (torch.utils.cpp_extension.load_inline, cached),
and prints tables. Ratios are medians of CUDA-event timings, ours / cuDNN.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

GENERATED = Path(__file__).resolve().parent.parent / "generated"
CELLS = {  # cell -> (class, cuDNN counterpart or None)
    "lstm": ("LSTM", torch.nn.LSTM),
    "gru_reset_after": ("GRUResetAfter", torch.nn.GRU),
    "lstm_peephole": ("LSTMPeephole", None),
    "gru": ("GRU", None),
}
# (impl, CUDA graphs): the torch-ops path, the two kernel targets, and both replayed as graphs
IMPLS = (("torch", False), ("triton", False), ("cuda", False), ("triton", True), ("cuda", True))


def label(impl) -> str:
    return impl[0] + ("+graph" if impl[1] else "")


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, GENERATED / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.float() - b.float()).abs().max() / b.float().abs().max().clamp_min(1e-6)).item()


def run(model, x, state=None, grad=True):
    """Outputs and, with grad, the gradients of a fixed projection w.r.t. x and weights."""
    out, _ = model(x, state)
    if not grad:
        return out, []
    g = torch.Generator(device=x.device).manual_seed(0)
    proj = torch.randn(out.shape, generator=g, device=x.device, dtype=out.dtype)
    return out, torch.autograd.grad((out * proj).sum(), [x, *model.parameters()])


def check(modules, device) -> list[str]:
    rows = []
    T, B, N, H = 20, 8, 32, 64
    for cell, (cls_name, cudnn) in CELLS.items():
        cls = getattr(modules[cell], cls_name)
        torch.manual_seed(0)
        if cudnn is not None:
            ref = cudnn(N, H, num_layers=2, bidirectional=True, device=device)
            ours = cls.from_torch(ref)
        else:
            ref, ours = None, cls(N, H, num_layers=2, bidirectional=True, device=device)
        x = torch.randn(T, B, N, device=device, requires_grad=True)
        ours.impl = "autograd"
        out_a, grads_a = run(ours, x)
        if ref is not None:
            out_r, _ = run(ref, x, grad=False)
            rows.append(f"{cell:14s} autograd vs cuDNN        out {rel(out_a, out_r):.1e}")
        for impl in IMPLS:
            ours.impl, ours.cuda_graphs = impl
            try:
                run(ours, x)  # a second call replays the graphs captured by the first
                out, grads = run(ours, x)
            except Exception as exc:  # report and go on: one run has to tell everything
                rows.append(f"{cell:14s} {label(impl):12s} FAILED: {type(exc).__name__}: "
                            f"{exc}"[:300])
                continue
            worst = max(rel(a, b) for a, b in zip(grads, grads_a, strict=True))
            rows.append(f"{cell:14s} {label(impl):12s} vs autograd   out {rel(out, out_a):.1e}"
                        f"   grads {worst:.1e}")
    return rows


def varlen_error(backend, params, x, state0, lengths, graphed=None) -> float:
    """Worst relative error of a backend on a variable-length batch (batch_sizes, lengths sorted
    decreasing) against the same backend on each sequence alone: outputs (zero past each
    sequence's end), final states, and every gradient. With `graphed` (the backend wrapped in
    _Graphed), the batch runs through it, twice: the second call replays the captured graphs."""
    T, B = x.shape[:2]
    batch_sizes = torch.tensor([sum(n > t for n in lengths) for t in range(T)])
    g = torch.Generator(device=x.device).manual_seed(1)
    run_batch = graphed or backend
    for _ in range(2 if graphed else 1):
        out, fin, cache = run_batch.forward(x, state0, params, True, batch_sizes=batch_sizes)
    d_out = torch.randn(out.shape, generator=g, device=x.device, dtype=x.dtype)
    d_fin = tuple(torch.randn(f.shape, generator=g, device=x.device, dtype=x.dtype) for f in fin)
    for _ in range(2 if graphed else 1):
        dx, d_state0, d_params = run_batch.backward(d_out, d_fin, cache, params,
                                                    batch_sizes=batch_sizes)
    pairs, total = [], {k: torch.zeros_like(v) for k, v in params.items()}
    for r, n in enumerate(lengths):
        o1, f1, c1 = backend.forward(x[:n, r:r + 1], tuple(s[r:r + 1] for s in state0), params,
                                     True)
        g1 = backend.backward(d_out[:n, r:r + 1].contiguous(), tuple(d[r:r + 1] for d in d_fin),
                              c1, params)
        pairs += [(out[:n, r], o1[:, 0]), (dx[:n, r], g1[0][:, 0])]
        pairs += [(a[r], b[0]) for a, b in zip(fin, f1, strict=True)]
        pairs += [(a[r], b[0]) for a, b in zip(d_state0, g1[1], strict=True)]
        if n < T:  # past its end: zero output, zero input gradient
            pairs += [(out[n:, r], torch.zeros_like(out[n:, r])),
                      (dx[n:, r], torch.zeros_like(dx[n:, r]))]
        for k in total:
            total[k] += g1[2][k]
    pairs += [(d_params[k], total[k]) for k in total]
    return max(((a - b).abs().max() / b.abs().max().clamp_min(1.0)).item() for a, b in pairs)


def check_varlen(modules, backends, device) -> list[str]:
    """Each kernel backend (and it under CUDA graphs) with batch_sizes, in float64; backends
    holds the modules already loaded (the CUDA ones built), by (cell, kind)."""
    rows = []
    T, N, H, lengths = 12, 16, 32, [12, 9, 9, 5, 2, 1]
    for cell in CELLS:
        torch_module = modules[cell]
        sizes = {s: 8 for s in torch_module.SIZES} | {"input": N, "hidden": H}
        g = torch.Generator(device=device).manual_seed(0)

        def randn(*shape, scale=0.5):
            return scale * torch.randn(*shape, generator=g, device=device, dtype=torch.float64)

        params = {k: randn(*(sizes[s] for s in shape)) for k, shape in torch_module.PARAMS.items()}
        x = randn(T, len(lengths), sizes[torch_module.INPUT_SIZE], scale=1.0)
        state0 = tuple(randn(len(lengths), sizes[torch_module.STATE_SIZES[s]])
                       for s in torch_module.STATES)
        for kind in ("triton", "cuda"):
            for graphs in (False, True):
                name = kind + ("+graph" if graphs else "")
                try:
                    backend = backends.get((cell, kind)) or load(f"{cell}_{kind}")
                    graphed = torch_module._Graphed(backend) if graphs else None
                    err = varlen_error(backend, params, x, state0, lengths, graphed)
                except Exception as exc:  # report and go on: one run has to tell everything
                    rows.append(f"{cell:14s} {name:12s} varlen FAILED: {type(exc).__name__}: "
                                f"{exc}"[:300])
                    continue
                verdict = "ok" if err <= 1e-10 else "WRONG"
                rows.append(f"{cell:14s} {name:12s} varlen vs each sequence alone (float64) "
                            f"{err:.1e} {verdict}")
    return rows


def timed(fn, repeats: int) -> float:
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def bench(modules, device, quick: bool) -> list[str]:
    T, B, N, H = (50, 64, 256, 512) if quick else (200, 64, 256, 512)
    repeats = 5 if quick else 15
    rows = [f"T={T} B={B} N={N} H={H}; median of {repeats} runs, ms; ratio = ours / cuDNN "
            "(cells without a cuDNN layer: / cuDNN LSTM)"]
    rows.append(f"{'cell':14s} {'dtype':9s} {'pass':8s} {'cuDNN':>8s} " +
                " ".join(f"{label(i):>12s}" for i in IMPLS) + "   ratios to cuDNN")
    errors: set[str] = set()
    for dtype in (torch.float32, torch.bfloat16):
        torch.manual_seed(0)
        lstm_ref = torch.nn.LSTM(N, H, device=device, dtype=dtype)
        for cell, (cls_name, cudnn) in CELLS.items():
            cls = getattr(modules[cell], cls_name)
            ref = cudnn(N, H, device=device, dtype=dtype) if cudnn else lstm_ref
            ours = cls.from_torch(ref) if cudnn else cls(N, H, device=device, dtype=dtype)
            ref.flatten_parameters()
            x = torch.randn(T, B, N, device=device, dtype=dtype, requires_grad=True)

            def fwd(model):
                def f():
                    with torch.no_grad():
                        model(x)
                return f

            def fwd_bwd(model):
                def f():
                    out, _ = model(x)
                    out.sum().backward()
                return f

            for name, make in (("fwd", fwd), ("fwd+bwd", fwd_bwd)):
                base = timed(make(ref), repeats)
                times = []
                for impl in IMPLS:
                    ours.impl, ours.cuda_graphs = impl
                    try:
                        times.append(timed(make(ours), repeats))
                    except Exception as exc:  # one run has to tell everything: go on
                        times.append(float("nan"))
                        errors.add(f"{label(impl)}: {type(exc).__name__}: {exc}"[:300])
                rows.append(f"{cell:14s} {str(dtype)[6:]:9s} {name:8s} {base:8.2f} " +
                            " ".join(f"{t:12.2f}" for t in times) + "   " +
                            " ".join(f"{t / base:.2f}" for t in times))
    return rows + sorted(errors)


def _build(module) -> str | None:
    try:
        module._extension()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def main() -> int:
    warnings.filterwarnings("ignore", message="RNN module weights are not part")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to check")
        return 2
    device = torch.device("cuda")
    # exact float32 for the correctness check (cuDNN and cuBLAS default to TF32 here)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}, "
          f"triton {__import__('triton').__version__}")
    modules = {cell: load(f"{cell}_torch") for cell in CELLS}
    start = time.time()
    cuda_modules = [load(f"{cell}_cuda") for cell in CELLS]
    with ThreadPoolExecutor(max_workers=len(cuda_modules)) as pool:  # build in parallel
        for module, error in zip(cuda_modules, pool.map(_build, cuda_modules), strict=True):
            if error:
                print(f"building {module.__name__} failed: {error}"[:2000])
    print(f"built {len(cuda_modules)} CUDA extensions in {time.time() - start:.0f} s", flush=True)
    print("\n".join(check(modules, device)), flush=True)
    backends = {(cell, "cuda"): m for cell, m in zip(CELLS, cuda_modules, strict=True)}
    print("\n".join(check_varlen(modules, backends, device)), flush=True)
    # timings with each library's defaults (TF32 allowed for float32, as cuDNN does)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    print("\n".join(bench(modules, device, args.quick)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

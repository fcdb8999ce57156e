"""Benchmark gatespec's generated PyTorch modules against torch.nn and eager per-step loops.

On the CPU, in float32, with torch's default thread count, this times (median wall time of
several repeats after warm-up) forward (under torch.no_grad()) and forward+backward
(torch.autograd.grad of a fixed random projection of the output, with respect to the input
and every parameter) of

* the generated ``lstm`` against ``torch.nn.LSTM`` and the generated ``gru_reset_after`` against
  ``torch.nn.GRU``, with the same weights (``from_torch``);
* the generated ``lstm_peephole`` and the article's ``gru`` against the same cells written
  the way a user writes them today: an nn.Module with nn.Linear layers applied per time step
  in a Python for-loop (the input map and the hidden map both inside the loop, gates taken
  with ``chunk``), differentiated by autograd; the weights are copied from the generated
  module;

for T=100, N=128 and two cases: B=32, H=256 ("big") and B=1, H=128 ("small"). Every pair is
checked once (outputs, final state and input gradient allclose). The implementations are run
round-robin within each repeat, so that drift in machine load hits all of them alike.

It also times the GEMM-only floor of the LSTM at the big size (exactly the matrix products the
generated fused path does, and nothing else), and measures the peak memory of one training
step (forward+backward) of each implementation at the big size, each in a fresh subprocess
(see `memory_child` for the method).

Run:  python bench/bench_torch.py [--quick] [--profile]
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gatespec.check import load_module  # noqa: E402
from gatespec.pipeline import generate  # noqa: E402

N = 128
CASES = {"big": (32, 256), "small": (1, 128)}  # case: (B, H)
CASE_SIZES = {"big": (100, 128), "small": (50, 64)}  # case: (T, N), the issue's goal table
# issue 12's goals: (cell, case, pass) -> (implementation, ratio bound against the reference)
GOALS = {("lstm", "big", "fwd"): 1.2, ("lstm", "big", "fwd+bwd"): 1.0,
         ("lstm", "small", "fwd"): 1.5, ("lstm", "small", "fwd+bwd"): 1.5,
         ("gru_torch", "big", "fwd+bwd"): 1.0, ("gru_torch", "small", "fwd+bwd"): 1.0}
# cell: what the generated module is compared with
CELLS = {
    "lstm": "nn.LSTM",
    "gru_reset_after": "nn.GRU",
    "lstm_peephole": "eager loop",
    "gru": "eager loop",
}
DTYPE = torch.float32


# --------------------------------------------------------------------------- utilities


def generated_class(cell: str) -> type[nn.Module]:
    """Generate the torch module for `cell`, import it, and return its nn.Module class."""
    ((filename, text),) = generate(cell, "torch").items()
    module = load_module(text, filename[:-3])
    classes = [
        value for name, value in vars(module).items()
        if isinstance(value, type) and issubclass(value, nn.Module)
        and not name.startswith("_") and value.__module__ == module.__name__
    ]
    if len(classes) != 1:
        raise RuntimeError(f"expected one public nn.Module in {filename}, found {classes}")
    return classes[0]


_CPP_FOLDER = None


def cpp_class(cell: str) -> type[nn.Module]:
    """The generated torch module's class from a folder that also holds its C++ loop
    (`--target cpp`), built (once per cell and version, in gatespec's build cache)."""
    import importlib.util
    import tempfile

    global _CPP_FOLDER
    if _CPP_FOLDER is None:
        _CPP_FOLDER = Path(tempfile.mkdtemp(prefix="gatespec-bench-"))
    for target in ("torch", "cpp"):
        for filename, text in generate(cell, target).items():
            (_CPP_FOLDER / filename).write_text(text)
    spec = importlib.util.spec_from_file_location(f"bench_{cell}_torch",
                                                  _CPP_FOLDER / f"{cell}_torch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    start = time.perf_counter()
    built = module._sibling("cpp").is_built()
    module._sibling("cpp").build()
    if not built:
        print(f"built {cell}_cpp in {time.perf_counter() - start:.1f} s", flush=True)
    cls, = (v for k, v in vars(module).items() if isinstance(v, type)
            and issubclass(v, nn.Module) and not k.startswith("_") and v.__module__ == module.__name__)
    return cls


def median_times(fns: dict[str, Callable[[], object]], repeats: int,
                 warmups: int = 2) -> dict[str, float]:
    """Median seconds per call of each function: warm-ups each, then round-robin repeats."""
    for _ in range(warmups):
        for fn in fns.values():
            fn()
    samples = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(s) for name, s in samples.items()}


# --------------------------------------------------------------------------- eager references


class EagerPeepholeLSTM(nn.Module):
    """The peephole LSTM as a user writes it: nn.Linear maps per step, gates by chunk."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.hidden_size = hidden_size
        self.input_map = nn.Linear(input_size, 4 * hidden_size)
        self.hidden_map = nn.Linear(hidden_size, 4 * hidden_size, bias=False)
        self.w_ic = nn.Parameter(torch.zeros(hidden_size))
        self.w_fc = nn.Parameter(torch.zeros(hidden_size))
        self.w_oc = nn.Parameter(torch.zeros(hidden_size))

    def forward(self, x):
        h = x.new_zeros(x.shape[1], self.hidden_size)
        c = x.new_zeros(x.shape[1], self.hidden_size)
        outputs = []
        for t in range(x.shape[0]):
            a_i, a_f, a_g, a_o = (self.input_map(x[t]) + self.hidden_map(h)).chunk(4, dim=1)
            i = torch.sigmoid(a_i + self.w_ic * c)
            f = torch.sigmoid(a_f + self.w_fc * c)
            g = torch.tanh(a_g)
            c = f * c + i * g
            o = torch.sigmoid(a_o + self.w_oc * c)
            h = o * torch.tanh(c)
            outputs.append(h)
        return torch.stack(outputs), (h, c)

    @torch.no_grad()
    def copy_from(self, gen: nn.Module) -> EagerPeepholeLSTM:
        def cat(names):
            return torch.cat([getattr(gen, f"{name}_l0") for name in names])

        self.input_map.weight.copy_(cat(("W_ix", "W_fx", "W_gx", "W_ox")))
        self.input_map.bias.copy_(cat(("b_i", "b_f", "b_g", "b_o")))
        self.hidden_map.weight.copy_(cat(("W_ih", "W_fh", "W_gh", "W_oh")))
        for name in ("w_ic", "w_fc", "w_oc"):
            getattr(self, name).copy_(getattr(gen, f"{name}_l0"))
        return self


class EagerGRU(nn.Module):
    """The article's GRU (reset gate before W_nh) as a user writes it, per step."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.hidden_size = hidden_size
        self.input_map = nn.Linear(input_size, 3 * hidden_size)
        self.hidden_map = nn.Linear(hidden_size, 2 * hidden_size, bias=False)
        self.reset_map = nn.Linear(hidden_size, hidden_size, bias=False)

    def forward(self, x):
        h = x.new_zeros(x.shape[1], self.hidden_size)
        outputs = []
        for t in range(x.shape[0]):
            a_r, a_z, a_n = self.input_map(x[t]).chunk(3, dim=1)
            h_r, h_z = self.hidden_map(h).chunk(2, dim=1)
            r = torch.sigmoid(a_r + h_r)
            z = torch.sigmoid(a_z + h_z)
            n = torch.tanh(a_n + self.reset_map(r * h))
            h = z * h + (1 - z) * n
            outputs.append(h)
        return torch.stack(outputs), h

    @torch.no_grad()
    def copy_from(self, gen: nn.Module) -> EagerGRU:
        def cat(names):
            return torch.cat([getattr(gen, f"{name}_l0") for name in names])

        self.input_map.weight.copy_(cat(("W_rx", "W_zx", "W_nx")))
        self.input_map.bias.copy_(cat(("b_r", "b_z", "b_n")))
        self.hidden_map.weight.copy_(cat(("W_rh", "W_zh")))
        self.reset_map.weight.copy_(gen.W_nh_l0)
        return self


def make_pair(cell: str, gen_cls: type[nn.Module], H: int,
              n_in: int = N) -> tuple[nn.Module, nn.Module]:
    """(generated module, reference module) for `cell` with the same weights."""
    if cell == "lstm":
        ref = nn.LSTM(n_in, H, dtype=DTYPE)
        return gen_cls.from_torch(ref), ref
    if cell == "gru_reset_after":
        ref = nn.GRU(n_in, H, dtype=DTYPE)
        return gen_cls.from_torch(ref), ref
    gen = gen_cls(n_in, H, dtype=DTYPE)
    eager = {"lstm_peephole": EagerPeepholeLSTM, "gru": EagerGRU}[cell]
    return gen, eager(n_in, H).to(DTYPE).copy_from(gen)


def as_tuple(state):
    return state if isinstance(state, tuple) else (state,)


def training_step(module: nn.Module, x: torch.Tensor, projection: torch.Tensor):
    """One forward+backward: gradients of <output, projection> w.r.t. x and all parameters."""
    output, _ = module(x)
    loss = (output * projection).sum()
    return torch.autograd.grad(loss, [x, *module.parameters()])


def check_pair(gen: nn.Module, ref: nn.Module, x: torch.Tensor, projection: torch.Tensor):
    """Assert outputs, final states and input gradients agree (float32 tolerances)."""
    out_gen, state_gen = gen(x)
    out_ref, state_ref = ref(x)
    # nn.LSTM/nn.GRU return (1, B, H) final states; the eager loops return (B, H).
    for a, b in zip((out_gen, *as_tuple(state_gen)), (out_ref, *as_tuple(state_ref)),
                    strict=True):
        torch.testing.assert_close(a.reshape(b.shape), b, rtol=1e-4, atol=1e-5)
    dx_gen = training_step(gen, x, projection)[0]
    dx_ref = training_step(ref, x, projection)[0]
    torch.testing.assert_close(dx_gen, dx_ref, rtol=1e-4, atol=1e-4)


# --------------------------------------------------------------------------- GEMM-only floor


def lstm_floor(T: int, B: int, H: int):
    """(forward, forward+backward) doing exactly the fused LSTM's matrix products."""
    x = torch.randn(T * B, N)
    h_all = torch.randn(T + 1, B, H)
    W_x, W_h = torch.randn(4 * H, N), torch.randn(4 * H, H)
    d_mm = torch.randn(T * B, 4 * H)
    d_mm_t = d_mm.reshape(T, B, 4 * H)
    h_prev = h_all[:-1].reshape(T * B, H)

    @torch.no_grad()
    def forward():
        x @ W_x.T  # (T*B, N) x (N, 4H)
        for t in range(T):
            h_all[t] @ W_h.T  # (B, H) x (H, 4H)

    @torch.no_grad()
    def backward():
        for t in range(T):
            d_mm_t[t] @ W_h  # (B, 4H) x (4H, H)
        d_mm @ W_x  # (T*B, 4H) x (4H, N)
        d_mm.T @ x  # (4H, T*B) x (T*B, N)
        d_mm.T @ h_prev  # (4H, T*B) x (T*B, H)

    def forward_backward():
        forward()
        backward()

    return forward, forward_backward


# --------------------------------------------------------------------------- timing


def cell_functions(cell: str, gen_cls, case: str, T: int) -> dict[tuple, Callable[[], object]]:
    """The timed functions of one cell and case, keyed (pass, implementation); checked once.

    Implementations are "gen" (the generated module's torch-ops loop), "cpp" (its C++ loop),
    "ref", "nn" (for the eager cells: the torch.nn layer of the same size, nn.LSTM or
    nn.GRU) and, for the lstm at the big size, "floor".
    """
    B, H = CASES[case]
    n_in = CASE_SIZES[case][1]
    gen, ref = make_pair(cell, gen_cls, H, n_in)
    gen.impl = "torch"
    cpp = copy.deepcopy(gen)
    cpp.impl = "cpp"
    x = torch.randn(T, B, n_in, dtype=DTYPE)
    x_grad = x.clone().requires_grad_(True)
    projection = torch.randn(T, B, H, dtype=DTYPE)
    check_pair(gen, ref, x_grad, projection)
    check_pair(cpp, ref, x_grad, projection)

    def forward(module):
        def run():
            with torch.no_grad():
                module(x)
        return run

    def forward_backward(module):
        return lambda: training_step(module, x_grad, projection)

    fns = {}
    impls = {"gen": gen, "cpp": cpp, "ref": ref}
    if cell in ("lstm_peephole", "gru"):
        impls["nn"] = (nn.LSTM if cell == "lstm_peephole" else nn.GRU)(n_in, H, dtype=DTYPE)
    for impl, module in impls.items():
        fns[("fwd", impl)] = forward(module)
        fns[("fwd+bwd", impl)] = forward_backward(module)
    if cell == "lstm" and case == "big":
        fns[("fwd", "floor")], fns[("fwd+bwd", "floor")] = lstm_floor(T, B, H)
    return fns


# --------------------------------------------------------------------------- peak memory


def _status_kib(field: str) -> int:
    """A memory field of /proc/self/status (VmRSS, VmHWM), in KiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def memory_child(cell: str, impl: str, T: int) -> None:
    """Measure one training step's peak memory in this (fresh) process; print JSON.

    Method: peak resident set size (Linux). torch's CPU allocator does not cache, so the
    memory a step allocates shows up as resident pages, and the kernel keeps the process's
    high-water mark (VmHWM). After setup (imports, code generation, module, inputs) and a
    warm-up step at T=2 (which loads kernels, thread pools and lazily initialised state),
    we reset the high-water mark to the current RSS (writing 5 to /proc/self/clear_refs),
    run one step at the full size, and report VmHWM minus the RSS at the step's start: the
    memory the step needed at its worst moment (activations saved for backward, the autograd
    graph, gradients, temporaries, plus malloc overhead). Without the reset, the peak of the
    setup (imports, code generation) can hide the step's, so the reset must succeed for the
    number to be valid; the child reports whether it did, and whether the step then set a
    new high-water mark above the setup's.
    """
    B, H = CASES["big"]
    torch.manual_seed(0)
    gen, ref = make_pair(cell, generated_class(cell), H)
    module = gen if impl == "generated" else ref
    projection = torch.randn(T, B, H, dtype=DTYPE)
    x = torch.randn(T, B, N, dtype=DTYPE, requires_grad=True)
    training_step(module, x[:2].detach().requires_grad_(True), projection[:2])
    gc.collect()
    setup_peak = _status_kib("VmHWM")
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        reset = True
    except OSError:
        reset = False
    rss_start = _status_kib("VmRSS")
    grads = training_step(module, x, projection)
    peak = _status_kib("VmHWM")
    del grads
    print(json.dumps({"rss_start": rss_start * 1024, "peak": peak * 1024,
                      "valid": reset or peak > setup_peak}))


def measure_memory(cell: str, impl: str, T: int) -> dict[str, int]:
    result = subprocess.run(
        [sys.executable, __file__, "--memory-child", cell, impl, str(T)],
        check=True, capture_output=True, text=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- profile


def profile_lstm(T: int) -> None:
    """torch.profiler table (by self CPU time) of one forward+backward of the generated lstm."""
    B, H = CASES["big"]
    gen, _ = make_pair("lstm", generated_class("lstm"), H)
    x = torch.randn(T, B, N, dtype=DTYPE, requires_grad=True)
    projection = torch.randn(T, B, H, dtype=DTYPE)
    for _ in range(3):
        training_step(gen, x, projection)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        training_step(gen, x, projection)
    print(f"torch.profiler, generated lstm, one forward+backward, T={T} B={B} N={N} H={H}:")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))


def profile_cpp(T: int, repeats: int) -> None:
    """Where the C++ loop's time goes, lstm big case: the loops inside C++ (forward, backward)
    against the whole call, and the recurrent GEMMs alone (the same products, through torch)."""
    B, H = CASES["big"]
    gen, _ = make_pair("lstm", cpp_class("lstm"), H)
    gen.impl = "cpp"
    cpp = type(gen).forward.__globals__["_sibling"]("cpp")  # the module beside the class
    x = torch.randn(T, B, N, dtype=DTYPE, requires_grad=True)
    projection = torch.randn(T, B, H, dtype=DTYPE)
    spent = {"gatespec_forward": [], "gatespec_backward": []}
    call = cpp._call

    def timed(entry, *args):
        start = time.perf_counter()
        call(entry, *args)
        spent[entry].append(time.perf_counter() - start)

    cpp._call = timed
    W_h = torch.randn(4 * H, H)
    h = torch.randn(B, H)
    d = torch.randn(B, 4 * H)

    def gemms():
        for _ in range(T):
            torch.addmm(d, h, W_h.T)
        for _ in range(T):
            d @ W_h

    fns = {"fwd+bwd": lambda: training_step(gen, x, projection), "recurrent GEMMs": gemms}
    times = median_times(fns, repeats)
    loop_f = statistics.median(spent["gatespec_forward"])
    loop_b = statistics.median(spent["gatespec_backward"])
    total = times["fwd+bwd"]
    print(f"where the time goes, lstm cpp fwd+bwd, T={T} B={B} N={N} H={H} (medians):")
    print(f"  whole step            {total * 1e3:8.2f} ms")
    print(f"  C++ loop forward      {loop_f * 1e3:8.2f} ms ({loop_f / total:.0%})")
    print(f"  C++ loop backward     {loop_b * 1e3:8.2f} ms ({loop_b / total:.0%})")
    print(f"  outside the loops     {(total - loop_f - loop_b) * 1e3:8.2f} ms (input GEMMs, "
          "weight gradients, autograd, allocation)")
    print(f"  recurrent GEMMs alone {times['recurrent GEMMs'] * 1e3:8.2f} ms (the loops' "
          "products, forward and backward, as torch calls)")


# --------------------------------------------------------------------------- main


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="T=20 and fewer repeats")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory part")
    parser.add_argument("--where", action="store_true",
                        help="only say where the C++ loop's time goes (lstm, big case)")
    parser.add_argument("--profile", action="store_true",
                        help="only print a torch.profiler table for the generated lstm")
    parser.add_argument("--memory-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.memory_child:
        cell, impl, T = args.memory_child
        memory_child(cell, impl, int(T))
        return
    T, repeats = (20, 5) if args.quick else (100, 21)
    torch.manual_seed(0)
    if args.profile:
        profile_lstm(T)
        return
    if args.where:
        profile_cpp(T, repeats)
        return

    wall_start = time.perf_counter()
    print(f"torch {torch.__version__}, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
          f"torch threads {torch.get_num_threads()}, "
          f"mkldnn {torch.backends.mkldnn.is_available()}")
    print("float32; cases "
          + ", ".join(f"{case} T={max(T * CASE_SIZES[case][0] // 100, 2)} B={B} "
                      f"N={CASE_SIZES[case][1]} H={H}" for case, (B, H) in CASES.items())
          + f"; median of {repeats} repeats after 2 warm-ups; all implementations, cells, "
          "cases and passes interleaved\n")

    # Every implementation of every cell, case and pass in one round-robin, so that bursts
    # of load from other processes on a shared machine spread over all the entries.
    fns = {}
    for cell in CELLS:
        gen_cls = cpp_class(cell)
        for case in CASES:
            steps = max(T * CASE_SIZES[case][0] // 100, 2)
            for (name, impl), fn in cell_functions(cell, gen_cls, case, steps).items():
                fns[(cell, case, name, impl)] = fn
    load_before = os.getloadavg()[0]
    times = median_times(fns, repeats)
    load_after = os.getloadavg()[0]

    header = (f"{'cell':<13} {'case':<5} {'pass':<8} {'reference':<10} {'torch-ops ms':>12} "
              f"{'cpp ms':>8} {'ref ms':>8} {'ops/ref':>7} {'cpp/ref':>7} {'goal':>6} "
              f"{'cpp/nn':>6} {'ref/cpp':>7}")
    print(header)
    print("-" * len(header))
    for cell, ref_name in CELLS.items():
        for case in CASES:
            for name in ("fwd", "fwd+bwd"):
                gen, cpp, ref = (times[(cell, case, name, impl)] for impl in ("gen", "cpp", "ref"))
                goal = GOALS.get((cell, case, name))
                nn_same = times.get((cell, case, name, "nn"))
                eager = ref_name == "eager loop"
                print(f"{cell:<13} {case:<5} {name:<8} {ref_name:<10} {gen * 1e3:>12.2f} "
                      f"{cpp * 1e3:>8.2f} {ref * 1e3:>8.2f} {gen / ref:>7.2f} {cpp / ref:>7.2f} "
                      + (f"{'<=' + str(goal):>6} " if goal else f"{'':>6} ")
                      + (f"{cpp / nn_same:>6.2f} " if nn_same else f"{'':>6} ")
                      + (f"{ref / cpp:>7.2f}" if eager else ""))
    print("goal: issue 12's bound on cpp/ref; for the eager cells (lstm_peephole, gru) the goals "
          "are cpp/nn <= 1.1 (nn: torch.nn.LSTM / GRU of the same size) and ref/cpp >= 3 "
          "(faster than the eager loop), fwd+bwd")

    B, H = CASES["big"]
    print(f"\nGEMM-only floor, lstm big (T={T} B={B} N={N} H={H}; the fused path's matrix "
          "products only, each a torch call from Python):")
    for name in ("fwd", "fwd+bwd"):
        floor, gen, cpp, ref = (times[("lstm", "big", name, impl)]
                                for impl in ("floor", "gen", "cpp", "ref"))
        print(f"  {name:<8} floor {floor * 1e3:8.2f} ms   torch-ops/floor {gen / floor:5.2f}"
              f"   cpp/floor {cpp / floor:5.2f}   nn.LSTM/floor {ref / floor:5.2f}")
    print(f"1-minute load average {load_before:.2f} before timing, {load_after:.2f} after "
          f"({os.cpu_count()} CPUs)", flush=True)

    if args.no_memory:
        return
    print(f"\npeak memory of one training step (forward+backward), big case T={T} B={B} "
          f"N={N} H={H}:\n  fresh subprocess each; peak RSS during the step minus RSS at its "
          "start (high-water mark reset after a T=2 warm-up step)")
    mem_header = (f"  {'cell':<13} {'implementation':<22} {'step peak MB':>12} "
                  f"{'RSS at start MB':>15}")
    print(mem_header)
    print("  " + "-" * (len(mem_header) - 2))
    # Two children at a time: each measures its own RSS, so they do not disturb each other.
    jobs = [(cell, impl) for cell in CELLS for impl in ("generated", "reference")]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = pool.map(lambda job: measure_memory(*job, T), jobs)
        for (cell, impl), m in zip(jobs, results, strict=True):
            label = f"generated {cell}" if impl == "generated" else CELLS[cell]
            note = "" if m["valid"] else "  (invalid: high-water mark not reset)"
            print(f"  {cell:<13} {label:<22} {(m['peak'] - m['rss_start']) / 2**20:>12.1f} "
                  f"{m['rss_start'] / 2**20:>15.1f}{note}", flush=True)

    print("\nreferences checked against generated (outputs, final state, input gradient, "
          f"allclose). Total wall time {time.perf_counter() - wall_start:.1f} s")


if __name__ == "__main__":
    main()

"""Benchmark gatespec's generated NumPy cells against a hand loop and a GEMM-only floor.

For the generated LSTM and GRU, in float32 and float64, this times (median wall time of
several repeats after a warm-up) forward and forward+backward of

* the generated module,
* a straightforward hand-written NumPy implementation of the same cell: per step and per
  gate ``x_t @ W_x.T + h @ W_h.T``, separate matrix products, no hoisting, and a hand-written
  backward through time (checked once against the generated module),
* the GEMM-only floor: exactly the matrix products the generated code does, and nothing else,

and the time ``generate(cell)`` takes. The implementations are run round-robin within each
repeat so that drift in machine load hits all of them alike.

Run:  python bench/bench_numpy.py [--quick]
"""

from __future__ import annotations

import argparse
import ctypes
import importlib.util
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gatespec.pipeline import generate  # noqa: E402

CELLS = ("lstm", "gru")
DTYPES = (np.float32, np.float64)
B, N, H = 32, 128, 256


# --------------------------------------------------------------------------- utilities


def load_generated(cell: str, directory: Path):
    """Generate the NumPy module for `cell`, write it to `directory` and import it."""
    ((filename, text),) = generate(cell).items()
    path = directory / filename
    path.write_text(text, "utf-8")
    spec = importlib.util.spec_from_file_location(f"bench_{cell}_numpy", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def median_times(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median seconds per call of each function: one warm-up each, then round-robin repeats."""
    for fn in fns.values():
        fn()
    samples = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(s) for name, s in samples.items()}


def blas_info() -> str:
    """OpenBLAS configuration and thread count of NumPy's bundled OpenBLAS, if found."""
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        text = f"{blas['name']} {blas['version']}"
    except Exception:  # noqa: BLE001 - informational only
        text = "unknown BLAS"
    libs = Path(np.__file__).resolve().parent.parent / "numpy.libs"
    for lib_path in sorted(libs.glob("libscipy_openblas*.so*")):
        try:
            lib = ctypes.CDLL(str(lib_path))
            threads = lib.scipy_openblas_get_num_threads64_()
            get_config = lib.scipy_openblas_get_config64_
            get_config.restype = ctypes.c_char_p
            return f"{text}; {get_config().decode()}; BLAS threads {threads}"
        except (OSError, AttributeError):
            continue
    return text


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


# --------------------------------------------------------------------------- hand-written LSTM


def hand_lstm_forward(x, params):
    """Per step, per gate: x_t @ W_x.T + h @ W_h.T + b. Zero initial state."""
    p = params
    T, batch, _ = x.shape
    hidden = p["W_ih"].shape[0]
    h = np.zeros((batch, hidden), x.dtype)
    c = np.zeros((batch, hidden), x.dtype)
    outputs, steps = [], []
    for t in range(T):
        x_t = x[t]
        i = sigmoid(x_t @ p["W_ix"].T + h @ p["W_ih"].T + p["b_i"])
        f = sigmoid(x_t @ p["W_fx"].T + h @ p["W_fh"].T + p["b_f"])
        g = np.tanh(x_t @ p["W_gx"].T + h @ p["W_gh"].T + p["b_g"])
        o = sigmoid(x_t @ p["W_ox"].T + h @ p["W_oh"].T + p["b_o"])
        c_new = f * c + i * g
        tanh_c = np.tanh(c_new)
        h_new = o * tanh_c
        steps.append((x_t, h, c, i, f, g, o, tanh_c))
        h, c = h_new, c_new
        outputs.append(h)
    return np.stack(outputs), steps


def hand_lstm_backward(d_outputs, steps, params):
    """Backward through time for hand_lstm_forward; returns (dx, d_params)."""
    p = params
    grads = {name: np.zeros_like(value) for name, value in p.items()}
    dh_next = np.zeros_like(d_outputs[0])
    dc_next = np.zeros_like(d_outputs[0])
    dx = []
    for t in reversed(range(len(steps))):
        x_t, h_prev, c_prev, i, f, g, o, tanh_c = steps[t]
        dh = d_outputs[t] + dh_next
        do = dh * tanh_c
        dc = dc_next + dh * o * (1 - tanh_c**2)
        di = dc * g
        dg = dc * i
        df = dc * c_prev
        dc_next = dc * f
        da = {
            "i": di * i * (1 - i),
            "f": df * f * (1 - f),
            "g": dg * (1 - g**2),
            "o": do * o * (1 - o),
        }
        dx_t = np.zeros_like(x_t)
        dh_next = np.zeros_like(h_prev)
        for gate, d in da.items():
            grads[f"W_{gate}x"] += d.T @ x_t
            grads[f"W_{gate}h"] += d.T @ h_prev
            grads[f"b_{gate}"] += d.sum(axis=0)
            dx_t += d @ p[f"W_{gate}x"]
            dh_next += d @ p[f"W_{gate}h"]
        dx.append(dx_t)
    return np.stack(dx[::-1]), grads


# --------------------------------------------------------------------------- hand-written GRU


def hand_gru_forward(x, params):
    """The article's GRU (reset before the linear map), per step and per gate. Zero state."""
    p = params
    T, batch, _ = x.shape
    h = np.zeros((batch, p["W_rh"].shape[0]), x.dtype)
    outputs, steps = [], []
    for t in range(T):
        x_t = x[t]
        r = sigmoid(x_t @ p["W_rx"].T + h @ p["W_rh"].T + p["b_r"])
        z = sigmoid(x_t @ p["W_zx"].T + h @ p["W_zh"].T + p["b_z"])
        rh = r * h
        n = np.tanh(x_t @ p["W_nx"].T + rh @ p["W_nh"].T + p["b_n"])
        h_new = z * h + (1 - z) * n
        steps.append((x_t, h, r, z, rh, n))
        h = h_new
        outputs.append(h)
    return np.stack(outputs), steps


def hand_gru_backward(d_outputs, steps, params):
    """Backward through time for hand_gru_forward; returns (dx, d_params)."""
    p = params
    grads = {name: np.zeros_like(value) for name, value in p.items()}
    dh_next = np.zeros_like(d_outputs[0])
    dx = []
    for t in reversed(range(len(steps))):
        x_t, h_prev, r, z, rh, n = steps[t]
        dh = d_outputs[t] + dh_next
        dz = dh * (h_prev - n)
        dn = dh * (1 - z)
        dh_prev = dh * z
        da_n = dn * (1 - n**2)
        grads["W_nx"] += da_n.T @ x_t
        grads["W_nh"] += da_n.T @ rh
        grads["b_n"] += da_n.sum(axis=0)
        drh = da_n @ p["W_nh"]
        dr = drh * h_prev
        dh_prev += drh * r
        da_r = dr * r * (1 - r)
        da_z = dz * z * (1 - z)
        grads["W_rx"] += da_r.T @ x_t
        grads["W_rh"] += da_r.T @ h_prev
        grads["b_r"] += da_r.sum(axis=0)
        grads["W_zx"] += da_z.T @ x_t
        grads["W_zh"] += da_z.T @ h_prev
        grads["b_z"] += da_z.sum(axis=0)
        dx_t = da_r @ p["W_rx"] + da_z @ p["W_zx"] + da_n @ p["W_nx"]
        dh_prev += da_r @ p["W_rh"] + da_z @ p["W_zh"]
        dh_next = dh_prev
        dx.append(dx_t)
    return np.stack(dx[::-1]), grads


HAND = {
    "lstm": (hand_lstm_forward, hand_lstm_backward),
    "gru": (hand_gru_forward, hand_gru_backward),
}


# --------------------------------------------------------------------------- GEMM-only floors


def lstm_floor(T, dtype, rng):
    """(forward, backward) doing exactly the generated LSTM's matrix products, preallocated."""
    def rand(*shape):
        return rng.standard_normal(shape).astype(dtype)

    x = rand(T * B, N)
    h_all = rand(T + 1, B, H)
    W_x, W_h = rand(4 * H, N), rand(4 * H, H)
    d_mm = rand(T * B, 4 * H)
    d_mm_t = d_mm.reshape(T, B, 4 * H)
    h_prev = h_all[:-1].reshape(T * B, H)

    def forward():
        x @ W_x.T  # (T*B, N) x (N, 4H)
        for t in range(T):
            h_all[t] @ W_h.T  # (B, H) x (H, 4H)

    def backward():
        for t in range(T):
            d_mm_t[t] @ W_h  # (B, 4H) x (4H, H)
        d_mm @ W_x  # (T*B, 4H) x (4H, N)
        d_mm.T @ x  # (4H, T*B) x (T*B, N)
        d_mm.T @ h_prev  # (4H, T*B) x (T*B, H)

    return forward, backward


def gru_floor(T, dtype, rng):
    """(forward, backward) doing exactly the generated GRU's matrix products, preallocated."""
    def rand(*shape):
        return rng.standard_normal(shape).astype(dtype)

    x = rand(T * B, N)
    h_all, rh_all = rand(T + 1, B, H), rand(T, B, H)
    W_x, W_h, W_nh = rand(3 * H, N), rand(2 * H, H), rand(H, H)
    d_mm_x, d_mm_h, d_mm_n = rand(T * B, 3 * H), rand(T * B, 2 * H), rand(T * B, H)
    d_mm_h_t, d_mm_n_t = d_mm_h.reshape(T, B, 2 * H), d_mm_n.reshape(T, B, H)
    h_prev, rh = h_all[:-1].reshape(T * B, H), rh_all.reshape(T * B, H)

    def forward():
        x @ W_x.T  # (T*B, N) x (N, 3H)
        for t in range(T):
            h_all[t] @ W_h.T  # (B, H) x (H, 2H)
            rh_all[t] @ W_nh.T  # (B, H) x (H, H)

    def backward():
        for t in range(T):
            d_mm_n_t[t] @ W_nh  # (B, H) x (H, H)
            d_mm_h_t[t] @ W_h  # (B, 2H) x (2H, H)
        d_mm_x @ W_x  # (T*B, 3H) x (3H, N)
        d_mm_x.T @ x  # (3H, T*B) x (T*B, N)
        d_mm_h.T @ h_prev  # (2H, T*B) x (T*B, H)
        d_mm_n.T @ rh  # (H, T*B) x (T*B, H)

    return forward, backward


FLOORS = {"lstm": lstm_floor, "gru": gru_floor}


# --------------------------------------------------------------------------- benchmark


def check_hand_matches(module, cell, x, params, d_outputs):
    """Assert the hand loop gives the generated module's outputs and gradients."""
    hand_forward, hand_backward = HAND[cell]
    rtol, atol = (1e-4, 1e-5) if x.dtype == np.float32 else (1e-10, 1e-12)
    out, _, cache = module.forward(x, None, params)
    dx, _, d_params = module.backward(d_outputs, None, cache, params)
    hand_out, steps = hand_forward(x, params)
    hand_dx, hand_d_params = hand_backward(d_outputs, steps, params)
    np.testing.assert_allclose(hand_out, out, rtol=rtol, atol=atol)
    # Gradients sum over T*B terms: compare with a tolerance scaled to their size.
    for name, value in [("dx", dx), *d_params.items()]:
        hand = hand_dx if name == "dx" else hand_d_params[name]
        scale = max(1.0, float(np.abs(value).max()))
        np.testing.assert_allclose(hand, value, rtol=rtol, atol=atol * scale, err_msg=name)


def bench_cell(module, cell, dtype, T, repeats, rng):
    """Rows (pass, generated s, hand s, floor s) for one cell and dtype."""
    params = module.init_params({"input": N, "hidden": H}, rng=rng, dtype=dtype)
    x = rng.standard_normal((T, B, N)).astype(dtype)
    d_outputs = rng.standard_normal((T, B, H)).astype(dtype)
    check_hand_matches(module, cell, x, params, d_outputs)

    hand_forward, hand_backward = HAND[cell]
    floor_forward, floor_backward = FLOORS[cell](T, dtype, rng)

    def gen_fwd_bwd():
        _, _, cache = module.forward(x, None, params)
        module.backward(d_outputs, None, cache, params)

    def hand_fwd_bwd():
        _, steps = hand_forward(x, params)
        hand_backward(d_outputs, steps, params)

    def floor_fwd_bwd():
        floor_forward()
        floor_backward()

    passes = {
        "fwd": {
            "gen": lambda: module.forward(x, None, params),
            "hand": lambda: hand_forward(x, params),
            "floor": floor_forward,
        },
        "fwd+bwd": {"gen": gen_fwd_bwd, "hand": hand_fwd_bwd, "floor": floor_fwd_bwd},
    }
    rows = []
    for name, fns in passes.items():
        t = median_times(fns, repeats)
        rows.append((name, t["gen"], t["hand"], t["floor"]))
    return rows


def codegen_times(runs):
    """Per cell: (first call in this process, median of `runs` further calls), seconds."""
    times = {}
    for cell in CELLS:
        start = time.perf_counter()
        generate(cell)
        first = time.perf_counter() - start
        samples = []
        for _ in range(runs):
            start = time.perf_counter()
            generate(cell)
            samples.append(time.perf_counter() - start)
        times[cell] = (first, statistics.median(samples))
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="T=20 and fewer repeats")
    args = parser.parse_args(argv)
    T, repeats, codegen_runs = (20, 5, 3) if args.quick else (100, 15, 5)

    wall_start = time.perf_counter()
    print(f"numpy {np.__version__}, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    print(blas_info())
    print(f"T={T} B={B} N={N} H={H}; median of {repeats} repeats after 1 warm-up, "
          "implementations interleaved\n")

    codegen = codegen_times(codegen_runs)

    header = (f"{'cell':<5} {'dtype':<8} {'pass':<8} {'generated ms':>12} {'hand-loop ms':>12} "
              f"{'floor ms':>9} {'gen/floor':>9} {'hand/gen':>8}")
    print(header)
    print("-" * len(header))
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        for cell in CELLS:
            module = load_generated(cell, Path(tmp))
            for dtype in DTYPES:
                for name, gen, hand, floor in bench_cell(module, cell, dtype, T, repeats, rng):
                    print(f"{cell:<5} {np.dtype(dtype).name:<8} {name:<8} {gen * 1e3:>12.2f} "
                          f"{hand * 1e3:>12.2f} {floor * 1e3:>9.2f} {gen / floor:>9.2f} "
                          f"{hand / gen:>8.2f}", flush=True)

    print(f"\ncode generation, seconds (first call in process incl. parser/template setup; "
          f"then median of {codegen_runs}):")
    for cell, (first, median) in codegen.items():
        print(f"  generate({cell!r}): first {first:.3f} s, median {median:.3f} s")
    print(f"\nhand loop checked against generated (outputs and gradients, allclose). "
          f"Total wall time {time.perf_counter() - wall_start:.1f} s")


if __name__ == "__main__":
    main()

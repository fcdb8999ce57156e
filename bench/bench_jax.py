"""Benchmark gatespec's generated JAX modules against Flax's cells and JAX autodiff.

On the CPU, in float32, every function under jax.jit, this times (median wall time of
several repeats after compilation) forward and forward+backward (jax.grad of a fixed random
projection of the outputs, with respect to the input and every parameter) of

* the generated ``lstm`` (impl="derived": a lax.scan forward, a custom_vjp whose backward is
  the derived adjoint scan) against ``flax.linen.RNN(OptimizedLSTMCell)`` with the same
  weights (``from_flax``), and against autodiff through a lax.scan of the same cell as
  written (impl="autodiff");
* the generated ``gru_reset_after`` the same way against ``flax.linen.RNN(GRUCell)``.

Every pair is checked once (outputs and input gradient allclose). The implementations run
round-robin within each repeat, so that drift in machine load hits all of them alike. The
ratios are ours / theirs (below 1: ours is faster).

Run:  python bench/bench_jax.py [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gatespec.check import load_module  # noqa: E402
from gatespec.pipeline import generate  # noqa: E402

CELLS = {"lstm": "OptimizedLSTMCell", "gru_reset_after": "GRUCell"}
CASES = {"big": (32, 256), "small": (1, 128)}  # case: (B, H)
T, N = 100, 128


def module(name):
    (fname, text), = generate(name, "jax").items()
    return load_module(text, fname[:-3])


def timed(fn, args, repeats):
    """Wall times of `repeats` calls, each until the result is ready."""
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        out.append(time.perf_counter() - start)
    return out


def contenders(name, B, H):
    """{label: (forward, forward+backward, args)} for one cell and size, same weights."""
    ours = module(name)
    key = jax.random.key(0)
    x_bt = jax.random.normal(key, (B, T, N), jnp.float32)  # Flax: batch-major
    x_tb = jnp.swapaxes(x_bt, 0, 1)
    rnn = nn.RNN(getattr(nn, CELLS[name])(features=H))
    variables = rnn.init(jax.random.key(1), x_bt)
    params = ours.from_flax(variables["params"]["cell"])
    proj = jax.random.normal(jax.random.key(2), (T, B, H), jnp.float32)

    def flax_fwd(variables, x):
        return jnp.swapaxes(rnn.apply(variables, x), 0, 1)

    def flax_loss(variables, x):
        return jnp.sum(flax_fwd(variables, x) * proj)

    def ours_fwd(impl):
        return lambda params, x: ours.forward(x, None, params, impl=impl)[0]

    def ours_loss(impl):
        return lambda params, x: jnp.sum(ours.forward(x, None, params, impl=impl)[0] * proj)

    grad = (0, 1)
    table = {
        "gatespec derived": (jax.jit(ours_fwd("derived")),
                             jax.jit(jax.grad(ours_loss("derived"), grad)), (params, x_tb)),
        "autodiff lax.scan": (jax.jit(ours_fwd("autodiff")),
                              jax.jit(jax.grad(ours_loss("autodiff"), grad)), (params, x_tb)),
        f"flax {CELLS[name]}": (jax.jit(flax_fwd), jax.jit(jax.grad(flax_loss, grad)),
                                (variables, x_bt)),
    }
    # the same function and the same input gradient, once
    outs = {k: np.asarray(f(*a)) for k, (f, _, a) in table.items()}
    dxs = {k: np.asarray(g(*a)[1]) for k, (_, g, a) in table.items()}
    dxs[f"flax {CELLS[name]}"] = np.swapaxes(dxs[f"flax {CELLS[name]}"], 0, 1)
    for k in table:
        np.testing.assert_allclose(outs[k], outs["gatespec derived"], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(dxs[k], dxs["gatespec derived"], rtol=1e-3, atol=1e-4)
    return table


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, big case only")
    args = parser.parse_args()
    repeats, rounds = (3, 3) if args.quick else (5, 7)
    cases = {"big": CASES["big"]} if args.quick else CASES
    print(f"# python bench/bench_jax.py{' --quick' if args.quick else ''}")
    print(f"# jax {jax.__version__}, {jax.devices()[0].platform}, float32, T={T}, N={N}; "
          f"median of {rounds} rounds x {repeats} calls, round-robin")
    for name in CELLS:
        for case, (B, H) in cases.items():
            table = contenders(name, B, H)
            times = {(k, kind): [] for k in table for kind in ("fwd", "fwd+bwd")}
            for _ in range(rounds):
                for k, (fwd, bwd, a) in table.items():
                    times[k, "fwd"] += timed(fwd, a, repeats)
                    times[k, "fwd+bwd"] += timed(bwd, a, repeats)
            med = {key: statistics.median(v) for key, v in times.items()}
            print(f"\n{name}, {case} (B={B}, H={H}): median ms")
            for k in table:
                print(f"  {k:28s} fwd {1e3 * med[k, 'fwd']:8.2f}   "
                      f"fwd+bwd {1e3 * med[k, 'fwd+bwd']:8.2f}")
            for k in list(table)[1:]:
                print(f"  ratio gatespec / {k:18s} fwd {med['gatespec derived', 'fwd'] / med[k, 'fwd']:5.2f}   "
                      f"fwd+bwd {med['gatespec derived', 'fwd+bwd'] / med[k, 'fwd+bwd']:5.2f}")


if __name__ == "__main__":
    main()

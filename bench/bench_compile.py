"""How compile time grows with the size of a cell.

For chains of N statements of five shapes, this times every stage of the in-process
pipeline (parse, build, derive, schedule) and every target (numpy, torch, triton, cuda,
show, latex, markdown, the diagram's DOT text; not Graphviz's drawing) and prints
milliseconds per statement and the total:

* diamond: `q{k} = q{k-1} * q{k-1} + sigmoid(q{k-1})`, each statement reads the previous twice;
* product: `h' = g1 * g2 * ... * gN` with `gk = sigmoid(linear(x, h))`;
* lstm: N LSTM-like gate pairs, `ik = sigmoid(linear(x, h))`, `gk = tanh(linear(x, h))`,
  `c' = f * c + i1 * g1 + ... + iN * gN`;
* fraction: `q{k} = 1 / (1 + q{k-1})` as named statements, and a nested fraction
  `1 / (1 + 1 / (1 + ...))` of min(N, 33) fractions (99 levels) in the last statement;
* calls: `tanh(sigmoid(tanh(...linear(x, h))))`, min(N, 99) calls deep in one statement.

The nested shapes stop at the parser's limit of 100 levels (gatespec.parse.MAX_DEPTH):
deeper nesting is refused with a message asking to name a part. A stage over --budget seconds skips the larger sizes of
its shape. Wall times on a shared machine are noisy; the shape of the growth is the point.

Run:  python bench/bench_compile.py [--sizes 10 50 200] [--shapes diamond product ...]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gatespec.build import build  # noqa: E402
from gatespec.derive import derive  # noqa: E402
from gatespec.emit import emit_numpy, emit_torch, latex  # noqa: E402
from gatespec.emit.docs import diagram_text  # noqa: E402
from gatespec.emit.emit import emit_cuda, emit_triton  # noqa: E402
from gatespec.parse import parse  # noqa: E402
from gatespec.schedule import schedule  # noqa: E402
from gatespec.show import render_plan  # noqa: E402


def diamond(n: int) -> str:
    lines = ["cell diamond", "input x", "state h", "q0 = tanh(linear(x, h))"]
    lines += [f"q{k} = q{k - 1} * q{k - 1} + sigmoid(q{k - 1})" for k in range(1, n)]
    lines.append(f"h' = tanh(linear(q{n - 1}))")
    return "\n".join(lines) + "\n"


def product(n: int) -> str:
    lines = ["cell product", "input x", "state h"]
    lines += [f"g{k} = sigmoid(linear(x, h))" for k in range(1, n + 1)]
    lines.append("h' = " + " * ".join(f"g{k}" for k in range(1, n + 1)))
    return "\n".join(lines) + "\n"


def lstm(n: int) -> str:
    lines = ["cell lstm_pairs", "input x", "state h, c", "f = sigmoid(linear(x, h))",
             "o = sigmoid(linear(x, h))"]
    for k in range(1, n + 1):
        lines += [f"i{k} = sigmoid(linear(x, h))", f"g{k} = tanh(linear(x, h))"]
    lines.append("c' = f * c + " + " + ".join(f"i{k} * g{k}" for k in range(1, n + 1)))
    lines.append("h' = o * tanh(c')")
    return "\n".join(lines) + "\n"


def fraction(n: int) -> str:
    lines = ["cell fraction", "input x", "state h", "q0 = sigmoid(linear(x, h))"]
    lines += [f"q{k} = 1 / (1 + q{k - 1})" for k in range(1, n)]
    nested = "q0"
    for _ in range(min(n, 33)):  # three levels each, as SymPy nests 1 / (1 + q)
        nested = f"1 / (1 + {nested})"
    lines.append(f"h' = tanh(linear(q{n - 1})) * ({nested})")
    return "\n".join(lines) + "\n"


def calls(n: int) -> str:
    nested = "linear(x, h)"
    for k in range(min(n, 99)):
        nested = f"{('tanh', 'sigmoid')[k % 2]}({nested})"
    return f"cell calls\ninput x\nstate h\nh' = {nested}\n"


SHAPES = {"diamond": diamond, "product": product, "lstm": lstm, "fraction": fraction,
          "calls": calls}
STAGES = ("parse", "build", "derive", "schedule")
TARGETS = ("numpy", "torch", "triton", "cuda", "show", "latex", "markdown", "diagram")


def time_cell(text: str) -> dict[str, float]:
    """Seconds per stage and per target (each target after the shared schedule)."""
    times: dict[str, float] = {}

    def timed(key, fn, *args):
        start = time.perf_counter()
        result = fn(*args)
        times[key] = time.perf_counter() - start
        return result

    path = "bench.gate"
    cf = timed("parse", parse, text, path)
    cell = timed("build", build, cf)
    derived = timed("derive", derive, cell)
    plan = timed("schedule", schedule, derived)
    timed("numpy", emit_numpy, plan, path)
    timed("torch", emit_torch, plan, path)
    timed("triton", emit_triton, plan, path)
    timed("cuda", emit_cuda, plan, path)
    timed("show", render_plan, plan)
    # the documentation targets parse and build on their own (they print the syntax tree)
    timed("latex", latex.render, text, path, "tex")
    timed("markdown", latex.render, text, path, "md", True, "bench")
    timed("diagram", diagram_text, text, path)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 50, 200])
    ap.add_argument("--shapes", nargs="+", choices=sorted(SHAPES), default=list(SHAPES))
    ap.add_argument("--budget", type=float, default=120.0,
                    help="skip a shape's larger sizes once one size takes longer (seconds)")
    args = ap.parse_args()
    columns = [*STAGES, *TARGETS]
    head = f"{'shape':>9} {'N':>4} {'stmts':>5} " + " ".join(f"{c:>8}" for c in columns)
    print("milliseconds per statement for each stage and target, then every stage and "
          "target together: seconds, and milliseconds per statement")
    print(head + f" {'all (s)':>8} {'ms/stmt':>8}")
    for shape in args.shapes:
        for n in sorted(args.sizes):
            text = SHAPES[shape](n)
            statements = sum(1 for line in text.splitlines() if " = " in line)
            start = time.perf_counter()
            times = time_cell(text)
            total = time.perf_counter() - start
            cells = " ".join(f"{1e3 * times[c] / statements:8.2f}" for c in columns)
            print(f"{shape:>9} {n:>4} {statements:>5} {cells} {total:8.2f} "
                  f"{1e3 * total / statements:8.2f}", flush=True)
            if total > args.budget:
                print(f"{shape:>9}: over the budget of {args.budget:.0f} s, larger sizes skipped")
                break


if __name__ == "__main__":
    main()

"""Compile cost grows linearly with the cell: a chain of statements that each read the
previous one twice, and a long product, give code whose size is proportional to their
length (before, each link of the chain doubled the inlined adjoint expressions).
Sizes are counted, not timed."""

import importlib
import re

import numpy as np
import sympy
from helpers import small_sizes

from gatespec import ir
from gatespec.build import build
from gatespec.check import finite_difference_check, load_module
from gatespec.derive import derive
from gatespec.derive.derive import MAX_FACTORS
from gatespec.emit import emit_numpy
from gatespec.parse import parse
from gatespec.schedule import BlockOp, schedule

schedule_module = importlib.import_module("gatespec.schedule.schedule")


def diamond(n: int, scale: str = "") -> str:
    """q_k = q_{k-1} * q_{k-1} + sigmoid(q_{k-1}): each statement reads the previous twice.
    `scale` "0.5 * " keeps the values bounded, for a numerical check."""
    lines = ["cell diamond", "input x", "state h", "q0 = tanh(linear(x, h))"]
    lines += [f"q{k} = {scale}q{k - 1} * q{k - 1} + {scale}sigmoid(q{k - 1})"
              for k in range(1, n)]
    lines.append(f"h' = tanh(linear(x, q{n - 1}))")
    return "\n".join(lines) + "\n"


def gate_product(n: int) -> str:
    lines = ["cell product", "input x", "state h"]
    lines += [f"g{k} = sigmoid(linear(x, h))" for k in range(n)]
    lines.append("h' = " + " * ".join(f"g{k}" for k in range(n)))
    return "\n".join(lines) + "\n"


def plan_of(text: str):
    return schedule(derive(build(parse(text, "grow.gate"))))


def code_lines(text: str) -> int:
    return len(emit_numpy(plan_of(text), "grow.gate").splitlines())


def largest_expression(plan) -> int:
    """Nodes of the largest expression a block assigns, as printed."""
    def size(e):
        return 1 + sum(size(a) for a in e.args)
    return max(size(e) for op in [*plan.loop_backward, *plan.static_backward]
               if isinstance(op, BlockOp) for _, e in op.block.assigns)


def test_diamond_chain_code_grows_linearly():
    base = code_lines(diamond(2))  # what does not depend on the length
    small, large = code_lines(diamond(40)) - base, code_lines(diamond(80)) - base
    assert 1.8 < large / small < 2.2, (small, large)


def test_diamond_chain_adjoints_stay_small():
    """However long the chain, no backward expression is larger than a few links."""
    assert largest_expression(plan_of(diamond(60))) <= largest_expression(plan_of(diamond(20)))
    assert largest_expression(plan_of(diamond(60))) < 200


def test_long_product_is_split_and_grows_linearly():
    derived = derive(build(parse(gate_product(64), "grow.gate")))
    factors = [len(m.args) for n in derived.nodes if isinstance(n, ir.Pointwise)
               for m in n.expr.atoms(sympy.Mul)]
    assert max(factors) <= MAX_FACTORS
    base = code_lines(gate_product(2))
    small, large = code_lines(gate_product(32)) - base, code_lines(gate_product(64)) - base
    assert 1.8 < large / small < 2.2, (small, large)


def test_deep_diamond_cell_passes_finite_differences():
    """A chain long enough that some of its adjoints keep their names (d_q5, d_q1) still
    has the gradients finite differences measure (longer chains' gradients vanish below
    what finite differences resolve)."""
    plan = plan_of(diamond(10, "0.5 * "))
    named = {sym.name for op in plan.loop_backward if isinstance(op, BlockOp)
             for sym, _ in op.block.assigns}
    assert {"d_q5", "d_q1"} <= named
    module = load_module(emit_numpy(plan, "grow.gate"), "grow_numpy")
    result = finite_difference_check(module, seed=3)
    assert result.worst < 1e-6, result.errors
    assert result.step_error < 1e-12


def test_named_adjoints_give_the_gradients_of_full_inlining(monkeypatch):
    """The same chain scheduled as before (every adjoint inlined, exponential in the chain's
    length, still quick at 14 links) gives the same gradients to rounding."""
    text = diamond(14, "0.5 * ")
    named_text = emit_numpy(plan_of(text), "grow.gate")
    monkeypatch.setattr(schedule_module, "INLINE_LIMIT", 10**9)
    inlined_text = emit_numpy(plan_of(text), "grow.gate")
    assigned = re.compile(r"^\s+d_q5 = ", re.M)
    assert assigned.search(named_text) and not assigned.search(inlined_text)
    named = load_module(named_text, "grow_named")
    inlined = load_module(inlined_text, "grow_inlined")
    rng = np.random.default_rng(0)
    sizes = small_sizes(named)
    params = named.init_params(sizes, rng)
    x = rng.standard_normal((5, 3, sizes["input"]))
    grads = []
    for module in (named, inlined):
        outputs, final, cache = module.forward(x, None, params)
        d_out = np.ones_like(outputs)
        grads.append(module.backward(d_out, None, cache, params))
    (dx, ds, dp), (dx2, ds2, dp2) = grads
    np.testing.assert_allclose(dx, dx2, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(ds[0], ds2[0], rtol=1e-12, atol=1e-15)
    for name in dp:
        np.testing.assert_allclose(dp[name], dp2[name], rtol=1e-12, atol=1e-15)

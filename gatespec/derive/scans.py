"""Which states are linear recurrences, s_t = a_t * s_{t-1} + b_t with a_t, b_t reading no state.

Such a state needs no sequential loop: an associative scan over time computes it (Blelloch
1990; Martin & Cundy 2018; Feng et al. 2024). This module only decides, for each state, whether
its update has that form and, if not, why, in the words of the cell file.

One pass over the nodes in order, per state: each node is classed as free of the state,
affine in it (element-wise, with coefficients that read no state), or neither. A pointwise
node reading affine nodes is checked with SymPy on its own expression only, each affine operand
replaced by alpha * sigma + beta: it is affine when its derivative in sigma no longer contains
sigma. Nothing is inlined, so the cost grows with the cell.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy

from gatespec import ir


@dataclass(frozen=True)
class Scan:
    """A state whose update is affine in its previous value."""

    state: str  # label, as in the cell file
    # the coefficient a_t is 0: the state does not read its previous value at all
    constant: bool = False


@dataclass(frozen=True)
class Sequential:
    """A state that needs the step-by-step loop, and why."""

    state: str
    why: str


Verdict = Scan | Sequential


@dataclass(frozen=True)
class _Class:
    kind: str  # "free" | "affine" | "other"
    reads: frozenset[str] = frozenset()  # other states' labels its value or coefficients read
    why: str = ""  # for "other": the first reason met


def find_scans(cell: ir.Cell) -> dict[str, Verdict]:
    """State label → Scan or Sequential, in declaration order."""
    return {s.label: _verdict(cell, s) for s in cell.states}


def scanned_states(cell: ir.Cell) -> list[str]:
    return [label for label, v in find_scans(cell).items() if isinstance(v, Scan)]


def _verdict(cell: ir.Cell, state: ir.Leaf) -> Verdict:
    classes: dict[str, _Class] = {}
    labels = _user_labels(cell)
    for node in cell.nodes:
        classes[node.name] = _classify(node, state, classes, labels)
    final = classes[cell.updates[state.label]]
    if final.kind == "other":
        return Sequential(state.label, final.why)
    if final.reads:
        others = ", ".join(sorted(final.reads))
        return Sequential(state.label, f"its update reads the state{'s' if len(final.reads) > 1 else ''} "
                                       f"{others}, so its coefficients are not known before the loop")
    return Scan(state.label, constant=final.kind == "free")


def _user_labels(cell: ir.Cell) -> dict[str, str]:
    """Node name → how a message names it: a user's variable by its label, a matrix product
    by the line that reads it and its weight."""
    states = set(cell.state_names)
    lines = {n.name: (o + "'" if o in states else o)
             for n in cell.nodes if isinstance(n, ir.MatMul)
             for o in [cell.params[n.weight].owner]}
    return {n.name: (f"{lines[n.name]} reads {{s}} through the matrix {n.weight}"
                     if isinstance(n, ir.MatMul) else n.label) for n in cell.nodes}


def _classify(node: ir.Node, state: ir.Leaf, classes: dict[str, _Class],
              labels: dict[str, str]) -> _Class:
    s = state.label
    if isinstance(node, ir.Leaf):
        if node.kind != "state":
            return _Class("free")
        if node.name == state.name:
            return _Class("affine")
        return _Class("free", frozenset({node.label}))
    operands = [classes[d] for d in ir.deps(node)]
    reads = frozenset().union(*(c.reads for c in operands)) if operands else frozenset()
    bad = next((c for c in operands if c.kind == "other"), None)
    if bad is not None:
        return bad
    if all(c.kind == "free" for c in operands):
        return _Class("free", reads)
    name = labels[node.name]
    if isinstance(node, ir.MatMul):
        return _Class("other", why=name.format(s=s) + ", which mixes its units")
    if isinstance(node, ir.Row):
        return _Class("other", why=f"a {node.kind} reads {s} and reduces over its units")
    if not _affine(node, classes):
        return _Class("other", why=f"{name} is not affine in {s} (line of {node.label})"
                      if name != node.label else f"{name} is not affine in {s}")
    return _Class("affine", reads)


def _affine(node: ir.Pointwise, classes: dict[str, _Class]) -> bool:
    sigma = sympy.Dummy("sigma", real=True)
    subs = {}
    for sym in node.expr.free_symbols:
        if classes.get(sym.name, _Class("free")).kind == "affine":
            alpha = sympy.Dummy(f"alpha_{sym.name}", real=True)
            beta = sympy.Dummy(f"beta_{sym.name}", real=True)
            subs[sym] = alpha * sigma + beta
    slope = sympy.diff(node.expr.xreplace(subs), sigma)
    return sigma not in slope.free_symbols

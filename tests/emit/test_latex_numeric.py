"""The printed backward equations are right: the SymPy equations they are printed
from, evaluated step by step with NumPy exactly as the page reads (index t+1 is the
next step, ∂L/∂v_t the loss's direct dependence), give the same gradients as the
generated NumPy module for every built-in cell.

A layer norm's vectors are computed here from its definition on the page:
û = (u − ⟨u⟩) / s with s = sqrt(⟨(u − ⟨u⟩)²⟩ + 1e-5), output ℓ = α ⊙ û + β; ⟨·⟩ is
the mean over the units. An RMS norm's: û = u / s with s = sqrt(⟨u²⟩ + 1e-5); a softmax's
ℓ_k = exp(u_k) / Σ_j exp(u_j); a cumax's p = softmax(u) and ℓ_k = Σ_{j ≤ k} p_j."""

import numpy as np
import pytest
import sympy

from gatespec import cells, ir
from gatespec.check import load_module, sizes_for
from gatespec.derive import functions as fn
from gatespec.emit.latex import cell_equations
from gatespec.emit.latex_backward import BackwardEquations
from gatespec.emit.latex_sympy import LATER, RevCumsum, Transposed, UnitMean, UnitSum
from gatespec.pipeline import generate, load_source


def _sigmoid(a):
    return 1 / (1 + np.exp(-a))


NUMPY = {
    "sigmoid": _sigmoid, "tanh": np.tanh, "relu": lambda a: np.maximum(a, 0), "exp": np.exp,
    "log": np.log, "softplus": lambda a: np.logaddexp(0, a),
    "logsigmoid": lambda a: -np.logaddexp(0, -a),
    "hard_sigmoid": lambda a: np.clip(a / 6 + 0.5, 0, 1), "hard_tanh": lambda a: np.clip(a, -1, 1),
    "abs": np.abs, "sqrt": np.sqrt, "softsign": lambda a: a / (1 + np.abs(a)),
    "silu": lambda a: a * _sigmoid(a), "max": np.maximum, "min": np.minimum,
    "expm1": np.expm1, "sign": np.sign, "positive": lambda a: (a > 0) * 1.0,
    "in_unit": lambda a: ((a > 0) & (a < 1)) * 1.0,
    "in_symmetric_unit": lambda a: ((a > -1) & (a < 1)) * 1.0,
    "greater_equal": lambda a, b: (a >= b) * 1.0, "less": lambda a, b: (a < b) * 1.0,
}


def evaluate(e, env):
    if isinstance(e, sympy.Symbol):
        if e.name not in env and e.name.startswith("d:") and e.name.endswith(LATER):
            return 0.0  # at t = T the terms at T + 1 are zero
        return env[e.name]
    if e.is_Number:
        return float(e)
    if isinstance(e, sympy.Add):
        return sum(evaluate(a, env) for a in e.args)
    if isinstance(e, sympy.Mul):
        out = 1.0
        for a in e.args:
            out = out * evaluate(a, env)
        return out
    if isinstance(e, sympy.Pow):
        return evaluate(e.base, env) ** float(e.exp)
    if isinstance(e, Transposed):
        weight, v = e.args
        w = env[weight.name]
        return w.T @ (evaluate(v, env) * np.ones(w.shape[0]))
    if isinstance(e, UnitSum):
        return np.sum(evaluate(e.args[0], env))
    if isinstance(e, RevCumsum):  # v_k + v_{k+1} + ... + v_n, written out
        v = evaluate(e.args[0], env)
        return np.array([v[k:].sum() for k in range(len(v))])
    if isinstance(e, UnitMean):  # one vector (batch row 0) -> one number
        return np.mean(evaluate(e.args[0], env))
    if isinstance(e, fn.Elementwise):
        return NUMPY[type(e).__name__](*(evaluate(a, env) for a in e.args))
    raise AssertionError(f"cannot evaluate {type(e).__name__}")


def forward_values(derived, params, x, state0, extras=None):
    """Every node's value at every step t = 1..T (index 0 unused); extras: the further
    input sequences by name."""
    cell = derived.cell
    values = [None]
    prev = dict(state0)
    for t in range(len(x)):
        env = {**params, cell.input.name: x[t], **{k: v[t] for k, v in (extras or {}).items()}}
        for s in cell.states:
            env[s.name] = prev[s.label]
        for n in derived.nodes:
            if isinstance(n, ir.MatMul):
                env[n.name] = params[n.weight] @ env[n.operand]
            elif isinstance(n, ir.Pointwise):
                env[n.name] = evaluate(n.expr, env)
            elif isinstance(n, ir.Row) and n.kind in ("layernorm", "rmsnorm"):
                u = env[n.operand]
                centred = u - u.mean() if n.kind == "layernorm" else u
                s = np.sqrt(np.mean(centred ** 2) + 1e-5)
                hat = centred / s
                env[BackwardEquations.ln_hat(n.name).name] = hat
                env[BackwardEquations.ln_std(n.name).name] = s
                env[n.name] = params[n.gain] * hat + (params[n.bias] if n.bias else 0.0)
            elif isinstance(n, ir.Row):
                u = env[n.operand]
                p = np.exp(u) / np.exp(u).sum()  # small test values: no overflow
                env[BackwardEquations.ln_soft(n.name).name] = p
                env[n.name] = p if n.kind == "softmax" else np.array(
                    [p[:k + 1].sum() for k in range(len(p))])
        values.append(env)
        prev = {s.label: env[new] for s, new in zip(cell.states, cell.updates.values(),
                                                    strict=True)}
    return values


def later(values: dict) -> dict:
    return {k + LATER: v for k, v in values.items()}


# Cells whose adjoints take the printer's less common paths: a linear map inside a
# product inside an activation (its own adjoint name), an activation of a linear map
# that is not the statement's root, a negation, a quotient and a sum that reads a state
# twice.
EXTRA = {
    "nested": """cell nested
input x[hidden]
state h
h' = tanh(x * linear(h, bias=false))
""",
    "lifted": """cell lifted
input x
state h, c
o = sigmoid(linear(x, h))
c' = c - 0.5 * tanh(linear(h) + c) / (2 + exp(-c))
h' = o * tanh(linear(x, c')) + -h
""",
    # layer norms of a linear map with a bias (a statement of its own), of a product
    # that reads another, input-only, layer norm, and of the previous and new states
    "layernorms": """cell layernorms
input x[hidden]
state h, c
a = layernorm(linear(x, h))
o = sigmoid(layernorm(layernorm(x, bias=false) * h) + linear(c))
c' = c - 0.5 * tanh(a) * layernorm(c, bias=false)
h' = o * tanh(layernorm(c')) + layernorm(h)
""",
    # the other row reductions: an RMS norm with and without a bias, a softmax of a state,
    # a cumax of the input (input-only) and one of a softmax on the same line (a primed label)
    "rows": """cell rows
input x[hidden]
state h, c
a = rmsnorm(linear(x, h))
q = cumax(softmax(h) + c)
c' = c - 0.5 * tanh(a) * cumax(x) + q
h' = tanh(rmsnorm(c', bias=true)) * softmax(linear(h, bias=false))
""",
}


@pytest.fixture(params=[*cells.names(), *EXTRA])
def spec(request, tmp_path):
    if request.param not in EXTRA:
        return request.param
    path = tmp_path / f"{request.param}.gate"
    path.write_text(EXTRA[request.param])
    return str(path)


def test_printed_backward_equations_give_the_generated_gradients(spec):
    (fname, source), = generate(spec, "numpy").items()
    module = load_module(source, fname[:-3] + "_numeric")
    rng = np.random.default_rng(7)
    sizes = sizes_for(module)
    params = {k: 2.0 * v for k, v in module.init_params(sizes, rng).items()}
    T = 4
    x = rng.normal(size=(T, 1, sizes[module.INPUT_SIZE]))
    state0 = tuple(0.5 * rng.normal(size=(1, sizes[module.STATE_SIZES[s]]))
                   for s in module.STATES)
    extras = {name: rng.normal(size=(T, 1, sizes[size]))
              for name, size in getattr(module, "EXTRA_INPUTS", {}).items()}
    masks = {name: (rng.random((T, 1, sizes[size])) >= rate) / (1.0 if kind == "zoneout" else 1 - rate)
             for name, (size, kind, rate, _) in getattr(module, "MASKS", {}).items()}
    outputs, final, cache = module.forward(x, state0, params, **extras,
                                           **({"masks": masks} if masks else {}))
    g_out = rng.normal(size=outputs.shape)
    g_fin = tuple(rng.normal(size=f.shape) for f in final)
    dx, d_state0, d_params, *d_extras = module.backward(g_out, g_fin, cache, params)

    eqs = cell_equations(*load_source(spec))
    d, back = eqs.derived, eqs.backward
    cell = d.cell
    steps = back.step_equations(eqs.order)
    grads = back.parameter_gradients()
    # a weight used again (weight=W or W.T) is a view of it, whose gradient adds into W's
    views = {v.name: v for v in cell.views}
    params_all = {**params, **{v.name: params[v.source].T if v.transpose else params[v.source]
                               for v in views.values()}}
    values = forward_values(d, params_all, x[:, 0], {s: v[0] for s, v in zip(module.STATES, state0,
                                                                             strict=True)},
                            {k: v[:, 0] for k, v in {**extras, **masks}.items()})
    assert np.allclose(values[T][cell.output], outputs[T - 1, 0])

    new_of = dict(zip(cell.updates.values(), cell.state_names, strict=True))
    adjoints_later: dict = {}
    dx_eq = np.zeros_like(x[:, 0])
    d_extras_eq = {k: np.zeros_like(v[:, 0]) for k, v in extras.items()}
    dparams_eq = {p: np.zeros_like(v) for p, v in params_all.items()}
    for t in range(T, 0, -1):
        env = {**values[t], **later(values[min(t + 1, T)]), **adjoints_later}
        for node in dict.fromkeys([cell.output, *cell.updates.values()]):  # the seeds
            direct = np.zeros_like(values[t][node])
            if node == cell.output:
                direct += g_out[t - 1, 0]
            if node in new_of and t == T:
                direct += g_fin[module.STATES.index(new_of[node])][0]
            env[f"dL:{node}"] = direct
        for eq in steps:  # in the printed order: each reads only those before it
            env[eq.lhs.name] = sum((evaluate(term, env) for term in eq.terms), 0.0)
        dx_eq[t - 1] = env[f"d:{cell.input.name}"]
        for k in extras:  # the printed equations of the further inputs' gradients
            d_extras_eq[k][t - 1] = env[f"d:{k}"]
        for g in grads:
            summand = evaluate(g.summand, env)
            if g.operand is None:
                dparams_eq[g.param] += summand
            else:
                dparams_eq[g.param] += np.outer(summand, values[t][g.operand])
        adjoints_later = {k + LATER: v for k, v in env.items()
                          if k.startswith("d:") and not k.endswith(LATER)}

    # the initial states' gradients: the t+1 part of each state's equation, at t = 0
    env0 = {**params_all, **later(values[1]), **adjoints_later}
    for k, s in enumerate(module.STATES):
        got = sum((evaluate(term, env0) for term in back.carried(s)), 0.0)
        assert np.allclose(got, d_state0[k][0], rtol=1e-9, atol=1e-11), s
    assert np.allclose(dx_eq, dx[:, 0], rtol=1e-9, atol=1e-11)
    for v in views.values():
        dparams_eq[v.source] = dparams_eq[v.source] + (dparams_eq.pop(v.name).T if v.transpose
                                                       else dparams_eq.pop(v.name))
    for k in extras:
        assert np.allclose(d_extras_eq[k], d_extras[0][k][:, 0], rtol=1e-9, atol=1e-11), k
    for p in params:
        assert np.allclose(dparams_eq[p], d_params[p], rtol=1e-9, atol=1e-11), p

"""How each array library spells what the generated code needs.

A dialect is configuration, not logic (after SymForce's backend configs): the
spelling of every element-wise function, the helpers a module defines when its
expressions use them, and the few array operations the line builder prints.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from gatespec import ir
from gatespec.derive import functions as fn

Spelling = str | Callable[[list[str], tuple], str]


@dataclass(frozen=True)
class Dialect:
    name: str
    functions: dict[type, Spelling]
    helpers: dict[str, str]
    helper_needs: dict[str, list[str]] = field(default_factory=dict)
    empty_fmt: str = ""
    zeros_fmt: str = ""
    concat_fmt: str = ""
    concat_last_fmt: str = ""  # along the last axis
    sum01_fmt: str = ""
    zeros_like_fmt: str = ""
    matmul_all_fmt: str = ""
    # spellings that write into a given array: elementwise add and multiply, and the
    # functions whose spelling accepts `out=`
    addmm_fmt: str = ""  # c + a @ b
    add_fn: str = ""
    mul_fn: str = ""
    out_functions: frozenset = frozenset()

    def empty(self, shape: str) -> str:
        return self.empty_fmt.format(shape=shape)

    def zeros(self, shape: str) -> str:
        return self.zeros_fmt.format(shape=shape)

    def concat(self, names: list[str]) -> str:
        return self.concat_fmt.format(items=", ".join(names))

    def concat_last(self, names: list[str]) -> str:
        return self.concat_last_fmt.format(items=", ".join(names))

    def sum01(self, expr: str) -> str:
        return self.sum01_fmt.format(expr)

    def zeros_like(self, expr: str) -> str:
        return self.zeros_like_fmt.format(expr)

    def addmm(self, c: str, a: str, b: str) -> str:
        return self.addmm_fmt.format(c=c, a=a, b=b)

    def matmul_all(self, a: str, w: str) -> str:
        """a @ w for an array with any number of leading axes, as one matrix product."""
        return self.matmul_all_fmt.format(a, w)


def _layernorm_helpers(mean_args: str, rsqrt: str) -> dict[str, str]:
    """Layer norm over the last axis and its backward, for an array library's spelling of
    mean(..., keeping the axis) and 1/sqrt."""
    return {
        "_layernorm": (
            f"def _layernorm(u, gain, bias, eps={ir.EPSILON!r}):\n"
            '    """Layer normalisation over the last axis: (y, normalised u, 1 / deviation)."""\n'
            f"    centred = u - u.mean({mean_args})\n"
            f"    rstd = {rsqrt}((centred * centred).mean({mean_args}) + eps)\n"
            "    xhat = centred * rstd\n"
            "    return xhat * gain + bias, xhat, rstd\n"
        ),
        "_layernorm_backward": (
            "def _layernorm_backward(dy, xhat, rstd, gain):\n"
            '    """The adjoint of a layer norm\'s input from its output\'s."""\n'
            "    g = dy * gain\n"
            f"    mean_g = g.mean({mean_args})\n"
            f"    mean_gx = (g * xhat).mean({mean_args})\n"
            "    return rstd * (g - mean_g - xhat * mean_gx)\n"
        ),
    }


def _row_helpers(lib: str, mean_args: str, rsqrt: str, amax: str, flip: str) -> dict[str, str]:
    """RMS norm, softmax and cumax over the last axis, each with its backward, in an array
    library's spelling: `lib` its module (exp, cumsum), `amax` the method of a row's maximum,
    `flip` how it reverses the last axis."""
    return {
        "_rmsnorm": (
            f"def _rmsnorm(u, gain, bias, eps={ir.EPSILON!r}):\n"
            '    """RMS normalisation over the last axis: (y, normalised u, 1 / root mean square)."""\n'
            f"    rstd = {rsqrt}((u * u).mean({mean_args}) + eps)\n"
            "    xhat = u * rstd\n"
            "    return xhat * gain + bias, xhat, rstd\n"
        ),
        "_rmsnorm_backward": (
            "def _rmsnorm_backward(dy, xhat, rstd, gain):\n"
            '    """The adjoint of an RMS norm\'s input from its output\'s."""\n'
            "    g = dy * gain\n"
            f"    return rstd * (g - xhat * (g * xhat).mean({mean_args}))\n"
        ),
        "_softmax": (
            "def _softmax(u):\n"
            '    """Softmax over the last axis, less the row maximum first (no overflow): (y, y)."""\n'
            f"    e = {lib}.exp(u - u.{amax}({mean_args}))\n"
            f"    y = e / e.sum({mean_args})\n"
            "    return y, y\n"
        ),
        "_softmax_backward": (
            "def _softmax_backward(dy, y):\n"
            '    """The adjoint of a softmax\'s input from its output\'s: y (dy - <dy, y>)."""\n'
            f"    return y * (dy - (dy * y).sum({mean_args}))\n"
        ),
        "_cumax": (
            "def _cumax(u):\n"
            '    """cumsum(softmax(u)) over the last axis (Shen et al. 2019): (y, the softmax)."""\n'
            "    s = _softmax(u)[0]\n"
            f"    return {lib}.cumsum(s, -1), s\n"
        ),
        "_cumax_backward": (
            "def _cumax_backward(dy, s):\n"
            '    """The adjoint of cumax\'s input: the softmax\'s backward of dy summed from the end."""\n'
            f"    ds = {flip.format(f'{lib}.cumsum(' + flip.format('dy') + ', -1)')}\n"
            f"    return s * (ds - (ds * s).sum({mean_args}))\n"
        ),
    }


def _scan_helpers(lib: str, as_array: str, new: str, reverse: str, where: str, fma: str,
                  mul: str) -> dict[str, str]:
    """The linear recurrence s_t = a_t * s_{t-1} + b_t over all steps (the scan path, see
    gatespec/emit/scan_lines.py), and its reverse, in an array library's spelling."""
    return {
        "_scan": (
            "def _scan(a, b, s0, T, active=None):\n"
            '    """s_t = a_t * s_{t-1} + b_t for t = 0 .. T-1 from s_{-1} = s0, all steps at once.\n'
            "\n"
            "    Chunks of about sqrt(T) steps run side by side from zero, each keeping the running\n"
            "    product of its a; one pass over the chunks then carries the state across them.\n"
            "    Only products and sums, as in the step-by-step loop: a product that underflows is\n"
            "    a weight that vanishes, never a divisor. active: None, or a (T, B, 1) mask of the\n"
            '    rows each step runs; elsewhere a = 1, b = 0 carry the state unchanged."""\n'
            "    shape = (T, *s0.shape)\n"
            f"    a, b = {as_array.format('a')}, {as_array.format('b')}\n"
            "    if active is not None:\n"
            f"        a, b = {where.format('active', 'a', '1')}, {where.format('active', 'b', '0')}\n"
            "    L = max(1, int(T ** 0.5))  # steps per chunk\n"
            "    C = -(-T // L)  # chunks\n"
            "    if C * L != T:  # padding steps with a = 1, b = 0 carry the state unchanged\n"
            f"        a = {lib}([a, {new.format('ones', '(C * L - T, *s0.shape)')}])\n"
            f"        b = {lib}([b, {new.format('zeros', '(C * L - T, *s0.shape)')}])\n"
            "    a, b = a.reshape(C, L, *s0.shape), b.reshape(C, L, *s0.shape)\n"
            f"    local, prod = {new.format('empty', '(C, L, *s0.shape)')}, {new.format('empty', '(C, L, *s0.shape)')}\n"
            "    local[:, 0], prod[:, 0] = b[:, 0], a[:, 0]\n"
            "    for k in range(1, L):  # within each chunk, from zero (in place: no temporaries)\n"
            f"        {fma.format('local[:, k]', 'a[:, k]', 'local[:, k - 1]', 'b[:, k]')}\n"
            f"        {mul.format('prod[:, k]', 'a[:, k]', 'prod[:, k - 1]')}\n"
            f"    carry, s = {new.format('empty', '(C, *s0.shape)')}, s0\n"
            "    for c in range(C):  # across the chunks: the state entering each\n"
            "        carry[c] = s\n"
            "        s = prod[c, -1] * s + local[c, -1]\n"
            "    return (local + prod * carry[:, None]).reshape(C * L, *s0.shape)[:T]\n"
        ),
        "_scan_reverse": (
            "def _scan_reverse(a, g, s_end, T, active=None):\n"
            '    """p_t = a_t * p_{t+1} + g_t for t = T-1 .. 0 from p_T = s_end: a scan backwards."""\n'
            "    shape = (T, *s_end.shape)\n"
            f"    a, g = {as_array.format('a').replace('s0', 's_end')}, {as_array.format('g').replace('s0', 's_end')}\n"
            "    if active is not None:\n"
            f"        a, g = {where.format('active', 'a', '1')}, {where.format('active', 'g', '0')}\n"
            f"    return {reverse.format('_scan(' + reverse.format('a') + ', ' + reverse.format('g') + ', s_end, T)')}\n"
        ),
    }


def _hard_sigmoid(clip: str) -> Callable[[list[str], tuple], str]:
    """clip(a / 6 + 1/2, 0, 1), with the operand grouped when it is a sum (`u - c`)."""

    def spell(args: list[str], exprs: tuple) -> str:
        operand = args[0] if exprs[0].is_Atom or exprs[0].is_Function else f"({args[0]})"
        return f"{clip}({operand} / 6 + 0.5, 0, 1)"

    return spell


NUMPY = Dialect(
    name="numpy",
    functions={
        fn.Sigmoid: "_sigmoid({0})",
        fn.Tanh: "np.tanh({0})",
        fn.Relu: "np.maximum({0}, 0)",
        fn.Exp: "np.exp({0})",
        fn.Log: "np.log({0})",
        fn.Softplus: "np.logaddexp(0, {0})",
        fn.LogSigmoid: "_logsigmoid({0})",
        fn.HardSigmoid: _hard_sigmoid("np.clip"),
        fn.HardTanh: "np.clip({0}, -1, 1)",
        fn.Abs: "np.abs({0})",
        fn.Sqrt: "np.sqrt({0})",
        fn.Softsign: "_softsign({0})",
        fn.Silu: "_silu({0})",
        fn.Max: "np.maximum({0}, {1})",
        fn.Min: "np.minimum({0}, {1})",
        fn.Expm1: "np.expm1({0})",
        fn.Sign: "np.sign({0})",
        fn.Positive: "({0} > 0).astype(dtype)",
        fn.InUnit: "(({0} > 0) & ({0} < 1)).astype(dtype)",
        fn.InSymmetricUnit: "(np.abs({0}) < 1).astype(dtype)",
        fn.GreaterEqual: "({0} >= {1}).astype(dtype)",
        fn.Less: "({0} < {1}).astype(dtype)",
    },
    # Each helper is numerically stable for arguments of any size (no overflow warnings).
    helpers={
        "_sigmoid": (
            "def _sigmoid(a, out=None):\n"
            '    """Logistic function via tanh: exact to rounding, no overflow for any a."""\n'
            "    out = np.multiply(a, 0.5, out=out)\n"
            "    np.tanh(out, out=out)\n"
            "    out *= 0.5\n"
            "    out += 0.5\n"
            "    return out\n"
        ),
        "_logsigmoid": "def _logsigmoid(a):\n    return -np.logaddexp(0, -a)\n",
        "_softsign": "def _softsign(a):\n    return a / (1 + np.abs(a))\n",
        "_silu": "def _silu(a):\n    return a * _sigmoid(a)\n",
        **_layernorm_helpers("axis=-1, keepdims=True", "1 / np.sqrt"),
        **_row_helpers("np", "axis=-1, keepdims=True", "1 / np.sqrt", "max", "{0}[..., ::-1]"),
        **_scan_helpers("np.concatenate", "np.broadcast_to(np.asarray({0}, s0.dtype), shape)",
                        "np.{0}({1}, s0.dtype)", "{0}[::-1]", "np.where({0}, {1}, {2})",
                        "np.multiply({1}, {2}, out={0})\n        {0} += {3}",
                        "np.multiply({1}, {2}, out={0})"),
    },
    helper_needs={"_silu": ["_sigmoid"], "_scan_reverse": ["_scan"], "_cumax": ["_softmax"]},
    empty_fmt="np.empty(({shape}), dtype)",
    zeros_fmt="np.zeros(({shape}), dtype)",
    concat_fmt="np.concatenate([{items}])",
    concat_last_fmt="np.concatenate([{items}], axis=-1)",
    sum01_fmt="{}.sum(axis=(0, 1))",
    zeros_like_fmt="np.zeros_like({})",
    matmul_all_fmt="_mm({}, {})",
    addmm_fmt="{c} + {a} @ {b}",
    add_fn="np.add",
    mul_fn="np.multiply",
    out_functions=frozenset({fn.Sigmoid, fn.Tanh, fn.Relu, fn.Exp, fn.Log, fn.Softplus,
                             fn.Abs, fn.Sqrt, fn.Max, fn.Min, fn.Expm1, fn.Sign}),
)


def _torch_extremum(name: str, clamp: str) -> Callable[[list[str], tuple], str]:
    """torch.maximum needs two tensors; against a constant use clamp(min=/max=)."""

    def spell(args: list[str], exprs: tuple) -> str:
        if exprs[1].is_Number:
            return f"torch.clamp({args[0]}, {clamp}={args[1]})"
        if exprs[0].is_Number:
            return f"torch.clamp({args[1]}, {clamp}={args[0]})"
        return f"torch.{name}({args[0]}, {args[1]})"

    return spell


def _torch_compare(op: str) -> Callable[[list[str], tuple], str]:
    return lambda args, exprs: f"({args[0]} {op} {args[1]}).to(dtype)"


TORCH = Dialect(
    name="torch",
    functions={
        fn.Sigmoid: "torch.sigmoid({0})",
        fn.Tanh: "torch.tanh({0})",
        fn.Relu: "torch.relu({0})",
        fn.Exp: "torch.exp({0})",
        fn.Log: "torch.log({0})",
        fn.Softplus: "_softplus({0})",
        fn.LogSigmoid: "F.logsigmoid({0})",
        # not F.hardsigmoid: its float64 backward multiplies by a float32 1/6 (3e-8 off)
        fn.HardSigmoid: _hard_sigmoid("torch.clamp"),
        fn.HardTanh: "torch.clamp({0}, -1, 1)",
        fn.Abs: "torch.abs({0})",
        fn.Sqrt: "torch.sqrt({0})",
        fn.Softsign: "F.softsign({0})",
        fn.Silu: "F.silu({0})",
        fn.Max: _torch_extremum("maximum", "min"),
        fn.Min: _torch_extremum("minimum", "max"),
        fn.Expm1: "torch.expm1({0})",
        fn.Sign: "torch.sign({0})",
        fn.Positive: "({0} > 0).to(dtype)",
        fn.InUnit: "(({0} > 0) & ({0} < 1)).to(dtype)",
        fn.InSymmetricUnit: "(torch.abs({0}) < 1).to(dtype)",
        fn.GreaterEqual: _torch_compare(">="),
        fn.Less: _torch_compare("<"),
    },
    helpers={
        "_softplus": (
            "def _softplus(a):\n"
            '    """log(1 + exp(a)) without a threshold: exact for every a."""\n'
            "    return torch.logaddexp(a, torch.zeros((), dtype=a.dtype, device=a.device))\n"
        ),
        **_layernorm_helpers("dim=-1, keepdim=True", "torch.rsqrt"),
        **_row_helpers("torch", "dim=-1, keepdim=True", "torch.rsqrt", "amax", "{0}.flip(-1)"),
        **_scan_helpers("torch.cat", "torch.as_tensor({0}, dtype=s0.dtype, device=s0.device).broadcast_to(shape)",
                        "s0.new_{0}({1})", "{0}.flip(0)", "torch.where({0}, {1}, {2})",
                        "torch.addcmul({3}, {1}, {2}, out={0})", "torch.mul({1}, {2}, out={0})"),
    },
    helper_needs={"_scan_reverse": ["_scan"], "_cumax": ["_softmax"]},
    empty_fmt="torch.empty(({shape}), dtype=dtype, device=device)",
    zeros_fmt="torch.zeros(({shape}), dtype=dtype, device=device)",
    concat_fmt="torch.cat([{items}])",
    concat_last_fmt="torch.cat([{items}], -1)",
    sum01_fmt="{}.sum(dim=(0, 1))",
    zeros_like_fmt="torch.zeros_like({})",
    matmul_all_fmt="({} @ {})",
    addmm_fmt="torch.addmm({c}, {a}, {b})",
    add_fn="torch.add",
    mul_fn="torch.mul",
    out_functions=frozenset({fn.Sigmoid, fn.Tanh, fn.Exp, fn.Log, fn.Abs, fn.Sqrt,
                             fn.Expm1, fn.Sign}),
)


JAX = Dialect(
    name="jax",
    functions={
        fn.Sigmoid: "jax.nn.sigmoid({0})",
        fn.Tanh: "jnp.tanh({0})",
        fn.Relu: "jnp.maximum({0}, 0)",
        fn.Exp: "jnp.exp({0})",
        fn.Log: "jnp.log({0})",
        fn.Softplus: "jnp.logaddexp(0, {0})",
        fn.LogSigmoid: "jax.nn.log_sigmoid({0})",
        fn.HardSigmoid: _hard_sigmoid("jnp.clip"),
        fn.HardTanh: "jnp.clip({0}, -1, 1)",
        fn.Abs: "jnp.abs({0})",
        fn.Sqrt: "jnp.sqrt({0})",
        fn.Softsign: "_softsign({0})",
        fn.Silu: "jax.nn.silu({0})",
        fn.Max: "jnp.maximum({0}, {1})",
        fn.Min: "jnp.minimum({0}, {1})",
        fn.Expm1: "jnp.expm1({0})",
        fn.Sign: "jnp.sign({0})",
        fn.Positive: "({0} > 0).astype(dtype)",
        fn.InUnit: "(({0} > 0) & ({0} < 1)).astype(dtype)",
        fn.InSymmetricUnit: "(jnp.abs({0}) < 1).astype(dtype)",
        fn.GreaterEqual: "({0} >= {1}).astype(dtype)",
        fn.Less: "({0} < {1}).astype(dtype)",
    },
    helpers={
        "_softsign": "def _softsign(a):\n    return a / (1 + jnp.abs(a))\n",
        **_layernorm_helpers("axis=-1, keepdims=True", "jax.lax.rsqrt"),
        **_row_helpers("jnp", "axis=-1, keepdims=True", "jax.lax.rsqrt", "max", "{0}[..., ::-1]"),
    },
    helper_needs={"_cumax": ["_softmax"]},
    zeros_fmt="jnp.zeros(({shape}), dtype)",
    concat_fmt="jnp.concatenate([{items}])",
    concat_last_fmt="jnp.concatenate([{items}], axis=-1)",
    sum01_fmt="{}.sum(axis=(0, 1))",
    zeros_like_fmt="jnp.zeros_like({})",
    matmul_all_fmt="({} @ {})",
    addmm_fmt="{c} + {a} @ {b}",
)

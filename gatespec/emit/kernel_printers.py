"""Kernel bodies: element-wise statements printed for Triton and for CUDA C++.

Math is done in the compute type (float32 for half, bfloat16 and float32 storage;
float64 for float64). Only operations Triton's interpreter also runs are used:
tanh is written through the sigmoid, which Triton provides everywhere.
"""

from __future__ import annotations

import sympy

from gatespec.derive import functions as fn
from gatespec.emit.printer import CodePrinter, to_float

TRITON = {
    fn.Sigmoid: "tl.sigmoid({0})",
    fn.Tanh: "(2.0 * tl.sigmoid(2.0 * ({0})) - 1.0)",
    fn.Relu: "tl.maximum({0}, 0.0)",
    fn.Exp: "tl.exp({0})",
    fn.Log: "tl.log({0})",
    fn.Softplus: "(tl.maximum({0}, 0.0) + tl.log(1.0 + tl.exp(-tl.abs({0}))))",
    fn.LogSigmoid: "(tl.minimum({0}, 0.0) - tl.log(1.0 + tl.exp(-tl.abs({0}))))",
    fn.HardSigmoid: "tl.minimum(tl.maximum(({0}) / 6.0 + 0.5, 0.0), 1.0)",
    fn.HardTanh: "tl.minimum(tl.maximum({0}, -1.0), 1.0)",
    fn.Abs: "tl.abs({0})",
    fn.Sqrt: "tl.sqrt({0})",
    fn.Softsign: "(({0}) / (1.0 + tl.abs({0})))",
    fn.Silu: "(({0}) * tl.sigmoid({0}))",
    fn.Max: "tl.maximum({0}, {1})",
    fn.Min: "tl.minimum({0}, {1})",
    fn.Expm1: "(tl.exp({0}) - 1.0)",
    fn.Sign: "tl.where(({0}) > 0, 1.0, tl.where(({0}) < 0, -1.0, 0.0))",
    fn.Positive: "tl.where(({0}) > 0, 1.0, 0.0)",
    fn.InUnit: "tl.where((({0}) > 0) & (({0}) < 1), 1.0, 0.0)",
    fn.InSymmetricUnit: "tl.where(tl.abs({0}) < 1, 1.0, 0.0)",
    fn.GreaterEqual: "tl.where(({0}) >= ({1}), 1.0, 0.0)",
    fn.Less: "tl.where(({0}) < ({1}), 1.0, 0.0)",
}

# CUDA C++: S is the compute type; the device helpers live in the .cu template.
CUDA = {
    fn.Sigmoid: "sigmoid_({0})",
    fn.Tanh: "tanh({0})",
    fn.Relu: "fmax({0}, S(0))",
    fn.Exp: "exp({0})",
    fn.Log: "log({0})",
    fn.Softplus: "softplus_({0})",
    fn.LogSigmoid: "(-softplus_(-({0})))",
    fn.HardSigmoid: "fmin(fmax(({0}) / S(6) + S(0.5), S(0)), S(1))",
    fn.HardTanh: "fmin(fmax({0}, S(-1)), S(1))",
    fn.Abs: "fabs({0})",
    fn.Sqrt: "sqrt({0})",
    fn.Softsign: "(({0}) / (S(1) + fabs({0})))",
    fn.Silu: "(({0}) * sigmoid_({0}))",
    fn.Max: "fmax({0}, {1})",
    fn.Min: "fmin({0}, {1})",
    fn.Expm1: "expm1({0})",
    fn.Sign: "S((({0}) > S(0)) - (({0}) < S(0)))",
    fn.Positive: "S(({0}) > S(0))",
    fn.InUnit: "S((({0}) > S(0)) && (({0}) < S(1)))",
    fn.InSymmetricUnit: "S(fabs({0}) < S(1))",
    fn.GreaterEqual: "S(({0}) >= ({1}))",
    fn.Less: "S(({0}) < ({1}))",
}


# C++ on the CPU: V is at::vec::Vectorized<S>, so each statement works on a vector of
# columns (Sleef's vectorised exp, tanh, log where ATen has them). maximum_/minimum_ propagate
# NaN as torch.maximum does; comparisons give 1 or 0 (.gt() and friends, not bit masks).
CPP = {
    fn.Sigmoid: "sigmoid_({0})",
    fn.Tanh: "({0}).tanh()",
    fn.Relu: "maximum_({0}, V(0))",
    fn.Exp: "({0}).exp()",
    fn.Log: "({0}).log()",
    fn.Softplus: "softplus_({0})",
    fn.LogSigmoid: "(-softplus_(-({0})))",
    fn.HardSigmoid: "minimum_(maximum_(({0}) / V(6) + V(0.5), V(0)), V(1))",
    fn.HardTanh: "minimum_(maximum_({0}, V(-1)), V(1))",
    fn.Abs: "({0}).abs()",
    fn.Sqrt: "({0}).sqrt()",
    fn.Softsign: "(({0}) / (V(1) + ({0}).abs()))",
    fn.Silu: "(({0}) * sigmoid_({0}))",
    fn.Max: "maximum_({0}, {1})",
    fn.Min: "minimum_({0}, {1})",
    fn.Expm1: "({0}).expm1()",
    fn.Sign: "sign_({0})",
    fn.Positive: "({0}).gt(V(0))",
    fn.InUnit: "(({0}).gt(V(0)) * ({0}).lt(V(1)))",
    fn.InSymmetricUnit: "({0}).abs().lt(V(1))",
    fn.GreaterEqual: "({0}).ge({1})",
    fn.Less: "({0}).lt({1})",
}


class KernelPrinter(CodePrinter):
    """Integer powers as products (neither target has a fast generic pow); floats explicit."""

    def __init__(self, functions: dict, float_fmt: str, prefix: str = "",
                 infinity: str = "1e999"):
        super().__init__(functions)
        self.float_fmt = float_fmt
        self.infinity = infinity
        self.prefix = prefix  # CUDA locals get v_, so no name shadows a math function

    def _print_Symbol(self, s: sympy.Symbol) -> str:
        return self.prefix + s.name

    def _print_Rational(self, r: sympy.Rational) -> str:
        f = to_float(r)
        if abs(f) == float("inf"):  # see to_float; C++ has no literal for it
            return self.float_fmt.format(f).replace("inf", self.infinity)
        return self.float_fmt.format(f)

    _print_Integer = _print_Rational

    def _print_Half(self, r) -> str:
        return self.float_fmt.format(0.5)

    def _print_Pow(self, expr: sympy.Pow, rational: bool = False) -> str:
        base, exp = expr.args
        if exp.is_Integer and exp != 0:
            factor = self.parenthesize(base, 50)
            product = " * ".join([factor] * abs(int(exp)))
            return f"({product})" if exp > 0 else f"({self.float_fmt.format(1.0)} / ({product}))"
        return super()._print_Pow(expr, rational)


def triton_printer() -> KernelPrinter:
    return KernelPrinter(TRITON, "{!r}")


def cuda_printer() -> KernelPrinter:
    return KernelPrinter(CUDA, "S({!r})", prefix="v_", infinity="INFINITY")


def cpp_printer() -> KernelPrinter:
    return KernelPrinter(CPP, "V({!r})", prefix="v_", infinity="INFINITY")

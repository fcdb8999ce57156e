"""Central finite differences for every built-in cell (gatespec/check.py)."""

import pytest
from helpers import numpy_module, with_wrong_gradient

from gatespec import cells
from gatespec.check import finite_difference_check, load_module
from gatespec.pipeline import generate


@pytest.mark.parametrize("name", cells.names())
def test_finite_differences(name):
    result = finite_difference_check(numpy_module(name), seed=1)
    assert result.worst < 1e-6, result.errors
    assert result.step_error < 1e-12


def test_check_detects_a_wrong_gradient():
    """The check is not vacuous: a corrupted backward pass fails it."""
    result = finite_difference_check(with_wrong_gradient(numpy_module("lstm"), "W_fh", 1e-3),
                                     seed=1)
    assert result.worst > 1e-4 and result.worst_name == "W_fh"


def _module(tmp_path, name, body):
    path = tmp_path / f"{name}.gate"
    path.write_text(f"cell {name}\ninput x\nstate h\n{body}")
    (file, text), = generate(str(path), "numpy").items()
    return load_module(text, file[:-3])


# Correct cells whose gradients are zero or tiny somewhere: plain central differences
# called each of them wrong (relative errors 9e-4, 0.13 and 0.19 before).
TINY = {
    "shut": "f = sigmoid(linear(x) - 30)\nh' = tanh(linear(x, h)) + f\n",
    "saturated": "f = sigmoid(linear(x) + 30)\na = tanh(linear(h) + 12)\n"
                 "h' = tanh(linear(x, h)) * f + a\n",
    "scaled": "a = 1e-9 * tanh(linear(x))\nh' = tanh(linear(x, h)) + a\n",
    # a layer norm does not see a scalar that scales its whole operand: gradient 0, a 0-d
    # array (the check's second look at it once failed on NumPy scalars)
    "scalar_unseen": "h' = layernorm(scalar() * tanh(linear(x, h)))\n",
}


@pytest.mark.parametrize("name", TINY)
def test_tiny_or_zero_correct_gradients_pass(tmp_path, name):
    result = finite_difference_check(_module(tmp_path, name, TINY[name]), seed=1)
    assert result.worst < 1e-6, result.errors


@pytest.mark.parametrize(("name", "key"), [("lstm", "W_fh"), ("gru", "b_r")])
def test_one_wrong_entry_fails(name, key):
    result = finite_difference_check(with_wrong_gradient(numpy_module(name), key, 1e-4), seed=1)
    assert result.worst > 1e-5 and result.worst_name == key, result.errors


def test_one_wrong_entry_of_a_small_gradient_fails(tmp_path):
    """The allowance for finite-difference noise does not hide a real error in a
    gradient a thousand times smaller than the others."""
    mod = _module(tmp_path, "small", "a = 1e-3 * tanh(linear(x))\nh' = tanh(linear(x, h)) + a\n")
    assert finite_difference_check(mod, seed=1).worst < 1e-6
    result = finite_difference_check(with_wrong_gradient(mod, "W_ax", 1e-2), seed=1)
    assert result.worst > 1e-3 and result.worst_name == "W_ax", result.errors


def test_an_entry_whose_step_leaves_the_domain_is_counted_not_compared():
    """A finite difference whose step makes the outputs NaN (a square root of a number
    within the step of 0) says nothing about the gradient: that entry is skipped and
    counted, and the others are still compared."""
    import numpy as np

    mod = numpy_module("srnn")
    params_seen = {}

    class EdgeOfDomain:
        def __getattr__(self, name):
            return getattr(mod, name)

        @staticmethod
        def forward(x, state0, params, **kw):
            first = params_seen.setdefault("b_h", float(params["b_h"][0]))
            out, final, cache = mod.forward(x, state0, params, **kw)
            if params["b_h"][0] > first:  # one side of b_h[0]'s step: outside the domain
                out = np.full_like(out, np.nan)
            return out, final, cache

    result = finite_difference_check(EdgeOfDomain(), seed=1)
    assert result.unchecked == 1 and result.worst < 1e-6, result.errors
    wrong = finite_difference_check(with_wrong_gradient(EdgeOfDomain(), "W_hh", 1e-3), seed=1)
    assert wrong.worst_name == "W_hh" and wrong.worst > 1e-4


def test_a_wrong_scalar_gradient_fails(tmp_path):
    mod = _module(tmp_path, "leaky", "h' = scalar(init=0.5) * h + tanh(linear(x, h))\n")
    assert finite_difference_check(mod, seed=1).worst < 1e-6
    result = finite_difference_check(with_wrong_gradient(mod, "gamma_h", 1e-3), seed=1)
    assert result.worst > 1e-4 and result.worst_name == "gamma_h", result.errors

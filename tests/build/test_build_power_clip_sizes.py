"""Powers, clip() and intermediates with sizes of their own: what they build to, their
size checks and their errors."""

import numpy as np
import pytest
from helpers import numpy_module, small_sizes
from test_build_checks import HEAD, assert_check_error, case, src

from gatespec.build import build
from gatespec.parse import parse


def _cell(*lines):
    return build(parse(src(*lines), "ok.gate"))


def test_own_size_names_a_size_and_its_parameters():
    cell = _cell(*HEAD, "z[k] = tanh(linear(h))", "h' = tanh(linear(x, z))", "y[out] = linear(h')",
                 "output y")
    assert cell.sizes == ["input", "hidden", "k", "out"]
    assert cell.params["W_zh"].shape == ("k", "hidden")
    assert cell.params["W_hz"].shape == ("hidden", "k")
    assert cell.params["W_yh"].shape == ("out", "hidden")
    assert cell.node(cell.output).size == "out"


def test_own_size_may_repeat_a_declared_size():
    cell = _cell("cell c", "input x[e]", "state h", "u[e] = 2 * x", "h' = tanh(linear(u, h))")
    assert cell.params["W_hu"].shape == ("hidden", "e")


CASES = [
    case("own_size_mismatch", src(*HEAD, "u[k] = tanh(linear(x, h))", "h' = u"),
         "size mismatch in the assignment to 'h'': 'hidden' against 'k'", 5, 1, "h'"),
    case("own_size_against_its_value", src(*HEAD, "u[k] = h * 2", "h' = tanh(linear(x, u))"),
         "size mismatch in the assignment to 'u': 'k' against 'hidden'", 4, 1, "u[k]"),
    case("own_size_nothing_fixes",
         src(*HEAD, "u[k] = 2 * x - x", "h' = tanh(linear(x, h)) + 0 * h"),
         "size mismatch in the assignment to 'u': 'k' against 'input'", 4, 1, "u[k]"),
    case("own_size_bad_name", src(*HEAD, "u[if] = tanh(linear(x, h))", "h' = linear(u)"),
         "'if' is not a valid size name", 4, 3, "if"),
    case("power_of_powers", src(*HEAD, "h' = (tanh(linear(x, h))**4)**8"),
         "this power makes an exponent of 32", 4, 29, "**8"),
    case("power_folds_too_large", src(*HEAD, "h' = tanh(linear(x, h)) * 1e300**2"),
         "this power folds to a constant that exceeds the largest float64", 4, 32, "**2"),
    case("zero_to_negative_power", src(*HEAD, "h' = tanh(linear(x, h)) * 0**-1"),
         "division by zero: 0 to a negative power", 4, 28, "**-1"),
    case("power_size_mismatch", src("cell c", "input x", "state h[p], c",
                                    "c' = tanh(linear(x, h)) * c + h**2", "h' = linear(c')"),
         "size mismatch in '+': 'hidden' against 'p'", 4, 29, "+"),
    case("clip_two_operands", src(*HEAD, "h' = clip(linear(x, h), 1)"),
         "clip() takes 3 operands, got 2", 4, 6, "clip"),
    case("clip_bounds_crossed", src(*HEAD, "h' = clip(linear(x, h), 1, -1)"),
         "clip() has its lower bound 1 above its upper bound -1", 4, 25, "1, -1"),
    case("clip_keyword", src(*HEAD, "h' = clip(linear(x, h), lo=1, hi=2)"),
         "clip() takes no keyword arguments", 4, 25, "lo"),
    case("clip_of_a_constant", src(*HEAD, "h' = tanh(linear(x, h)) + clip(3, 0, 1)"),
         "clip() of a constant: write the clipped number itself", 4, 32, "3"),
    case("clip_bound_of_another_size", src("cell c", "input x", "state h[p], c",
                                           "c' = tanh(linear(x, h)) * clip(c, -1, h)",
                                           "h' = linear(c')"),
         "size mismatch in the operands of clip(): 'hidden' against 'p'", 4, 39, "h)"),
    case("clipp_suggests_clip", src(*HEAD, "h' = clipp(linear(x, h), 0, 1)"),
         "unknown function 'clipp'", 4, 6, "clipp", "did you mean 'clip'?"),
]


@pytest.mark.parametrize("source, message, line, column, at, note", CASES)
def test_check_error(source, message, line, column, at, note):
    assert_check_error(source, message, line, column, at, note)


SPEC = src(*HEAD, "u = linear(x, h)", "h' = clip(u, -0.5, 0.25) + (u + 3)**-2 * h**3")


def test_power_and_clip_values(tmp_path):
    """The generated step against the formula written out in NumPy."""
    path = tmp_path / "c.gate"
    path.write_text(SPEC)
    mod = numpy_module(str(path))
    rng = np.random.default_rng(0)
    sizes = small_sizes(mod)
    params = mod.init_params(sizes, rng)
    x = rng.normal(size=(1, 2, sizes["input"])) * 3
    h0 = rng.normal(size=(2, sizes["hidden"]))
    out, _ = mod.forward(x, (h0,), params, keep_cache=False)[:2]
    u = x[0] @ params["W_ux"].T + h0 @ params["W_uh"].T + params["b_u"]
    expected = np.clip(u, -0.5, 0.25) + h0**3 / (u + 3) ** 2
    assert (u < -0.5).any() and (u > 0.25).any()  # both bounds are reached
    np.testing.assert_allclose(out[0], expected, rtol=1e-12)


def test_clip_passes_no_gradient_outside_its_bounds(tmp_path):
    path = tmp_path / "c.gate"
    path.write_text(src(*HEAD, "u = linear(x, h)", "h' = clip(u, -0.5, 0.25)"))
    mod = numpy_module(str(path))
    rng = np.random.default_rng(1)
    sizes = small_sizes(mod)
    params = mod.init_params(sizes, rng)
    x = rng.normal(size=(1, 3, sizes["input"])) * 3
    out, state, cache = mod.forward(x, None, params)
    d_out = np.ones_like(out)
    dx, d_state0, grads = mod.backward(d_out, None, cache, params)
    u = x[0] @ params["W_ux"].T + params["b_u"]
    inside = (u >= -0.5) & (u <= 0.25)
    np.testing.assert_allclose(grads["b_u"], inside.sum(0))

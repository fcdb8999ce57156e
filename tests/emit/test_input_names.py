"""The input in generated code (issue 9): it is the argument `x` whatever the cell calls it,
and the backward pass, which has x only when it keeps it, still knows its size."""

import pytest
from conftest import require_torch
from helpers import cell_file, numpy_dx_error, numpy_module, torch_grad_errors

CELLS = {
    # `input u`: the weight gradient read `u`, a name the backward never bound
    "named_u": "input u\nstate h\nh' = tanh(linear(u, h))\n",
    # x at the hidden size, no parameter of the input's size name but a diagonal: the
    # backward read size_hidden off x, which it had not kept
    "hidden_diag": "input x[hidden]\nstate h\nh' = tanh(x + diag(h))\n",
    # an activation of the input before the loop, under another name, and no parameter at all
    "named_v_no_params": "input v[hidden]\nstate h\ng = sigmoid(v)\nh' = g * h + (1 - g) * v\n",
}


@pytest.fixture(params=sorted(CELLS))
def spec(request, tmp_path):
    return cell_file(tmp_path, request.param, CELLS[request.param])


def test_numpy_dx_matches_finite_differences(spec):
    assert numpy_dx_error(spec) < 1e-7


def test_torch_derived_gradients_match_autograd(spec):
    require_torch()
    errors = torch_grad_errors(spec)
    assert max(errors.values()) <= 1e-10, errors


def test_x_is_kept_by_reference_only_where_nothing_else_gives_its_size(tmp_path):
    """The backward reads the input's size off a parameter (hidden_diag: w_hh), or, with no
    parameter of that size (named_v_no_params has none), off x, kept as a reference."""
    import numpy as np

    modules = {}
    for name in ("hidden_diag", "named_v_no_params"):
        path = tmp_path / f"{name}.gate"
        path.write_text(f"cell {name}\n{CELLS[name]}")
        modules[name] = numpy_module(str(path))
    x = np.ones((2, 1, 3))
    assert "x" not in modules["hidden_diag"].forward(x, None, {"w_hh": np.ones(3)})[2]
    assert modules["named_v_no_params"].forward(x, None, {})[2]["x"] is x

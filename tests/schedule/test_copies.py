"""Copy propagation in the backward pass (issue 9): a value of the input read in the loop
has two adjoints under one name, its per-step part in the loop and its total before it.
A copy in one context must not rename the other's."""

import pytest
from conftest import require_torch
from helpers import cell_file, numpy_dx_error, torch_grad_errors

CELLS = {
    # q' = x: d_x in the loop is a copy of d_q_next; dx was returned as d_q_next itself
    "copy_beside_x": "input x\nstate h, q[input]\nq' = x\nh' = tanh(linear(x, q, h))\n",
    # the step reads only the copy; the backward read x, which it never had
    "copy_only": "input x\nstate h, q[input]\nq' = identity(x)\nh' = tanh(linear(q))\n",
    # an input-only value (not the input) copied, and read by a linear map before the loop
    "static_copy": "input x[hidden]\nstate h, q\ns = tanh(x) * 2\nq' = s\n"
                   "h' = tanh(linear(s, h)) + q\n",
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

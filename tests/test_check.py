"""Central finite differences for every built-in cell (gatespec/check.py)."""

import pytest
from helpers import numpy_module

from gatespec import cells
from gatespec.check import finite_difference_check


@pytest.mark.parametrize("name", cells.names())
def test_finite_differences(name):
    result = finite_difference_check(numpy_module(name), seed=1)
    assert result.worst < 1e-6, result.errors
    assert result.step_error < 1e-12


def test_check_detects_a_wrong_gradient():
    """The check is not vacuous: a corrupted backward pass fails it."""
    mod = numpy_module("lstm")

    class Broken:
        def __getattr__(self, name):
            return getattr(mod, name)

        @staticmethod
        def backward(*args):
            dx, ds0, dp = mod.backward(*args)
            dp = dict(dp)
            dp["W_fh"] = dp["W_fh"] * 1.001
            return dx, ds0, dp

    result = finite_difference_check(Broken(), seed=1)
    assert result.worst > 1e-4 and result.worst_name == "W_fh"

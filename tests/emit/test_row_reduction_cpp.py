"""The C++ loop's row-reduction kernels (rmsnorm_, softmax_, cumax_ and their backward),
checked as test_cpp.py checks the built-in cells, for the cells that use them all (in the
loop, and before it: the Python driver's torch helpers)."""

import pytest
from conftest import ROOT
from test_cpp import (  # noqa: F401 (cpp_cache: the session's build cache, a fixture)
    F64,
    check_against_autograd,
    check_against_torch_ops,
    check_batch_sizes,
    check_gradcheck,
    cpp_cache,
    modules,
    torch,
)


@pytest.mark.slow  # two C++ builds
def test_cpp_loop_runs_the_rows(cpp_cache, tmp_path_factory):  # noqa: F811
    specs = [str(ROOT / "tests" / "corpus" / f"{name}.gate")
             for name in ("row_reductions", "row_reductions_scan")] + ["on_lstm"]
    for spec, (ops, cpp) in modules(specs, tmp_path_factory).items():
        assert check_against_torch_ops(ops, cpp, F64) <= 1e-12, spec
        assert check_against_torch_ops(ops, cpp, torch.float32) <= 1e-5, spec
        assert check_batch_sizes(ops, cpp, F64) <= 1e-12, spec
        assert check_against_autograd(ops) <= 1e-10, spec
        assert check_gradcheck(ops, cpp), spec

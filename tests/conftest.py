import importlib
import os
import shutil
import sys
from pathlib import Path

import pytest
from hypothesis import settings

# property tests are reproducible run to run (a failure in CI is one a developer can see
# again); HYPOTHESIS_PROFILE=explore draws new examples each run and keeps a database
settings.register_profile("default", derandomize=True, database=None, deadline=None)
settings.register_profile("explore", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))  # reference_cells


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true",
                     help="rewrite the checked-in files under generated/ instead of comparing")


@pytest.fixture
def update_golden(request):
    return request.config.getoption("--update-golden")


def require_program(name: str) -> str:
    """The path of an external program (pdflatex, dot), or a skip on a developer machine
    without it; in CI (CI set), where .ci/run installs them, a missing one fails."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed: .ci/run installs it (texlive, graphviz)")
        pytest.skip(f"{name} is not installed")
    return path


def require_torch():
    """torch, or a skip on a developer machine without it; in CI (CI set) a missing torch fails."""
    if os.environ.get("CI"):
        import torch

        return torch
    return pytest.importorskip("torch")


def require_module(name: str):
    """An optional tool (triton, ...): a skip on a developer machine without it, a failure
    in CI, which installs it."""
    if os.environ.get("CI"):
        return importlib.import_module(name)  # the submodule itself, as importorskip gives
    return pytest.importorskip(name)

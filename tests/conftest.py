import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))  # reference_cells


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true",
                     help="rewrite the checked-in files under generated/ instead of comparing")


@pytest.fixture
def update_golden(request):
    return request.config.getoption("--update-golden")


def require_torch():
    """torch, or a skip on a developer machine without it; in CI (CI set) a missing torch fails."""
    if os.environ.get("CI"):
        import torch

        return torch
    return pytest.importorskip("torch")

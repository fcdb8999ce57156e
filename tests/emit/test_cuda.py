"""The CUDA target: every built-in cell's kernels compile with nvcc for sm_80 and sm_90,
warnings as errors. (Running them needs a GPU: bench/gpu_check.py.)"""

import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import ROOT

from gatespec import cells

ARCHS = ["-gencode", "arch=compute_80,code=sm_80", "-gencode", "arch=compute_90,code=sm_90"]
# what torch.utils.cpp_extension passes: no implicit half/bfloat16 conversions
TORCH_FLAGS = ["-D__CUDA_NO_HALF_OPERATORS__", "-D__CUDA_NO_HALF_CONVERSIONS__",
               "-D__CUDA_NO_BFLOAT16_CONVERSIONS__", "-D__CUDA_NO_HALF2_OPERATORS__",
               "--expt-relaxed-constexpr", "--use_fast_math", "-std=c++17"]


def _nvcc():
    """nvcc, or a skip on a developer machine without it; in CI a missing nvcc fails."""
    path = shutil.which("nvcc") or shutil.which("/usr/local/cuda/bin/nvcc")
    if path is None:
        message = "nvcc is not installed: the CUDA target cannot be checked"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)
    return path


def test_every_cell_compiles(tmp_path):
    nvcc = _nvcc()

    def compile_one(name):
        source = ROOT / "generated" / f"{name}_cuda.cu"
        r = subprocess.run([nvcc, "-c", *ARCHS, *TORCH_FLAGS, "-O2", "-Werror", "all-warnings",
                            "-o", str(tmp_path / f"{name}.o"), str(source)],
                           capture_output=True, text=True)
        return name, r.returncode, r.stderr

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(compile_one, cells.names()))
    failures = {name: err[-2000:] for name, rc, err in results if rc != 0}
    assert not failures, failures


def test_binding_matches_kernels():
    text = (ROOT / "generated" / "lstm_cuda.py").read_text()
    cu = (ROOT / "generated" / "lstm_cuda.cu").read_text()
    assert "int gatespec_lstm_launch(" in text and "int gatespec_lstm_launch(" in cu
    assert "__global__ void _k0_fwd(" in cu and '"_k0_fwd"' in text

"""The CUDA target: every built-in cell's kernels compile with nvcc for sm_80 and sm_90,
warnings as errors. (Running them needs a GPU: bench/gpu_check.py.)"""

from conftest import ROOT
from helpers import nvcc_errors, require_nvcc

from gatespec import cells

ARCHS = ["-gencode", "arch=compute_80,code=sm_80", "-gencode", "arch=compute_90,code=sm_90"]


def test_every_cell_compiles(tmp_path):
    nvcc = require_nvcc()
    sources = [ROOT / "generated" / f"{name}_cuda.cu" for name in cells.names()]
    assert not nvcc_errors(nvcc, sources, ARCHS, tmp_path)


def test_binding_matches_kernels():
    text = (ROOT / "generated" / "lstm_cuda.py").read_text()
    cu = (ROOT / "generated" / "lstm_cuda.cu").read_text()
    assert "int gatespec_lstm_launch(" in text and "int gatespec_lstm_launch(" in cu
    assert "__global__ void _k0_fwd(" in cu and '"_k0_fwd"' in text

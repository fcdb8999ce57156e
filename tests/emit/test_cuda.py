"""The CUDA target: every built-in cell's kernels compile with nvcc for sm_80 and sm_90,
warnings as errors (all cells under -m slow; by default one cell of each kind: the article's
LSTM, a row reduction, a mask on packed inputs, learned scalars and a transposed weight).
(Running them needs a GPU: bench/gpu_check.py.)"""

import pytest
from conftest import ROOT
from helpers import nvcc_errors, require_nvcc

from gatespec import cells

ARCHS = ["-gencode", "arch=compute_80,code=sm_80", "-gencode", "arch=compute_90,code=sm_90"]


DEFAULT = ["lstm", "on_lstm", "lstm_zoneout", "delta_rnn", "antisymmetric_rnn"]


def _compiles(names, tmp_path):
    nvcc = require_nvcc()
    sources = [ROOT / "generated" / f"{name}_cuda.cu" for name in names]
    assert not nvcc_errors(nvcc, sources, ARCHS, tmp_path)


def test_one_cell_of_each_kind_compiles(tmp_path):
    assert set(DEFAULT) <= set(cells.names())
    _compiles(DEFAULT, tmp_path)


@pytest.mark.slow
def test_every_cell_compiles(tmp_path):
    _compiles(cells.names(), tmp_path)


def test_binding_matches_kernels():
    text = (ROOT / "generated" / "lstm_cuda.py").read_text()
    cu = (ROOT / "generated" / "lstm_cuda.cu").read_text()
    assert "int gatespec_lstm_launch(" in text and "int gatespec_lstm_launch(" in cu
    assert "__global__ void _k0_fwd(" in cu and '"_k0_fwd"' in text

"""What a CPU-only machine sees when asked for GPU paths: gatespec's own message, saying
what is wrong and what to do, instead of Triton's "0 active drivers" or torch's
"CUDA_HOME environment variable is not set" (or, for cuda_graphs, nothing at all)."""

import pytest
from conftest import require_module, require_torch
from helpers import module_class, torch_module

from gatespec.check import load_module
from gatespec.pipeline import generate

torch = require_torch()


def _kernels(target):
    name = f"gru_{target}.py"  # the cuda target also writes the .cu file
    return load_module(generate("gru", target)[name], name[:-3])


def _lstm(**kwargs):
    return module_class(torch_module("lstm"))(4, 5, **kwargs)


@pytest.mark.parametrize("impl", ["triton", "cuda"])
def test_gpu_impl_on_cpu_tensors(impl, monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with pytest.raises(ValueError, match=rf"impl='{impl}' runs on CUDA tensors; this input is "
                                         r"on cpu: use impl='torch' \(or 'auto'\), or move"):
        _lstm(impl=impl)(torch.zeros(3, 2, 4))


def test_triton_interpreter_is_let_through(monkeypatch):
    # with the interpreter on, the device is fine and the missing sibling file is the problem
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    with pytest.raises(RuntimeError, match=r"impl='triton' needs .*lstm_triton\.py"):
        _lstm(impl="triton")(torch.zeros(3, 2, 4))


def test_auto_and_torch_still_run_on_cpu():
    for impl in ("auto", "torch"):
        out, _ = _lstm(impl=impl)(torch.zeros(3, 2, 4))
        assert out.shape == (3, 2, 5)


@pytest.mark.parametrize("impl", ["auto", "torch"])
def test_cuda_graphs_on_cpu_is_refused(impl):
    with pytest.raises(ValueError, match=r"cuda_graphs=True captures CUDA graphs, which need "
                                         r"CUDA tensors; this input is on cpu: pass "
                                         r"cuda_graphs=False"):
        _lstm(impl=impl, cuda_graphs=True)(torch.zeros(3, 2, 4))


def test_cuda_graphs_off_again_runs():
    model = _lstm(cuda_graphs=True)
    model.cuda_graphs = False  # what the message suggests
    assert model(torch.zeros(3, 2, 4))[0].shape == (3, 2, 5)


@pytest.mark.parametrize("target", ["triton", "cuda"])
def test_kernel_modules_refuse_cpu_tensors(monkeypatch, target):
    # called directly, not through the torch module
    if target == "triton":
        require_module("triton")  # the Triton module imports it
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    x, h = torch.zeros(3, 2, 4), (torch.zeros(2, 5),)
    with pytest.raises(ValueError, match=rf"impl='{target}' runs on CUDA tensors; this "
                                         r"input is on cpu"):
        _kernels(target).forward(x, h, {}, False)


def test_cuda_without_toolkit(monkeypatch, tmp_path):
    from torch.utils import cpp_extension

    module = _kernels("cuda")
    monkeypatch.setattr(cpp_extension, "CUDA_HOME", None)
    with pytest.raises(RuntimeError, match=r"impl='cuda' builds its kernels with nvcc on first "
                                           r"use, and no CUDA toolkit was found: install the "
                                           r"CUDA toolkit and set CUDA_HOME"):
        module._extension()
    monkeypatch.setattr(cpp_extension, "CUDA_HOME", str(tmp_path))
    with pytest.raises(RuntimeError, match=rf"and {tmp_path} has no bin/nvcc"):
        module._extension()

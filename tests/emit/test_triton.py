"""The Triton target, run by Triton's interpreter on CPU tensors (no GPU needed)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, require_module

from gatespec import cells

HERE = Path(__file__).resolve().parent


def test_every_cell_matches_torch_ops_in_the_interpreter():
    require_module("triton")
    env = {**os.environ, "TRITON_INTERPRET": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), str(HERE.parent)])}
    r = subprocess.run([sys.executable, str(HERE / "triton_check.py"), *cells.names()],
                       capture_output=True, text=True, env=env, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    results = dict(line.split() for line in r.stdout.splitlines())
    assert set(results) == set(cells.names())
    worst = {name: float(err) for name, err in results.items()}
    assert max(worst.values()) <= 1e-5, worst


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_kernel_source_is_plain_triton(name):
    text = (ROOT / "generated" / f"{name}_triton.py").read_text()
    assert "@triton.jit" in text and "tl.tanh" not in text  # tanh goes through tl.sigmoid
    assert "_launch(" in text

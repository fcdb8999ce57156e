"""The Triton target, run by Triton's interpreter on CPU tensors (no GPU needed)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, require_module

from gatespec import cells

HERE = Path(__file__).resolve().parent


def run_check(script: str, names: list[str]) -> subprocess.CompletedProcess:
    """A check script in its own interpreter: TRITON_INTERPRET=1 must precede the import."""
    require_module("triton")
    env = {**os.environ, "TRITON_INTERPRET": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), str(HERE.parent)])}
    return subprocess.run([sys.executable, str(HERE / script), *names],
                          capture_output=True, text=True, env=env, timeout=900)


def test_every_cell_matches_torch_ops_in_the_interpreter():
    r = run_check("triton_check.py", cells.names())
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


VARLEN_CELLS = ["lstm", "lstm_layernorm"]  # the rest: -m slow


def check_varlen(names: list[str]):
    """With batch_sizes, each cell's outputs, final states and gradients equal those of each
    sequence run alone at its own length (float64), and every launch covers just its step's
    active rows; malformed batch sizes are refused (see triton_varlen_check.py)."""
    r = run_check("triton_varlen_check.py", names)
    assert r.returncode == 0, r.stderr[-3000:]
    results = {line.split()[0]: line.split()[1:] for line in r.stdout.splitlines()}
    assert set(results) == set(names)
    for name, (err, rows, refuses) in results.items():
        assert float(err) <= 1e-12, (name, err)
        assert rows == "rows-ok" and refuses == "refuses-ok", (name, rows, refuses)


def test_variable_lengths_match_each_sequence_alone():
    check_varlen(VARLEN_CELLS)


@pytest.mark.slow
def test_variable_lengths_match_each_sequence_alone_every_cell():
    check_varlen([n for n in cells.names() if n not in VARLEN_CELLS])


def test_scan_kernel_matches_the_step_by_step_kernels():
    """Cells whose states are linear recurrences scan with tl.associative_scan (forward and
    backward: two scans per call) and agree with the per-step kernels in float64."""
    r = run_check("triton_scan_check.py", ["qrnn"])
    assert r.returncode == 0, r.stderr[-3000:]
    for line in r.stdout.splitlines():
        name, err, calls = line.split()
        assert float(err) <= 1e-12, (name, err)
        assert int(calls) == 2 * 2, (name, calls)  # forward and backward, two lengths

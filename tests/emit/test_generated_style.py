"""Generated code passes ruff and reads like the spec: names from the spec, no dead code."""

import shutil
import subprocess
import sys

import pytest
from conftest import ROOT


def test_generated_files_pass_ruff():
    ruff = shutil.which("ruff")
    cmd = [ruff] if ruff else [sys.executable, "-m", "ruff"]
    r = subprocess.run([*cmd, "check", "--no-cache", str(ROOT / "generated")],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_header_and_names(name):
    text = (ROOT / "generated" / f"{name}_numpy.py").read_text()
    assert f"from {name}.gate (sha256 " in text
    assert "Do not edit" in text
    assert "W_ih" in text or "W_rh" in text
    assert "fused pointwise block:" in text and "operations" in text
    assert "import numpy as np" in text
    assert [ln for ln in text.splitlines() if ln.startswith(("import", "from"))] == [
        "import numpy as np"]

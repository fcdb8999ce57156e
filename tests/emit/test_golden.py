"""generated/ holds the output of every built-in cell for every code target; it must be
current.

Run `pytest --update-golden` (or `gatespec generate --all --target T -o generated` for each
target) after changing the generator, and review the diff.
"""

import pytest
from conftest import ROOT

from gatespec import cells
from gatespec.pipeline import generate

TARGETS = ("numpy", "torch", "triton", "cuda", "cpp", "onnx", "jax")


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", cells.names())
def test_generated_file_is_current(name, target, update_golden):
    for fname, text in generate(name, target).items():
        path = ROOT / "generated" / fname
        if update_golden:
            path.write_text(text, "utf-8")
        assert path.exists(), f"{path} is missing: run pytest --update-golden"
        assert path.read_text("utf-8") == text, f"{path} is stale: run pytest --update-golden"


def test_no_stray_generated_files():
    expected = {f for n in cells.names() for t in TARGETS for f in generate(n, t)}
    present = {p.name for p in (ROOT / "generated").iterdir() if p.is_file()}
    assert present == expected

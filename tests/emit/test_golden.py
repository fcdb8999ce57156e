"""generated/ holds the NumPy output of every built-in cell; it must be current.

Run `pytest --update-golden` (or `gatespec generate --all -o generated`) after
changing the generator, and review the diff.
"""

import pytest
from conftest import ROOT

from gatespec import cells
from gatespec.pipeline import generate

TARGETS = ("numpy", "torch", "triton")


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", cells.names())
def test_generated_file_is_current(name, target, update_golden):
    (fname, text), = generate(name, target).items()
    path = ROOT / "generated" / fname
    if update_golden:
        path.write_text(text, "utf-8")
    assert path.exists(), f"{path} is missing: run pytest --update-golden"
    assert path.read_text("utf-8") == text, f"{path} is stale: run pytest --update-golden"


def test_no_stray_generated_files():
    expected = {f"{n}_{t}.py" for n in cells.names() for t in TARGETS}
    present = {p.name for p in (ROOT / "generated").glob("*.py")}
    assert present == expected

"""Every fenced code block of README.md runs here, so the documentation cannot drift.

A block is run by its language: ```python is executed, ```sh runs its commands, a block
without a language that holds a cell (`cell NAME ...`) is parsed and built. An HTML comment
on the line before a fence changes that, visibly in the README and checked here:

- `<!-- not run: REASON -->`: not run (a GPU, minutes of fuzzing); the reason is required.
- `<!-- test setup: NAME -->`: a ```python block runs after the setup NAME of SETUPS below.
- `<!-- excerpt of PATH -->`: every line of the block is a line of the file PATH.
- `<!-- error for: LINE / LINE / ... -->`: the block is what `gatespec check mycell.gate`
  prints (exit 2) for the cell file of these lines.

Any other block, or any other comment before a fence, fails: nothing is skipped silently.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import ROOT, require_module, require_torch

from gatespec import cells
from gatespec.build import build
from gatespec.derive import derive
from gatespec.parse import parse
from gatespec.pipeline import generate
from gatespec.schedule import schedule

README = ROOT / "README.md"
FENCE = re.compile(r"^```(\S*)\s*$")
MARKER = re.compile(r"^<!--\s*(not run|test setup|excerpt of|error for):?\s*(.*?)\s*-->\s*$")

# The commands that install gatespec and run this very suite: checked to be the README's
# Quick start exactly, not run from here (the suite would run itself).
SELF_COMMANDS = {"pip install .", 'pip install -e ".[test]"', "python -m pytest",
                 "python -m pytest -m slow"}


@dataclass
class Block:
    line: int  # of the opening fence, 1-based
    lang: str
    text: str
    marker: tuple[str, str] | None  # (kind, argument) of the comment before the fence

    @property
    def id(self) -> str:
        return f"README.md:{self.line}:{self.lang or 'text'}"


def readme_blocks() -> list[Block]:
    lines = README.read_text().splitlines()
    blocks, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        start, body = i, []
        i += 1
        while i < len(lines) and lines[i].rstrip() != "```":
            body.append(lines[i])
            i += 1
        assert i < len(lines), f"README.md:{start + 1}: code block never closed"
        before = start - 1
        while before >= 0 and not lines[before].strip():
            before -= 1
        marker = None
        if before >= 0 and lines[before].lstrip().startswith("<!--"):
            mm = MARKER.match(lines[before].strip())
            assert mm, f"README.md:{before + 1}: unknown comment before a code block"
            marker = (mm.group(1), mm.group(2))
        blocks.append(Block(start + 1, m.group(1), "\n".join(body) + "\n", marker))
        i += 1
    return blocks


BLOCKS = readme_blocks()


def _gatespec(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gatespec", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


# --- setups: what a block assumes that the README says in prose -------------------------

def setup_generated_lstm(tmp_path: Path) -> dict:
    """`gatespec generate lstm --target torch` into a folder on sys.path."""
    (tmp_path / "lstm_torch.py").write_text(generate("lstm", "torch")["lstm_torch.py"])
    sys.path.insert(0, str(tmp_path))
    sys.modules.pop("lstm_torch", None)
    return {}


def setup_batches(tmp_path: Path) -> dict:
    """The generated LSTM, and `batches`: two small random (x, y) pairs, x (B, T, 128)."""
    torch = require_torch()
    setup_generated_lstm(tmp_path)
    gen = torch.Generator().manual_seed(0)
    batches = [(torch.randn(3, 5, 128, generator=gen), torch.randint(0, 10, (3,), generator=gen))
               for _ in range(2)]
    return {"batches": batches}


def setup_generated_lstm_jax(tmp_path: Path) -> dict:
    """`gatespec generate lstm --target jax` into a folder on sys.path (jax and flax needed)."""
    require_module("jax")
    require_module("flax")
    (tmp_path / "lstm_jax.py").write_text(generate("lstm", "jax")["lstm_jax.py"])
    sys.path.insert(0, str(tmp_path))
    sys.modules.pop("lstm_jax", None)
    return {}


SETUPS = {"generated lstm": setup_generated_lstm, "batches": setup_batches,
          "generated lstm jax": setup_generated_lstm_jax}


def _run_python(block: Block, tmp_path: Path, monkeypatch) -> None:
    if re.search(r"^\s*(import torch|from torch)", block.text, re.M):
        require_torch()
    if re.search(r"^\s*import onnxruntime", block.text, re.M):
        require_module("onnxruntime")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    namespace = {"__name__": "__readme__"}
    if block.marker and block.marker[0] == "test setup":
        assert block.marker[1] in SETUPS, f"{block.id}: no setup named {block.marker[1]!r}"
        namespace.update(SETUPS[block.marker[1]](tmp_path))
    # README text is ours, not a user's: running it is the point of this test
    exec(compile(block.text, block.id, "exec"), namespace)


def _commands(block: Block):
    for line in block.text.splitlines():
        words = shlex.split(line, comments=True)
        while words:
            cut = words.index("&&") if "&&" in words else len(words)
            yield words[:cut]
            words = words[cut + 1:]


def _run_sh(block: Block, tmp_path: Path) -> None:
    for argv in _commands(block):
        if shlex.join(argv).replace("'", '"') in SELF_COMMANDS:
            continue
        assert argv[0] == "gatespec", (
            f"{block.id}: `{shlex.join(argv)}` is not a gatespec command: mark the block "
            "<!-- not run: REASON --> or teach tests/test_readme.py to run it")
        r = _gatespec(argv[1:], tmp_path)
        assert r.returncode == 0, f"{block.id}: {shlex.join(argv)}\n{r.stderr}"
        # every path a command that writes files says it wrote exists
        for path in r.stdout.split() if argv[1] in ("generate", "latex", "diagram") else []:
            if "/" in path or "." in path:
                assert (tmp_path / path).is_file(), f"{block.id}: {path} not written"


def _build_cell(block: Block) -> None:
    cell = build(parse(block.text, block.id))
    schedule(derive(cell))
    if cell.name in cells.names():  # the README's copy of a built-in computes the same thing
        builtin = build(parse(cells.source(cell.name), f"{cell.name}.gate"))
        assert {p: v.shape for p, v in cell.params.items()} == {
            p: v.shape for p, v in builtin.params.items()}
        assert cell.updates.keys() == builtin.updates.keys()


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: b.id)
def test_readme_block_runs(block, tmp_path, monkeypatch):
    kind, arg = block.marker or (None, "")
    if kind == "not run":
        assert len(arg.split()) >= 2, f"{block.id}: say why the block is not run"
        return  # listed, with its reason, in test_not_run_blocks_are_few
    if kind == "excerpt of":
        source = (ROOT / arg).read_text().splitlines()
        stripped = {s.strip() for s in source}
        for line in block.text.splitlines():
            assert line.strip() in stripped, f"{block.id}: {line!r} is not in {arg}"
        return
    if kind == "error for":
        (tmp_path / "mycell.gate").write_text(arg.replace(" / ", "\n") + "\n")
        r = _gatespec(["check", "mycell.gate"], tmp_path)
        assert r.returncode == 2, r.stderr
        assert r.stderr == block.text, r.stderr
        return
    if block.lang == "python":
        _run_python(block, tmp_path, monkeypatch)
    elif block.lang == "sh":
        _run_sh(block, tmp_path)
    elif block.lang == "" and re.search(r"^cell \w+", block.text, re.M):
        _build_cell(block)
    else:
        pytest.fail(f"{block.id}: no way to run a {block.lang or 'plain'} block: mark it "
                    "<!-- not run: REASON --> (or `excerpt of PATH`)")


def test_not_run_blocks_are_few():
    """Each block left out is named here with its reason, so adding one is a visible choice."""
    not_run = sorted(b.marker[1] for b in BLOCKS if b.marker and b.marker[0] == "not run")
    assert not_run == sorted([
        "a fuzz run of minutes",
        "needs a CUDA GPU (bench/gpu_check.py runs this path)",
        "a diagram of the stages",
        "inductor builds C++ for a minute on a CPU (tests/emit/test_torch_compose.py compiles it)",
    ])


def test_quick_start_commands_are_the_suites():
    """The README's install and test commands are exactly the ones this suite is run with."""
    found = {shlex.join(argv).replace("'", '"') for b in BLOCKS if b.lang == "sh"
             and not b.marker for argv in _commands(b)}
    assert SELF_COMMANDS <= found


def test_markers_are_read():
    """The parser of this file sees the README's blocks and their comments (a wrong regex
    would find none and pass every other test)."""
    langs = [b.lang for b in BLOCKS]
    assert langs.count("python") >= 2 and langs.count("sh") >= 2 and langs.count("") >= 3
    assert {b.marker[0] for b in BLOCKS if b.marker} == {
        "not run", "test setup", "excerpt of", "error for"}
    assert os.path.basename(README) == "README.md"

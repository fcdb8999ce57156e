"""Generated code is byte-identical across runs and hash seeds."""

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from conftest import ROOT


def _generate(tmp, seed):
    env = {**os.environ, "PYTHONHASHSEED": str(seed), "PYTHONPATH": str(ROOT)}
    out = tmp / f"seed{seed}"
    for target in ("numpy", "cpp"):  # cpp: its loop lines name arrays read off sets
        subprocess.run([sys.executable, "-m", "gatespec", "generate", "--all", "--target",
                        target, "-o", str(out)], check=True, env=env, capture_output=True)
    return {p.name: p.read_bytes() for p in out.iterdir()}


def test_identical_across_hash_seeds(tmp_path):
    with ThreadPoolExecutor(max_workers=2) as pool:  # the two processes side by side
        a, b = pool.map(lambda seed: _generate(tmp_path, seed), (1, 4242))
    assert a.keys() == b.keys() and len(a) >= 5
    for name in a:
        assert a[name] == b[name], name

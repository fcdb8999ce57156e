"""The long fuzz run: the generators of tests/test_fuzz.py (tests/fuzzing.py) for many
examples, collecting every distinct failure class instead of stopping at the first, each
with its smallest example cut down to a minimal reproducer.

    python bench/fuzz.py --examples 3000 [--seed 1] [--budget 20] [--json out.json]

Half the examples are cells from the grammar, half mutants of the built-in cells. Exit 1
if anything failed."""

from __future__ import annotations

import argparse
import base64
import json
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fuzzing import COMMANDS, Problem, grammar_cells, mutants, problems  # noqa: E402
from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402

_TOKEN = re.compile(rb"[A-Za-z0-9_.]+|\s+|.", re.S)


class Collector:
    def __init__(self, budget: float, dump: str | None):
        self.budget, self.dump = budget, dump
        self.classes: dict[tuple, dict] = {}
        self.examples = 0
        self.failed = 0
        self.start = time.perf_counter()

    def run(self, data: bytes, filename: str, what: str) -> None:
        outcome = problems(data, filename, self.budget)
        self.examples += 1
        self.failed += bool(outcome.problems)
        for p in outcome.problems:
            entry = self.classes.setdefault(p.key(), {"count": 0, "problem": p, "data": data,
                                                      "filename": filename, "what": what})
            entry["count"] += 1
            if len(data) + len(filename) < len(entry["data"]) + len(entry["filename"]):
                entry.update(problem=p, data=data, filename=filename, what=what)
        if self.examples % 25 == 0:
            print(f"{self.examples} examples, {self.failed} failing, {len(self.classes)} "
                  f"classes, {time.perf_counter() - self.start:.0f} s", flush=True)
            if self.dump:  # what is found so far survives an interrupted run
                Path(self.dump).write_text(json.dumps(
                    [_entry_json(e, e["data"], e["filename"]) for e in self.classes.values()],
                    indent=1, ensure_ascii=False))


def commands_for(p: Problem) -> tuple[tuple[str, ...], ...]:
    """The commands that show a failure class, so that minimising runs only those."""
    if p.kind in ("mixed", "canary"):
        return COMMANDS
    if p.kind == "file":
        return tuple(c for c in COMMANDS if c[0] == "generate")
    return tuple(c for c in COMMANDS if " ".join(x for x in c if x not in ("-o", "out"))
                 == p.command)


def _entry_json(entry: dict, data: bytes, filename: str) -> dict:
    p = entry["problem"]
    return {"kind": p.kind, "command": p.command, "detail": p.detail, "count": entry["count"],
            "what": entry["what"], "filename": filename,
            "text": data.decode("utf-8", "backslashreplace"),
            "base64": base64.b64encode(data).decode()}


def minimise(entry: dict, budget: float, seconds: float = 60) -> tuple[bytes, str]:
    """Delta debugging over lines, then tokens: the smallest input that keeps the class
    (within `seconds`)."""
    key, cmds = entry["problem"].key(), commands_for(entry["problem"])
    stop = time.perf_counter() + seconds

    def keeps(data: bytes, filename: str) -> bool:
        return any(p.key() == key for p in problems(data, filename, budget, cmds).problems)

    data, filename = entry["data"], entry["filename"]
    if filename != "cell.gate" and keeps(data, "cell.gate"):
        filename = "cell.gate"
    for split in (lambda d: d.splitlines(keepends=True), _TOKEN.findall):
        parts = split(data)
        size = max(len(parts) // 2, 1)
        while size >= 1 and time.perf_counter() < stop:
            i, changed = 0, False
            while i < len(parts) and time.perf_counter() < stop:
                candidate = parts[:i] + parts[i + size:]
                if candidate and keeps(b"".join(candidate), filename):
                    parts, changed = candidate, True
                else:
                    i += size
            if not changed:
                size //= 2
        data = b"".join(parts)
    return data, filename


def minimise_from(args) -> int:
    report = []
    for old in json.loads(Path(args.minimise_from).read_text()):
        data = base64.b64decode(old["base64"])
        want = Problem(old["kind"], old["command"], old["detail"]).key()
        found = [p for p in problems(data, old["filename"], args.budget).problems
                 if p.key() == want]
        if not found:
            print(f"== not reproduced: [{old['kind']}] {old['command']}: {old['detail'][:200]}")
            continue
        entry = {**old, "problem": found[0], "data": data}
        if found[0].kind != "timeout":
            data, filename = minimise(entry, args.budget, args.minimise_seconds)
        else:
            filename = old["filename"]
        p = found[0]
        print(f"== [{p.kind}] {p.command}: {p.detail[:300]}\n   {old['count']} inputs; "
              f"file name {filename!r}; from {old['what']}\n   "
              + data.decode("utf-8", "backslashreplace").replace("\n", "\n   "), flush=True)
        report.append(_entry_json(entry, data, filename))
        if args.json:
            Path(args.json).write_text(json.dumps(report, indent=1, ensure_ascii=False))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--examples", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--budget", type=float, default=20.0, help="seconds per command")
    ap.add_argument("--no-minimise", action="store_true")
    ap.add_argument("--minimise-seconds", type=float, default=60, help="per failure class")
    ap.add_argument("--only", choices=("grammar", "mutants"), help="one generator")
    ap.add_argument("--json", help="write the classes and reproducers here")
    ap.add_argument("--minimise-from", metavar="JSON",
                    help="only minimise the classes of an earlier run's JSON (or .raw.json)")
    args = ap.parse_args()
    if args.minimise_from:
        return minimise_from(args)
    col = Collector(args.budget, args.json and args.json + ".raw.json")
    common = settings(max_examples=args.examples // 2, deadline=None, database=None,
                      phases=[Phase.generate], suppress_health_check=list(HealthCheck))

    @seed(args.seed)
    @common
    @given(grammar_cells())
    def from_grammar(case):
        data, filename, fault = case
        col.run(data, filename, f"grammar, fault {fault or 'none'}")

    @seed(args.seed)
    @common
    @given(mutants())
    def from_mutants(case):
        data, filename, edits = case
        col.run(data, filename, f"mutant, edits {edits}")

    if args.only != "mutants":
        from_grammar()
    if args.only != "grammar":
        from_mutants()
    print(f"\n{col.examples} examples in {time.perf_counter() - col.start:.0f} s, "
          f"{col.failed} failing, {len(col.classes)} failure classes\n")
    report = []
    for key, entry in sorted(col.classes.items(), key=lambda kv: (kv[0][0], -kv[1]["count"])):
        data, filename = entry["data"], entry["filename"]
        if not args.no_minimise and entry["problem"].kind != "timeout":
            data, filename = minimise(entry, args.budget, args.minimise_seconds)
        p = entry["problem"]
        print(f"== [{p.kind}] {p.command}: {p.detail[:300]}\n   {entry['count']} inputs; "
              f"file name {filename!r}; from {entry['what']}")
        print("   " + data.decode("utf-8", "backslashreplace").replace("\n", "\n   "),
              flush=True)
        report.append(_entry_json(entry, data, filename))
        if args.json:
            Path(args.json).write_text(json.dumps(report, indent=1, ensure_ascii=False))
    return 1 if col.classes else 0


if __name__ == "__main__":
    sys.exit(main())

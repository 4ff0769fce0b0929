"""Cold, incremental and no-op times of the fork's real tree (`doit qcow2` with this repository's recipes and config
and the sources of ../shared/fork, Debian's rustc-web, LLVM backend), measured in one run:

* cold: `doit -n 2 qcow2` on a freshly laid tree with a fresh build directory, with each task's time as the build
  printed it (`ok cook:base (…)`), summed per stage;
* one-line edit: a log message of the randd daemon changed, then `doit -n 2 qcow2` (cook:base and cook:base-initfs
  recompile randd, the packages, the initfs, the image and the qcow2 follow), the edit then undone, best of N;
* no-op: `doit qcow2` with nothing changed, best of N.

Each is also given as a share of the cold build. `--tree DIR` measures the edit and the no-op on a tree that is
already built (then there is no cold build to compare with).

Run: .venv/bin/python bench/real_tree.py [--repeat N] [--tree DIR]
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from tests.test_real_tree import FORK, lay_tree  # noqa: E402

EDITED = Path("recipes/core/base/source/randd/src/main.rs")
DURATION = re.compile(r"^ok (\S+) \((?:(\d+) min )?([\d.]+) s\)$", re.MULTILINE)


def doit(tree: Path, *args: str) -> tuple[float, str]:
    command = [str(Path(sys.executable).parent / "doit"), "-f", str(PROJECT / "dodo.py"), *args, f"root={tree}",
               "rust=/usr", "backend=llvm", f"bootloader={FORK / 'firmware/BOOTAA64.EFI'}"]
    started = time.monotonic()
    # PYTHONPATH: this checkout's tasks/, whatever the venv's editable install points at
    # and Python's bytecode cache on (PYTHONDONTWRITEBYTECODE removed), as on a user's machine
    environment = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
    done = subprocess.run(command, capture_output=True, text=True, cwd=PROJECT,
                          env={**environment, "PYTHONPATH": str(PROJECT)})
    if done.returncode:
        sys.exit(f"{' '.join(args)} failed:\n{done.stdout[-4000:]}{done.stderr[-2000:]}")
    return time.monotonic() - started, done.stdout


def per_stage(output: str) -> dict[str, float]:
    stages: dict[str, float] = defaultdict(float)
    for task, minutes, seconds in DURATION.findall(output):
        stage = task.split(":")[0] if not task.startswith("cook:") else task
        stages[stage] += int(minutes or 0) * 60 + float(seconds)
    return dict(stages)


def one_line_edit(tree: Path, repeat: int) -> tuple[float, str]:
    """The best time of the build after the edit, and what its first line said it checked."""
    source = tree / EDITED
    original = source.read_text()
    marker = next(line for line in original.splitlines() if '"' in line and ("log::" in line or "println" in line))
    times, said = [], ""
    for number in range(repeat):
        source.write_text(original.replace(marker, marker.replace('"', f'"[edit {number}] ', 1), 1))
        seconds, output = doit(tree, "-n", "2", "qcow2")
        times.append(seconds)
        said = output.splitlines()[0]
    source.write_text(original)
    doit(tree, "-n", "2", "qcow2")
    return min(times), said


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tree", type=Path, help="an already built tree: no cold build")
    options = parser.parse_args()
    cold = None
    if options.tree is None:
        work = PROJECT / "build/bench/real"
        shutil.rmtree(work, ignore_errors=True)
        tree = lay_tree(work / "tree").tree
        cold, output = doit(tree, "-n", "2", "qcow2")
        print(f"cold build (doit -n 2 qcow2)   {cold:8.1f} s")
        for stage, seconds in sorted(per_stage(output).items(), key=lambda item: -item[1]):
            print(f"  {stage:<28} {seconds:8.1f} s")
    else:
        tree = options.tree.resolve()
    edit, said = one_line_edit(tree, options.repeat)
    noop = min(doit(tree, "qcow2")[0] for _ in range(options.repeat))
    share = (lambda seconds: f"   ({seconds / cold:.1%} of cold)") if cold else (lambda seconds: "")
    print(f"one-line edit in randd → qcow2 {edit:8.1f} s{share(edit)}   (best of {options.repeat})")
    print(f"no-op                          {noop:8.2f} s{share(noop)}   (best of {options.repeat})")
    print(f"the edit's check: {said}")


if __name__ == "__main__":
    main()

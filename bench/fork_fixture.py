"""Cold and warm times of the fork-shaped fixture's full build (`doit qcow2` on tests/fork with this repository's
recipes, Debian's rustc-web, LLVM backend, -Zbuild-std), and the share of the cold build spent in -Zbuild-std.

Measured in one run, on a tree under build/bench/fork/ (rebuilt from scratch each time):

* cold: `doit qcow2` from a fresh build directory (toolchain check, specs, every cook with its -Zbuild-std, the
  sysroot, packages, initfs, image, qcow2);
* touched: every .rs file of the fixture's crates edited (a comment appended), then `doit qcow2`: the same cooks,
  packages and images, but cargo finds core/alloc/std fresh — so cold − touched is what -Zbuild-std cost;
* no-op: `doit qcow2` again with nothing changed.

Run: .venv/bin/python bench/fork_fixture.py
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from tests.test_fork_fixture import assemble_tree  # noqa: E402


def timed(fork, *args: str) -> float:
    started = time.monotonic()
    command = [str(Path(sys.executable).parent / "doit"), "-f", str(PROJECT / "dodo.py"), *args,
               f"root={fork.tree}", "config=config/aarch64/fork.toml", "rust=/usr", "backend=llvm",
               f"bootloader={fork.tree / 'BOOTAA64.EFI'}"]
    # PYTHONPATH: this checkout's tasks/, whatever the venv's editable install points at
    subprocess.run(command, check=True, capture_output=True, cwd=PROJECT,
                   env={**os.environ, "PYTHONPATH": str(PROJECT)})
    return time.monotonic() - started


def main() -> None:
    work = PROJECT / "build/bench/fork"
    shutil.rmtree(work, ignore_errors=True)
    fork = assemble_tree(work / "tree")
    cold = timed(fork, "qcow2")
    for source in (fork.tree / "recipes/core").glob("*/source/**/*.rs"):
        source.write_text(source.read_text() + "// touched by bench/fork_fixture.py\n")
    touched = timed(fork, "qcow2")
    noop = min(timed(fork, "qcow2") for _ in range(5))
    print(f"cold build            {cold:7.1f} s")
    print(f"every crate touched   {touched:7.1f} s   ({touched / cold:.0%} of cold)")
    print(f"-Zbuild-std share     {cold - touched:7.1f} s   ({(cold - touched) / cold:.0%} of cold)")
    print(f"no-op (best of 5)     {noop:7.2f} s   ({noop / cold:.2%} of cold)")


if __name__ == "__main__":
    main()

"""How long `doit list --all` takes over the whole upstream corpus (every valid recipe in one config).

Run: .venv/bin/python bench/list_corpus.py [--runs N]
Prints the time per run beside a plain os.scandir walk of the same recipes tree, measured in the same run.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
CORPUS = (PROJECT.parent / "shared" / "corpus" / "redox-upstream").resolve()
sys.path.insert(0, str(PROJECT))

from tasks.errors import BuildError  # noqa: E402
from tasks.model.config import load_config  # noqa: E402
from tasks.model.graph import GraphBuilder, Origin  # noqa: E402
from tasks.model.index import RecipeIndex  # noqa: E402


def make_tree(work: Path) -> tuple[Path, int]:
    """A tree whose recipes/ is the corpus and whose config lists every recipe that can be built."""
    work.mkdir(parents=True, exist_ok=True)
    if not (work / "recipes").exists():
        (work / "recipes").symlink_to(CORPUS / "recipes")
    index = RecipeIndex(CORPUS / "recipes")
    buildable = []
    for name in index.names():
        try:
            recipe = index.load(name)
        except BuildError:
            continue
        if recipe.build_error() is None:
            buildable.append(name)
    (work / "config").mkdir(exist_ok=True)
    config = work / "config" / "all.toml"
    ignored: set[str] = set()
    while True:  # recipes whose dependencies do not exist upstream are set to "ignore"
        lines = ["[packages]"] + [f'"{name}" = {"{}" if name not in ignored else chr(34) + "ignore" + chr(34)}'
                                  for name in buildable]
        config.write_text("\n".join(lines) + "\n")
        index = RecipeIndex(CORPUS / "recipes")
        graph = GraphBuilder(index, load_config(config).rule, strict=False).build(
            [(name, Origin(config, name)) for name in buildable if name not in ignored])
        if not graph.problems:
            return work, len(buildable) - len(ignored)
        # A failing recipe, and every recipe that needs it (through a host: build, say), is left out.
        failed = {problem.path.parent.name for problem in graph.problems if problem.path is not None}
        needing = {step.node.recipe for step in graph.steps.values()
                   if any(dep.recipe in failed for dep in (*step.build_deps, *step.runtime_deps))}
        ignored |= failed | needing


def scandir_walk(root: Path) -> int:
    count = 0
    pending = [str(root)]
    while pending:
        for entry in os.scandir(pending.pop()):
            entry.stat(follow_symlinks=False)
            count += 1
            if entry.is_dir(follow_symlinks=False):
                pending.append(entry.path)
    return count


def timed(function, runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    tree, count = make_tree(PROJECT / "build" / "bench" / "corpus-all")
    doit = [str(Path(sys.executable).parent / "doit"), "-f", str(PROJECT / "dodo.py"), "list", "--all",
            f"root={tree}", "config=config/all.toml", f"build={tree / 'build'}"]

    def list_all() -> None:
        result = subprocess.run(doit, capture_output=True, text=True)
        if result.returncode != 0:
            sys.exit(f"doit list failed:\n{result.stderr}")

    list_all()  # warm the file cache
    tasks = len(subprocess.run(doit, capture_output=True, text=True).stdout.splitlines())
    ours = timed(list_all, args.runs)
    walk = timed(lambda: scandir_walk(CORPUS / "recipes"), args.runs)
    print(f"recipes in config: {count}; tasks listed: {tasks}")
    print(f"doit list --all        {ours * 1000:8.0f} ms (median of {args.runs})")
    print(f"os.scandir+lstat walk  {walk * 1000:8.0f} ms  (ratio {ours / walk:.1f}x)")


if __name__ == "__main__":
    main()

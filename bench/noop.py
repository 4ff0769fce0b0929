"""No-op build time over a generated graph of N recipes, beside ninja on the same graph and a plain stat walk.

Generates a tree under build/bench/noop-<N>/: N recipes (custom bash builds, each with a small source tree of
its own, build dependencies on up to 3 earlier recipes) and a config listing them; builds it once (`doit pkg`),
then measures, in one run, round-robin:

* ours: `doit pkg` with nothing to do (the content-hash engine checks every cook and pkg task);
* ninja: a no-op `ninja` on an equivalent build.ninja (one edge per cook and per pkg, the same file inputs:
  recipe.toml and every source file, order-only deps between recipes as in our graph);
* a plain Python os.scandir + lstat walk over the recipes (what any checker must at least do);
* ours after an edit: one source file of a recipe nothing depends on gets a line, then `doit pkg` (its cook and
  package run; every other task is known current from the evidence, tasks.engine.narrow);
* ninja after the same edit (its two edges run).

The children run with Python's bytecode cache on (PYTHONDONTWRITEBYTECODE removed), as on a user's machine.

With ``--big-source git`` (or ``plain``) it also adds a recipe whose source is a generated tree of 50,000 files
(bench/treehash.py's, symlinked as its ``source/``) under a second config, and times the same three with it: what
one huge source adds to a no-op (ours; ninja with every file of it as an input; the walk).

Run: .venv/bin/python bench/noop.py --recipes 300   (and --recipes 3000; the first build takes minutes)
     .venv/bin/python bench/noop.py --recipes 3000 --big-source git
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from treehash import prepare, scandir_walk  # noqa: E402  (bench/treehash.py, beside this script)

from tasks.settings import host_triple  # noqa: E402

RECIPE = '''[build]
template = "custom"
dependencies = {deps}
script = """
mkdir -p "$COOKBOOK_STAGE/usr/share/{name}"
cp -r "$COOKBOOK_SOURCE/." "$COOKBOOK_STAGE/usr/share/{name}/"
"""
'''


def generate(root: Path, count: int, files: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    names = [f"r{index:04d}" for index in range(count)]
    for index, name in enumerate(names):
        deps = sorted(rng.sample(names[:index], min(index, rng.randint(0, 3))))
        directory = root / "recipes" / name[:3] / name
        (directory / "source").mkdir(parents=True, exist_ok=True)
        (directory / "recipe.toml").write_text(RECIPE.format(name=name, deps=str(deps).replace("'", '"')))
        for number in range(files):
            (directory / "source" / f"f{number}.txt").write_text(f"{name} {number}\n")
    (root / "config").mkdir(exist_ok=True)
    (root / "config" / "bench.toml").write_text("[packages]\n" + "".join(f"{name} = {{}}\n" for name in names))
    return names


def ninja_file(root: Path, names: list[str]) -> None:
    lines = ["rule touch", "  command = touch $out", ""]
    recipes = {path.parent.name: path.parent for path in (root / "recipes").rglob("recipe.toml")}
    for name in names:
        directory = recipes[name]
        inputs = [str(directory / "recipe.toml"), *sorted(str(p) for p in (directory / "source").rglob("*"))]
        deps = [line for line in (directory / "recipe.toml").read_text().splitlines() if line.startswith("depend")]
        order = " ".join(f"out/cook-{dep}" for dep in eval(deps[0].split("=", 1)[1])) if deps else ""
        lines.append(f"build out/cook-{name}: touch {' '.join(inputs)}" + (f" || {order}" if order else ""))
        lines.append(f"build out/pkg-{name}: touch out/cook-{name}")
    (root / "build.ninja").write_text("\n".join(lines) + "\n")


BIG_RECIPE = '''[build]
template = "custom"
script = """
mkdir -p "$COOKBOOK_STAGE/usr/share/big"
echo "a big source" > "$COOKBOOK_STAGE/usr/share/big/readme"
"""
'''


def add_big_source(root: Path, kind: str, files: int, size_mb: int) -> str:
    """A recipe whose ``source/`` is the generated tree (git work tree or plain), its config (the bench's plus
    it), and a ninja file with one more edge that has every file of it as an input. Returns the config name."""
    plain, repo = prepare(files, size_mb)
    tree = repo if kind == "git" else plain
    name = f"big-{kind}"
    directory = root / "recipes" / "big" / name
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "recipe.toml").write_text(BIG_RECIPE)
    source = directory / "source"
    if not source.is_symlink() or source.readlink() != tree:
        source.unlink(missing_ok=True)
        source.symlink_to(tree)
    config = f"bench-{name}.toml"
    (root / "config" / config).write_text((root / "config" / "bench.toml").read_text() + f'"{name}" = {{}}\n')
    inputs = sorted(str(path) for path in tree.rglob("*.rs"))
    (root / f"{name}.ninja").write_text((root / "build.ninja").read_text() + f"build out/cook-{name}: touch " +
                                        " ".join(inputs) + "\n")
    subprocess.run(["ninja", "-C", str(root), "-f", f"{name}.ninja"], check=True, stdout=subprocess.DEVNULL)
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", type=int, default=300)
    parser.add_argument("--files", type=int, default=3, help="source files per recipe")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--big-source", choices=("git", "plain"), help="also time a graph with one huge source")
    parser.add_argument("--big-files", type=int, default=50_000)
    parser.add_argument("--big-mb", type=int, default=100)
    args = parser.parse_args()
    root = PROJECT / "build" / "bench" / f"noop-{args.recipes}"

    environment = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}

    def doit(config: str) -> list[str]:
        return [str(Path(sys.executable).parent / "doit"), "-f", str(PROJECT / "dodo.py"), "pkg", f"root={root}",
                f"config=config/{config}", f"target={host_triple()}"]

    if not (root / "build.ninja").exists():
        shutil.rmtree(root, ignore_errors=True)
        names = generate(root, args.recipes, args.files)
        ninja_file(root, names)
    configs = {"": "bench.toml"}
    if args.big_source:
        configs[f" + {args.big_files:,}-file {args.big_source} source"] = add_big_source(
            root, args.big_source, args.big_files, args.big_mb)
    # Bring everything up to date first (the whole graph the first time; after an edit of the build system's
    # code, whatever that code builds).
    # Twice: a build under one config changes the state, which voids the other's evidence until its next run.
    start = time.perf_counter()
    for config in [*configs.values(), *configs.values()]:
        subprocess.run(doit(config), cwd=PROJECT, check=True, stdout=subprocess.DEVNULL, env=environment)
    subprocess.run(["ninja", "-C", str(root)], check=True, stdout=subprocess.DEVNULL)
    print(f"bringing {args.recipes} recipes up to date took {time.perf_counter() - start:.0f} s", flush=True)
    candidates = {}
    for label, config in configs.items():
        ninja_file_name = "build.ninja" if not label else f"big-{args.big_source}.ninja"
        candidates[f"ours: doit pkg (no-op){label}"] = lambda config=config: _check_noop(
            subprocess.run(doit(config), cwd=PROJECT, capture_output=True, text=True, env=environment))
        candidates[f"ninja no-op{label}"] = lambda name=ninja_file_name: subprocess.run(
            ["ninja", "-C", str(root), "-f", name], check=True, capture_output=True)
        candidates[f"os.scandir+lstat walk{label}"] = lambda big=bool(label): (
            scandir_walk(root / "recipes"), big and scandir_walk((root / "recipes/big" / f"big-{args.big_source}"
                                                                  / "source").resolve()))
    leaf = f"r{args.recipes - 1:04d}"  # the last recipe: nothing depends on it
    edited = root / "recipes" / leaf[:3] / leaf / "source" / "f0.txt"

    def ours() -> subprocess.CompletedProcess:
        return subprocess.run(doit("bench.toml"), cwd=PROJECT, capture_output=True, text=True, env=environment)

    def ninja() -> subprocess.CompletedProcess:
        return subprocess.run(["ninja", "-C", str(root)], check=True, capture_output=True, text=True)

    candidates["ours: doit pkg after a one-file edit"] = lambda: _check_edit(ours(), leaf)
    candidates["ninja after the same edit"] = lambda: _check_ninja_edit(ninja(), leaf)
    catch_up = {"ours: doit pkg after a one-file edit": ninja, "ninja after the same edit": ours}
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    for round_ in range(args.repeat):  # round-robin: load from other work hits every candidate alike
        for name, run in candidates.items():
            if name in catch_up:
                time.sleep(0.02)  # past the file system's clock tick: ninja sees no edit made in its build's tick
                with open(edited, "a") as stream:
                    stream.write(f"edit {round_}\n")
            start = time.perf_counter()
            run()
            samples[name].append(time.perf_counter() - start)
            if name in catch_up:
                catch_up[name]()  # the other builds the edit too, untimed: its next no-op is one
    ninja = statistics.median(samples["ninja no-op"])
    print(f"{args.recipes} recipes, {args.files} source files each; median of {args.repeat}; "
          f"load average {os.getloadavg()[0]:.1f}")
    for name, values in samples.items():
        median = statistics.median(values)
        print(f"  {name:52} {median * 1000:8.0f} ms   ({median / ninja:5.1f}x ninja)")


def _check_edit(result: subprocess.CompletedProcess, leaf: str) -> None:
    ran = {line[3:] for line in result.stdout.splitlines() if line.startswith(".  ")}
    if result.returncode != 0 or ran != {f"cook:{leaf}", f"pkg:{leaf}"}:
        sys.exit(f"the edit ran {sorted(ran)}\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    if not result.stdout.startswith("checking 3 of "):
        print(f"  (the edit was not narrowed: {result.stdout.splitlines()[0]})", flush=True)


def _check_ninja_edit(result: subprocess.CompletedProcess, leaf: str) -> None:
    if f"out/cook-{leaf}" not in result.stdout:
        sys.exit(f"ninja did not rebuild the edit: {result.stdout[-500:]}")


def _check_noop(result: subprocess.CompletedProcess) -> None:
    ran = [line for line in result.stdout.splitlines() if line.startswith(".  ")]
    if result.returncode != 0 or ran:
        sys.exit(f"not a no-op: {ran[:5]}\n{result.stderr[-2000:]}")
    if "nothing changed since the last run" not in result.stdout:
        print("  (a run took the long way: its evidence did not hold)", flush=True)


if __name__ == "__main__":
    main()

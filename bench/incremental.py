"""One changed package in an image of many: the incremental image update beside a from-scratch image build.

Makes a tree under build/bench/incremental/: the demo (its recipes and config) plus N synthetic packages (custom
bash recipes, each five files, 300 KiB in all, under /usr/share/<name>/ and /usr/bin/<name>), all in the
image; builds it once. Then, round-robin in one run:

* incremental: one package's source edited, `doit image` (cook, pkg, then the image updated in place);
* full: the same edit, then the image built from scratch by the installer (its contents record removed, which is
  what makes the stage take the full build).

The times compared are the image task's own, as the build state records them (`duration`), so the cook and pkg of
the edited package, equal in both, do not blur the ratio; the whole `doit image` is printed too.

Run: .venv/bin/python bench/incremental.py --packages 50 --repeat 5
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from tasks.engine import StateStore  # noqa: E402

DOIT = Path(sys.executable).parent / "doit"
RECIPE = '''[build]
template = "custom"
script = """
mkdir -p "$COOKBOOK_STAGE/usr/share/{name}" "$COOKBOOK_STAGE/usr/bin"
for i in 1 2 3 4; do head -c 50000 "$COOKBOOK_SOURCE/data" > "$COOKBOOK_STAGE/usr/share/{name}/part$i"; done
cp "$COOKBOOK_SOURCE/data" "$COOKBOOK_STAGE/usr/bin/{name}"
chmod 755 "$COOKBOOK_STAGE/usr/bin/{name}"
"""
'''


def make_tree(root: Path, packages: int) -> list[str]:
    shutil.copytree(PROJECT / "demo", root, ignore=shutil.ignore_patterns("build", "share"))
    names = [f"synthetic{index:03d}" for index in range(packages)]
    for number, name in enumerate(names):
        recipe = root / "recipes" / name
        (recipe / "source").mkdir(parents=True)
        (recipe / "recipe.toml").write_text(RECIPE.format(name=name))
        (recipe / "source" / "data").write_bytes(bytes([number % 251]) * 100_000 + name.encode())
    config = root / "config/aarch64/demo.toml"
    config.write_text(config.read_text().replace("[packages]\n", "[packages]\n" +
                                                 "".join(f"{name} = {{}}\n" for name in names), 1))
    return names


def image_duration(build: Path) -> float:
    state = StateStore(build / "engine" / "state.sqlite")
    try:
        record = state.get("image")
        assert record is not None and record.duration is not None
        return record.duration
    finally:
        state.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()
    work = PROJECT / "build" / "bench" / "incremental"
    shutil.rmtree(work, ignore_errors=True)
    tree, build = work / "tree", work / "build"
    names = make_tree(tree, options.packages)
    variables = [f"root={tree}", "config=config/aarch64/demo.toml", "toolchain=host", f"build={build}"]
    subprocess.run([DOIT, "-n", "2", "image", *variables], cwd=PROJECT, check=True, capture_output=True)
    image = build / "aarch64" / "demo.img"
    results: dict[str, list[tuple[float, float]]] = {"incremental": [], "full": []}
    for round_ in range(options.repeat):
        for kind in results:
            data = tree / "recipes" / names[round_ % len(names)] / "source" / "data"
            data.write_bytes(data.read_bytes() + f"{kind}{round_}".encode())
            if kind == "full":
                image.with_name(image.name + ".contents.json").unlink()
            started = time.perf_counter()
            run = subprocess.run([DOIT, "image", *variables], cwd=PROJECT, capture_output=True, text=True)
            wall = time.perf_counter() - started
            assert run.returncode == 0, run.stdout + run.stderr
            assert ("updated in place" in run.stdout) == (kind == "incremental"), run.stdout
            results[kind].append((image_duration(build), wall))
    incremental = statistics.median(duration for duration, _ in results["incremental"])
    full = statistics.median(duration for duration, _ in results["full"])
    print(f"{options.packages + 5} packages in the image ({image.stat().st_size >> 20} MiB), one changed, "
          f"median of {options.repeat}:")
    for kind, samples in results.items():
        print(f"  {kind:<12} image task {statistics.median(d for d, _ in samples):6.2f} s   "
              f"`doit image` {statistics.median(w for _, w in samples):6.2f} s")
    print(f"  ratio (image task, incremental / full): {incremental / full:.2f}")


if __name__ == "__main__":
    main()

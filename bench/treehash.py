"""Benchmark of source-tree hashing: no-op checks and first-build throughput, printed (no thresholds).

Generates a tree of N files (once as a git work tree, once as a plain directory, under build/bench/) and measures,
in one run:

* no-op check time: ours on the git work tree (one ``git status``), ours on the plain tree (stat cache), a plain
  Python ``os.scandir`` + ``lstat`` walk of the same tree, ``git status`` alone, and ninja (``ninja -n`` and a no-op
  ``ninja``) on a build.ninja whose one edge has every file of the tree as input;
* first-build hashing throughput (MB/s), with an empty stat cache, page cache cold and warm, 1 reader vs a pool.

Quick run:  /work/venv/bin/python bench/treehash.py
Issue size: /work/venv/bin/python bench/treehash.py --files 50000 --size-mb 1000 --repeat 15 [--drop-caches]
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
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

from tasks.engine.treehash import TreeHasher, default_workers  # noqa: E402

BENCH_DIR = Path(__file__).resolve().parent.parent / "build" / "bench"
GIT_ENV = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@localhost",
           "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@localhost"}


def generate(root: Path, files: int, size_mb: int, seed: int = 1) -> None:
    """``files`` files of random sizes adding up to about ``size_mb`` MB, 50 per directory, 3 levels deep."""
    rng = random.Random(seed)
    mean = size_mb * 1_000_000 / files
    for index in range(files):
        directory = root / f"crate{index // 2500:02d}" / f"mod{index // 50 % 50:02d}"
        if index % 50 == 0:
            directory.mkdir(parents=True, exist_ok=True)
        size = min(int(rng.expovariate(1 / mean)), int(mean * 20))
        (directory / f"file{index:05d}.rs").write_bytes(rng.randbytes(size))


def prepare(files: int, size_mb: int) -> tuple[Path, Path]:
    """The plain tree and the git work tree for these parameters, generated only once."""
    tag = f"{files}-{size_mb}mb"
    plain, repo = BENCH_DIR / f"plain-{tag}", BENCH_DIR / f"git-{tag}"
    if not plain.with_name(plain.name + ".complete").exists():
        shutil.rmtree(plain, ignore_errors=True)
        print(f"generating {files} files, {size_mb} MB in {plain} …", flush=True)
        generate(plain, files, size_mb)
        plain.with_name(plain.name + ".complete").touch()
    if not repo.with_name(repo.name + ".complete").exists():
        shutil.rmtree(repo, ignore_errors=True)
        print(f"copying into a git work tree {repo} and committing …", flush=True)
        shutil.copytree(plain, repo)
        for argv in (["init", "-q"], ["config", "core.compression", "0"], ["add", "-A"], ["commit", "-qm", "bench"]):
            subprocess.run(["git", "-C", str(repo), *argv], check=True, env=GIT_ENV)
        # Files written in the second the index was written are "racily clean": git re-reads them until the index
        # is rewritten later, so refresh it once to measure the steady state.
        time.sleep(1.1)
        subprocess.run(["git", "-C", str(repo), "update-index", "-q", "--really-refresh"], check=True)
        repo.with_name(repo.name + ".complete").touch()
    return plain, repo


def timed_rounds(candidates: dict[str, Callable[[], object]], repeat: int) -> dict[str, list[float]]:
    """Each candidate once per round, ``repeat`` rounds: load from other work hits all of them alike."""
    times: dict[str, list[float]] = {label: [] for label in candidates}
    for _ in range(repeat):
        for label, action in candidates.items():
            start = time.perf_counter()
            action()
            times[label].append(time.perf_counter() - start)
    return times


def report(label: str, times: list[float]) -> None:
    print(f"  {label:<52} median {statistics.median(times) * 1000:8.1f} ms   min {min(times) * 1000:8.1f} ms",
          flush=True)


def scandir_walk(root: Path) -> int:
    """The baseline: visit every entry and lstat every file, nothing else."""
    count, stack = 0, [str(root)]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name != ".git":
                        stack.append(entry.path)
                else:
                    entry.stat(follow_symlinks=False)
                    count += 1
    return count


def ninja_dir(tree: Path) -> Path:
    """A build.ninja whose single edge has every file of ``tree`` as an input, built once."""
    directory = BENCH_DIR / f"ninja-{tree.name}"
    if not (directory / "out.stamp").exists():
        directory.mkdir(parents=True, exist_ok=True)
        inputs = sorted(str(path) for path in tree.rglob("*.rs"))
        text = "rule stamp\n  command = touch $out\nbuild out.stamp: stamp " + " ".join(
            path.replace(" ", "$ ").replace(":", "$:") for path in inputs) + "\n"
        (directory / "build.ninja").write_text(text)
        subprocess.run(["ninja", "-C", str(directory)], check=True, capture_output=True)
    return directory


def drop_page_cache(tree: Path, everything: bool) -> str:
    """Evict the tree's file data from the page cache (posix_fadvise); with ``everything``, drop the whole
    machine's caches, inodes and directories too (root only, and it slows everything else running here)."""
    subprocess.run(["sync"], check=True)
    if everything:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return "drop_caches"
    for path in tree.rglob("*"):
        if path.is_file() and not path.is_symlink():
            fd = os.open(path, os.O_RDONLY)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            os.close(fd)
    return "fadvise: file data only"


def tree_bytes(tree: Path) -> int:
    return sum(path.lstat().st_size for path in tree.rglob("*") if ".git" not in path.parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=50_000)
    parser.add_argument("--size-mb", type=int, default=100, help="total size (the issue's tree: 1000)")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--drop-caches", action="store_true",
                        help="cold runs drop all of the machine's caches (root), not just the tree's file data")
    args = parser.parse_args()
    if shutil.which("ninja") is None:
        sys.exit("ninja is not installed (apt-get install ninja-build)")
    plain, repo = prepare(args.files, args.size_mb)
    size = tree_bytes(plain)
    workers = default_workers()
    caches = BENCH_DIR / "caches"
    shutil.rmtree(caches, ignore_errors=True)
    print(f"\ntree: {args.files} files, {size / 1e6:.0f} MB; {os.cpu_count()} CPUs; pool of {workers} readers; "
          f"load average {os.getloadavg()[0]:.1f} (other work on the machine slows every line alike)")

    print("\nfirst build (empty stat cache): hashing throughput")

    def throughput(label: str, action: Callable[[], object]) -> None:
        start = time.perf_counter()
        action()
        seconds = time.perf_counter() - start
        print(f"  {label:<66} {seconds:6.2f} s  {size / 1e6 / seconds:7.1f} MB/s", flush=True)

    for readers in (1, workers):
        method = drop_page_cache(plain, args.drop_caches)
        throughput(f"plain tree, cold page cache ({method}), {readers} reader(s)",
                   lambda n=readers: TreeHasher(caches / f"cold-{n}", workers=n).hash(plain))
        throughput(f"plain tree, warm page cache, {readers} reader(s)",
                   lambda n=readers: TreeHasher(caches / f"warm-{n}", workers=n).hash(plain))
    throughput(f"git work tree, warm page cache, {workers} readers (ls-tree + read)",
               lambda: TreeHasher(caches / "git-first", workers=workers).hash(repo))

    print(f"\nno-op check of the whole tree ({args.repeat} rounds, each candidate once per round; caches warm)")
    git_hasher = TreeHasher(caches / "git-first", workers=workers)
    walk_hasher = TreeHasher(caches / f"warm-{workers}", workers=workers)
    assert git_hasher.hash(repo).hashed_files == 0 and walk_hasher.hash(plain).hashed_files == 0
    ninja = ninja_dir(plain)
    results = timed_rounds({
        "ours, git work tree (git status + cache lookup)": lambda: git_hasher.hash(repo),
        "  git status alone (the same arguments)": lambda: _git_status(repo),
        "ours, plain tree (scandir walk + stat cache)": lambda: walk_hasher.hash(plain),
        "Python os.scandir + lstat walk": lambda: scandir_walk(plain),
        "ninja -n (one edge, every file an input)":
            lambda: subprocess.run(["ninja", "-C", str(ninja), "-n"], check=True, capture_output=True),
        "ninja no-op build": lambda: subprocess.run(["ninja", "-C", str(ninja)], check=True, capture_output=True),
    }, args.repeat)
    for label, times in results.items():
        report(label, times)
    digests = {git_hasher.hash(repo).digest, walk_hasher.hash(plain).digest}
    print(f"\ngit and walk digests agree: {len(digests) == 1}")


def _git_status(repo: Path) -> None:
    subprocess.run(["git", "-C", str(repo), "status", "--porcelain=v2", "-z", "--branch", "--no-renames",
                    "--untracked-files=all", "--ignored=no"], check=True, capture_output=True)


if __name__ == "__main__":
    main()

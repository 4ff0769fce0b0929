"""The shared cache's worth and cost, in one run: the demo built cold on a new build directory, beside the same build
taken from a cache that CI filled (a real Garage on 127.0.0.1, tests/garage.py), and the no-op with the cache set
beside the no-op without (a no-op never asks the store: the ratio should be 1). With ``--fork``, the same for the
fork-shaped fixture (tests/fork, Debian's rustc-web, LLVM backend: minutes of cargo), once each.

Run: .venv/bin/python bench/cache.py [--repeat 5] [--fork]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from tasks.toolchain import hosttools  # noqa: E402
from tests.garage import Garage  # noqa: E402
from tests.test_cache import DEMO, Team  # noqa: E402

DOIT = PROJECT / ".venv" / "bin" / "doit"


def timed(team: Team, build: Path, *variables: str, env: dict | None = None) -> float:
    argv = [str(DOIT), "-f", str(PROJECT / "dodo.py"), "qcow2", f"root={team.tree}", f"build={build}", *DEMO,
            *variables]
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, **(env or {})})
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed:\n{done.stdout}{done.stderr}")
    return elapsed


def fork_times(garage: Garage, scratch: Path) -> tuple[float, float, float]:
    """The fork fixture: CI's build (uploading), a cold build and one from the cache, each on a new build directory."""
    from tests.test_fork_fixture import KEY_DIR, assemble_tree
    fork = assemble_tree(scratch / "fork" / "tree")
    url = f"cache=s3://{garage.bucket}/fork"

    def build(directory: Path, *variables: str, env: dict | None = None) -> float:
        argv = [str(DOIT), "-f", str(PROJECT / "dodo.py"), "qcow2", f"root={fork.tree}", f"build={directory}",
                "config=config/aarch64/fork.toml", "rust=/usr", "backend=llvm",
                f"bootloader={fork.tree / 'BOOTAA64.EFI'}", *variables]
        started = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True,
                              env={**os.environ, "SOURCE_DATE_EPOCH": "1700000000", **(env or {})})
        if done.returncode != 0:
            sys.exit(f"{' '.join(argv)} failed:\n{done.stdout}{done.stderr}")
        return time.perf_counter() - started

    ci = build(fork.build, url, "cache_upload=yes", env=garage.env(garage.writer))
    cold = build(scratch / "fork" / "cold")
    shutil.copytree(fork.build / KEY_DIR, scratch / "fork" / "warm" / KEY_DIR)  # the team's package key
    warm = build(scratch / "fork" / "warm", url, env=garage.env(garage.reader))
    return ci, cold, warm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--fork", action="store_true", help="the fork fixture too (minutes of cargo)")
    arguments = parser.parse_args()
    repeat = arguments.repeat
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # as on a user's machine
    os.environ["REDOX_BUILD_SETTINGS"] = "/nonexistent/settings.toml"
    scratch = Path(tempfile.mkdtemp(prefix="bench-cache-"))
    garage = Garage.start(hosttools.ensure("garage", PROJECT / "build") / "garage", scratch / "garage")
    try:
        team = Team(scratch / "team")
        url = f"cache=s3://{garage.bucket}/bench"
        ci = timed(team, team.ci, url, "cache_upload=yes", env=garage.env(garage.writer))
        cold, warm = [], []
        for index in range(repeat):  # round-robin: the machine's speed drifts
            cold.append(timed(team, plain_build := team.machine(f"cold-{index}")))
            warm.append(timed(team, cached_build := team.machine(f"warm-{index}"), url,
                              env=garage.env(garage.reader)))
        plain, cached = [], []
        for _ in range(repeat):  # the no-ops of the last two build directories
            plain.append(timed(team, plain_build))
            cached.append(timed(team, cached_build, url, env=garage.env(garage.reader)))
        fork = fork_times(garage, scratch) if arguments.fork else None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        garage.stop()
    median = statistics.median
    print(f"demo, doit qcow2 on a new build directory, median of {repeat}:")
    print(f"  CI's build, uploading:        {ci:6.2f} s")
    print(f"  cold (no cache):              {median(cold):6.2f} s")
    print(f"  from the cache (Garage, S3):  {median(warm):6.2f} s   {median(cold) / median(warm):.1f}x faster")
    print(f"no-op: without cache= {median(plain) * 1000:.0f} ms, with it {median(cached) * 1000:.0f} ms "
          f"(ratio {median(cached) / median(plain):.2f})")
    if fork is not None:
        ci, cold, warm = fork
        print("fork fixture, doit qcow2 on a new build directory, once each:")
        print(f"  CI's build, uploading:        {ci:6.1f} s")
        print(f"  cold (no cache):              {cold:6.1f} s")
        print(f"  from the cache (Garage, S3):  {warm:6.1f} s   {cold / warm:.1f}x faster")


if __name__ == "__main__":
    main()

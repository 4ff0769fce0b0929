"""Putting one binary into a built image: `doit inject` beside what users did, a FUSE mount + cp + unmount.

Builds the demo image once under build/bench/inject/, then times, round-robin in one run:

* ours: `doit inject BINARY /usr/bin/injected` through the real CLI (the overlay copy, the image written in one
  RedoxFS transaction on a sparse copy that replaces it, the store recording the new image);
* the tool alone: tasks.image.files.ImageFiles.apply of the same Put, in-process (the transaction, the copy, the
  rename: the cost of atomicity without doit's start-up);
* FUSE: the pinned `redoxfs` mounted on the image, `cp` of the binary, `umount` (what fork-workflow.md §4 does by
  hand; in place, not atomic), where /dev/fuse is usable.

Run: .venv/bin/python bench/inject.py --repeat 9
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from tasks.image import gpt  # noqa: E402
from tasks.image.files import ImageFiles, Put  # noqa: E402
from tasks.image.fuse import fuse_usable, mounted  # noqa: E402
from tasks.toolchain import hosttools  # noqa: E402

DOIT = Path(sys.executable).parent / "doit"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--size-kib", type=int, default=2048, help="size of the injected binary")
    options = parser.parse_args()
    work = PROJECT / "build" / "bench" / "inject"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    variables = ["root=demo", "config=config/aarch64/demo.toml", "toolchain=host", f"build={work / 'build'}",
                 f"overlay={work / 'overlay'}"]
    subprocess.run([DOIT, "image", *variables], cwd=PROJECT, check=True, capture_output=True)
    image = work / "build" / "aarch64" / "demo.img"
    binary = work / "tool"
    binary.write_bytes(os.urandom(options.size_kib * 1024))
    binary.chmod(0o755)
    files = ImageFiles(image, hosttools.ensure_own("redox-image"))
    redoxfs = hosttools.ensure("redoxfs", PROJECT / "build") / "redoxfs"
    offset = gpt.read_table(image).by_name("REDOX").offset

    def ours() -> None:
        subprocess.run([DOIT, "inject", binary, "/usr/bin/injected", *variables], cwd=PROJECT, check=True,
                       capture_output=True)

    def tool_alone() -> None:
        files.apply([Put(binary, "/usr/bin/injected-by-the-tool", 0o755)])

    def fuse() -> None:
        with mounted(redoxfs, image, work / "mnt", offset) as root:
            shutil.copy(binary, root / "usr/bin/injected-by-fuse")

    contenders = {"doit inject (CLI)": ours, "ImageFiles.apply (in-process)": tool_alone}
    if fuse_usable():
        contenders["FUSE mount + cp + umount"] = fuse
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(options.repeat):
        for name, run in contenders.items():
            started = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - started)
    size = image.stat().st_size >> 20
    print(f"one {options.size_kib} KiB binary into the demo image ({size} MiB), median of {options.repeat}:")
    fuse_median = statistics.median(times["FUSE mount + cp + umount"]) if "FUSE mount + cp + umount" in times \
        else None
    for name, samples in times.items():
        median = statistics.median(samples)
        ratio = f"  ({median / fuse_median:.2f}× FUSE)" if fuse_median else ""
        print(f"  {name:<32} {median * 1000:7.0f} ms{ratio}")
    if fuse_median is None:
        print("  (FUSE is not usable here: /dev/fuse is missing or not ours)")


if __name__ == "__main__":
    main()

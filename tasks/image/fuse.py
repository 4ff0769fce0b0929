"""Read a RedoxFS back on the host: the ``redoxfs`` tool's FUSE mount, for inspection and tests.

Mounting is not read-only: opening the filesystem releases nodes and squashes the allocation log, so the image
changes. Mount a copy when the image is an artifact whose bytes matter.
"""
from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import CommandError
from ..process import command_line, run
from .redoxfs import BLOCK_SIZE

MOUNT_TIMEOUT = 30.0


def fuse_usable() -> bool:
    """True when this process can open /dev/fuse (FUSE in the kernel and the right to mount it)."""
    return os.access("/dev/fuse", os.R_OK | os.W_OK)


@contextmanager
def mounted(redoxfs_bin: Path, image: Path, mountpoint: Path, offset: int = 0,
            log: Path | None = None) -> Iterator[Path]:
    """Mount the RedoxFS whose header ring starts at byte ``offset`` of ``image`` on ``mountpoint``."""
    if not fuse_usable():
        raise CommandError("cannot mount RedoxFS: /dev/fuse is missing or not usable by this user")
    mountpoint.mkdir(parents=True, exist_ok=True)
    argv = [str(redoxfs_bin), "--no-daemon", str(image), str(mountpoint), f"{offset // BLOCK_SIZE:x}"]
    # The daemon lives as long as the mount, which run() cannot express (it waits for the exit); and the
    # forking mode would keep run()'s output pipe open. So: --no-daemon under Popen, ended by the unmount.
    output = open(log, "ab") if log is not None else subprocess.DEVNULL
    daemon = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=output, stderr=output)
    try:
        _wait_for_mount(daemon, mountpoint, argv)
        yield mountpoint
    finally:
        if os.path.ismount(mountpoint):
            run(["umount", mountpoint], log=log)
        _stop(daemon)
        if log is not None:
            output.close()


def _wait_for_mount(daemon: subprocess.Popen, mountpoint: Path, argv: list[str]) -> None:
    deadline = time.monotonic() + MOUNT_TIMEOUT
    while not os.path.ismount(mountpoint):
        if daemon.poll() is not None:
            raise CommandError(f"`{command_line(argv)}` exited with status {daemon.returncode} before mounting")
        if time.monotonic() > deadline:
            raise CommandError(f"`{command_line(argv)}` did not mount within {MOUNT_TIMEOUT:.0f} s")
        time.sleep(0.05)


def _stop(daemon: subprocess.Popen) -> None:
    try:
        daemon.wait(timeout=MOUNT_TIMEOUT)
    except subprocess.TimeoutExpired:
        daemon.kill()
        daemon.wait()

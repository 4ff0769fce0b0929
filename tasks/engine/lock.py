"""One build at a time per build directory: an flock on ``<build>/engine/build.lock``.

The kernel drops an flock when its holder dies (even by ``kill -9``), so a stale lock file never blocks anyone;
the file's text only names the current holder for the message a second build prints while it waits.
"""
from __future__ import annotations

import fcntl
import json
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from ..errors import LockError

POLL_SECONDS = 0.1


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class BuildLock:
    """An exclusive lock on a build directory. Use one per process; forked workers share their parent's."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._fd: int | None = None

    def acquire(self, *, wait: bool = True, timeout: float | None = None,
                notify: Callable[[str], None] = _to_stderr) -> None:
        """Take the lock. Held elsewhere: with ``wait``, say so through ``notify`` and wait (at most ``timeout``
        seconds, then :class:`LockError`); without, raise :class:`LockError` at once."""
        if self._fd is not None:
            raise LockError("this process already holds the build lock", path=self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            if not _try_lock(fd):
                holder = self.holder()
                if not wait:
                    raise LockError(f"another build holds this build directory ({holder})", path=self.path)
                notify(f"waiting for build lock held by {holder} ({self.path})")
                self._wait(fd, timeout, holder)
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "since": _now(), "command": " ".join(sys.argv)}).encode(), 0)
        self._fd = fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is None:
            return
        os.ftruncate(self._fd, 0)
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    def holder(self) -> str:
        """Who holds the lock, as the file tells: ``pid N (command) since T``."""
        try:
            info = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return "another process"
        return f"pid {info['pid']} ({info['command']}) since {info['since']}"

    def __enter__(self) -> BuildLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def _wait(self, fd: int, timeout: float | None, holder: str) -> None:
        if timeout is None:
            fcntl.flock(fd, fcntl.LOCK_EX)
            return
        deadline = time.monotonic() + timeout
        while not _try_lock(fd):
            if time.monotonic() >= deadline:
                raise LockError(f"gave up after {timeout:g} s waiting for {holder}", path=self.path)
            time.sleep(POLL_SECONDS)


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")

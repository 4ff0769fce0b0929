"""Task logs: one file per task per run, the latest at a stable path.

``build/logs/<task>.log`` is a symlink to the task's latest run, ``build/logs/<task>/<UTC time>-<pid>.log``, which
starts with a header (when, the command line, the signature the task ran under); the last :data:`KEPT` runs of
each task are kept. Everything a task's commands print goes to the stable path (``tasks.process.run`` appends
there), so a reader (the progress display, a user's ``tail -f``) needs no more than the task's name. Logs hold what
builds printed, secrets masked: directories 0700, files 0600 (docs/safety.md).

Knows nothing of doit.
"""
from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

KEPT = 10
TAIL_BYTES = 4096


def log_name(task: str) -> str:
    """The file name of a task's log: ``cook:hello`` → ``cook-hello`` (no ``:`` in file names, for other tools)."""
    return task.replace(":", "-").replace("/", "_")


def start_run_log(stable: Path, header: Sequence[str]) -> Path:
    """A new log for one run, with ``header``; ``stable`` then points to it. Returns the run's log."""
    runs = stable.with_suffix("")  # build/logs/cook-hello/
    runs.mkdir(parents=True, mode=0o700, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    path = runs / f"{stamp}-{os.getpid()}.log"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(descriptor, "w", encoding="utf-8") as stream:
        stream.writelines(f"# {line}\n" for line in header)
    link = stable.with_name(stable.name + ".new")
    link.unlink(missing_ok=True)
    link.symlink_to(path.relative_to(stable.parent))
    os.replace(link, stable)
    for old in sorted(runs.glob("*.log"))[:-KEPT]:
        old.unlink(missing_ok=True)
    return path


def last_line(path: Path) -> str:
    """The last non-empty line of a log (its tail only is read), or "" when there is none yet."""
    return next((line for line in reversed(_tail(path)) if line), "")


def last_telling_line(path: Path) -> str:
    """The last line of a log that says something of the work, as the progress display shows it: not the run's
    header (``# signature …``), not a line without a letter or digit (the ``}`` of printed JSON)."""
    return next((line for line in reversed(_tail(path))
                 if not line.startswith("# ") and any(char.isalnum() for char in line)), "")


def _tail(path: Path) -> list[str]:
    try:
        with open(path, "rb") as stream:
            stream.seek(0, os.SEEK_END)
            stream.seek(max(0, stream.tell() - TAIL_BYTES))
            return [line.strip() for line in stream.read().decode("utf-8", "replace").splitlines()]
    except OSError:
        return []

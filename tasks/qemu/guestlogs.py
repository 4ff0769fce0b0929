"""The guest's logs (``/scheme/logging/**``: every daemon's and driver's log, plain and with colours) brought to the
host, as the fork's users did by copying them to the 9p share by hand (which fails here: the guest's ``cp -r`` onto
9p cannot make the subdirectories).

They travel over the console the session already has: ``ls -R`` names the files, ``cat`` gives each. Every name
comes from the guest, so each becomes a path under the destination only when it is a plain relative path (no
``..``, no ``/`` at its start, no NUL): a guest never writes outside ``build/logs/guest/<time>/``.
"""
from __future__ import annotations

import time
from pathlib import Path, PurePosixPath

from ..atomic import write_atomically
from ..errors import BuildError

GUEST_LOGS = "/scheme/logging"


def listed_files(listing: str, root: str = GUEST_LOGS) -> list[str]:
    """The files of an ``ls -1R ROOT`` listing, relative to ``ROOT``: the entries that are no directory (a directory
    is listed again as ``DIR:``); names that are not plain relative paths are left out."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in listing.splitlines():
        line = line.rstrip("\r")
        if line.endswith(":") and line.startswith(root):
            current = sections.setdefault(line[:-1].rstrip("/"), [])
        elif line and current is not None:
            current.append(line)
    directories = set(sections)
    files = []
    for directory, names in sections.items():
        for name in names:
            full = f"{directory}/{name}"
            relative = full[len(root):].lstrip("/")
            if full not in directories and _plain(relative):
                files.append(relative)
    return sorted(files)


def _plain(relative: str) -> bool:
    path = PurePosixPath(relative)
    return bool(relative) and not path.is_absolute() and ".." not in path.parts and "\0" not in relative


def fetch_guest_logs(guest, destination_root: Path, root: str = GUEST_LOGS) -> tuple[Path, list[str]]:
    """Every file under ``root`` in the guest into ``<destination_root>/<UTC time>/``; returns the directory and
    the files that could not be read (a note each)."""
    destination = destination_root / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    listing = guest.run(f"ls -1R {root}")  # one name per line: a terminal would get columns
    if not listing.ok:
        raise BuildError(f"`ls -1R {root}` in the guest failed (exit status {listing.status}): "
                         f"{listing.output.strip()[:200]}")
    problems = []
    for relative in listed_files(listing.output, root):
        result = guest.run(f"cat {root}/{relative}")
        if not result.ok:
            problems.append(f"{relative}: exit status {result.status}")
            continue
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomically(target, result.output.encode(), mode=0o600)  # logs are the owner's (docs/safety.md)
    destination.mkdir(parents=True, exist_ok=True, mode=0o700)
    return destination, problems

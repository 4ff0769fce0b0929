"""The revision of the tree being built, as the text stamps name it: its commit and its source date.

init.rc's second line (the initfs), ``BUILD_ID`` in ``/usr/lib/os-release`` and root's ion initrc (the image) show
``<commit>[-dirty] @ <date>`` and when the artifact was built. The date is ``SOURCE_DATE_EPOCH``, else the time of
the tree's last commit, else now, so that the same inputs make the same bytes; the build time is
``SOURCE_DATE_EPOCH``, else now. ``-dirty``: tracked files differ from the commit. The flag is part of the initfs's
and the image's signatures (a tree going from clean to edited rebuilds them once, not on every edit); the build time
is not. The JSON stamp beside each artifact records every tree's dirty flag.
Knows nothing of doit.
"""
from __future__ import annotations

import functools
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import CommandError, InputError
from .process import run

if TYPE_CHECKING:
    from .initfs.tree import BuildStamp

STAMP_DATE = "%Y-%m-%d %H:%M"
HEAD_COMMIT = ("rev-parse", "--short=9", "HEAD")
COMMIT_TIME = ("log", "-1", "--format=%ct")
DIRTY = ("diff", "--quiet", "HEAD", "--")  # exit status 1: tracked files differ from the commit


class TreeRevision:
    """The commit and source date of the tree at ``root``; each asked of git once."""

    def __init__(self, root: Path):
        self.root = root

    def probes(self) -> list[list[str]]:
        """The commands the stamp is read from: the no-op evidence runs them again to see a new commit."""
        return [self._git_argv(*args) for args in (HEAD_COMMIT, COMMIT_TIME, DIRTY)]

    @functools.cached_property
    def stamp(self) -> BuildStamp:
        from .initfs.tree import BuildStamp
        date = time.strftime(STAMP_DATE, time.gmtime(self.source_date_epoch))
        commit = self._git(*HEAD_COMMIT)
        built = time.gmtime(self.source_date_epoch if "SOURCE_DATE_EPOCH" in os.environ else None)
        return BuildStamp(commit=commit or "unversioned", dirty=commit is not None and self._dirty(), date=date,
                          built=time.strftime(STAMP_DATE, built))

    def _dirty(self) -> bool:
        try:
            run(self._git_argv(*DIRTY), capture=True)
        except CommandError:
            return True
        return False

    @functools.cached_property
    def source_date_epoch(self) -> int:
        if (epoch := os.environ.get("SOURCE_DATE_EPOCH")) is not None:
            if not epoch.isdigit():
                raise InputError(f"{epoch!r} is not a number of seconds", key="SOURCE_DATE_EPOCH")
            return int(epoch)
        committed = self._git(*COMMIT_TIME)
        return int(committed) if committed else int(time.time())

    def _git(self, *args: str) -> str | None:
        """Output of a git command in the tree; None when the tree is not a git work tree."""
        try:
            return run(self._git_argv(*args), capture=True).strip()
        except CommandError:
            return None

    def _git_argv(self, *args: str) -> list[str]:
        return ["git", "--no-optional-locks", "-C", str(self.root), *args]

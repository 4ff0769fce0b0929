"""Put a finished artifact in place while keeping the previous ones: ``x`` → ``x.bak`` → ``x.bak.1`` → …

This replaces the manual "copy the image before each session" step: a build that fails never reaches
:func:`install_with_backups`, so ``x`` and its backups stay as they were.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import InputError


def backup_paths(path: Path, keep: int) -> list[Path]:
    """The backup names of ``path``, newest first: ``x.bak``, ``x.bak.1``, …, ``keep`` of them."""
    if keep < 0:
        raise InputError(f"cannot keep {keep} backups", key="backups")
    return [path.with_name(path.name + (".bak" if index == 0 else f".bak.{index}")) for index in range(keep)]


def install_with_backups(finished: Path, path: Path, keep: int) -> None:
    """Rename ``finished`` to ``path``; the previous ``path`` becomes ``x.bak``, older backups shift by one.

    ``path`` exists at every moment: the previous version is hard-linked as ``x.bak`` before the rename
    replaces it, so an interruption anywhere leaves either the old or the new artifact in place.
    """
    backups = backup_paths(path, keep)
    if backups and path.exists():
        for older, newer in reversed(list(zip(backups, backups[1:]))):
            if older.exists():
                os.replace(older, newer)
        backups[0].unlink(missing_ok=True)
        os.link(path, backups[0])
    os.replace(finished, path)

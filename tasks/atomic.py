"""The one way to write outputs: build into ``<path>.partial``, rename into place only on success.

A failure (an exception, or ``kill -9``) leaves the previous artifact untouched: the half-written ``.partial`` is
never at the artifact's path, and a leftover one from a killed run is removed before the next attempt.
"""
from __future__ import annotations

import ctypes
import functools
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from .errors import CommandError

PARTIAL_SUFFIX = ".partial"
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def partial_path(path: Path) -> Path:
    return path.with_name(path.name + PARTIAL_SUFFIX)


def remove_path(path: Path) -> None:
    """Remove a file, symlink or directory tree; nothing if absent."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.is_symlink() or path.exists():
        path.unlink()


def write_atomically(path: Path, data: bytes | str, mode: int = 0o644) -> None:
    """Write a small file (key, cache, journal, stamp, index) through a uniquely named temporary file and a rename.

    The temporary name is unique so that two processes refreshing the same file never write into one another's.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=PARTIAL_SUFFIX)
    try:
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(data.encode() if isinstance(data, str) else data)
        os.chmod(temporary, mode)  # mkstemp creates 0600
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_text_if_changed(path: Path, text: str, mode: int = 0o644) -> bool:
    """Write ``text`` to ``path`` unless it already holds exactly that (its mtime then stays). True if written."""
    if path.is_file() and path.read_text() == text:
        return False
    write_atomically(path, text, mode)
    return True


@contextmanager
def atomic_output(path: Path, mode: int = 0o644) -> Iterator[BinaryIO]:
    """A seekable binary stream that becomes ``path`` (with permissions ``mode``) when the block succeeds."""
    partial = fresh_partial(path, directory=False)
    descriptor = os.open(partial, os.O_RDWR | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(descriptor, "w+b") as stream:
            yield stream
        os.chmod(partial, mode)  # os.open's mode is filtered by the umask
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def fresh_partial(path: Path, *, directory: bool) -> Path:
    """An empty ``<path>.partial`` (a directory when asked), after removing any leftover of a killed run."""
    partial = partial_path(path)
    remove_path(partial)
    partial.parent.mkdir(parents=True, exist_ok=True)
    if directory:
        partial.mkdir()
    return partial


def move_into_place(partial: Path, final: Path) -> None:
    """Put a finished ``partial`` at ``final``; a directory replaces the old one in one atomic exchange."""
    if not os.path.lexists(partial):
        raise CommandError(f"the task did not produce {partial.name}", path=partial)
    if partial.is_dir() and not partial.is_symlink() and final.is_dir() and not final.is_symlink():
        _replace_directory(partial, final)
    else:
        if final.is_dir() and not final.is_symlink():
            shutil.rmtree(final)
        os.replace(partial, final)


@contextmanager
def atomic_path(path: Path, *, directory: bool = False) -> Iterator[Path]:
    """Yield ``<path>.partial`` to write (an empty directory to fill, with ``directory``); on success it replaces
    ``path``, on failure it is removed."""
    partial = fresh_partial(path, directory=directory)
    try:
        yield partial
    except BaseException:
        remove_path(partial)
        raise
    move_into_place(partial, path)


def _replace_directory(new: Path, final: Path) -> None:
    """Swap ``new`` and ``final`` with renameat2(RENAME_EXCHANGE), then delete the old tree now at ``new``.

    Without the exchange (not Linux, or a filesystem that refuses it) two renames are used; a kill between them
    leaves ``final`` absent, which the state store treats as a missing output (the task simply runs again).
    """
    if _exchange(new, final):
        shutil.rmtree(new)
        return
    old = final.with_name(final.name + ".old")
    remove_path(old)
    os.rename(final, old)
    os.rename(new, final)
    shutil.rmtree(old)


def _exchange(first: Path, second: Path) -> bool:
    renameat2 = _renameat2()
    if renameat2 is None:
        return False
    return renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE) == 0


@functools.cache
def _renameat2():
    """glibc's renameat2 from the running process's own symbols; None where libc has none (macOS, old glibc)."""
    return getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)

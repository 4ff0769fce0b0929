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
from collections.abc import Callable, Iterator
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
    if _is_tree(path):
        shutil.rmtree(path)
    elif path.is_symlink() or path.exists():
        path.unlink()


@contextmanager
def removed_on_failure(*paths: Path) -> Iterator[None]:
    """Remove ``paths`` (files or trees) if the block raises anything, Ctrl-C included, then re-raise.

    The one cleanup of every partial here: a failed write leaves nothing half-written behind. Used directly only
    where the partials are not a single ``<path>.partial`` (a unique temporary name, a package's staged entries).
    """
    try:
        yield
    except BaseException:
        for path in paths:
            remove_path(path)
        raise


def write_atomically(path: Path, data: bytes | str, mode: int = 0o644) -> None:
    """Write a small file (key, cache, journal, stamp, index) through a uniquely named temporary file and a rename.

    The temporary name is unique so that two processes refreshing the same file never write into one another's.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=PARTIAL_SUFFIX)
    with removed_on_failure(Path(temporary)):
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(data.encode() if isinstance(data, str) else data)
        os.chmod(temporary, mode)  # mkstemp creates 0600
        os.replace(temporary, path)


def write_text_if_changed(path: Path, text: str, mode: int = 0o644) -> bool:
    """Write ``text`` to ``path`` unless it already holds exactly that (its mtime then stays). True if written."""
    if path.is_file() and path.read_text() == text:
        return False
    write_atomically(path, text, mode)
    return True


@contextmanager
def atomic_output(path: Path, mode: int = 0o644) -> Iterator[BinaryIO]:
    """A seekable binary stream that becomes ``path`` (with permissions ``mode``) when the block succeeds."""
    with atomic_path(path) as partial, open(partial, "w+b") as stream:
        os.fchmod(stream.fileno(), mode)  # exactly ``mode``: open() filters it by the umask
        yield stream


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
    if _is_tree(partial) and _is_tree(final):
        _replace_directory(partial, final)
    else:
        if _is_tree(final):
            shutil.rmtree(final)
        os.replace(partial, final)


@contextmanager
def atomic_path(path: Path, *, directory: bool = False,
                install: Callable[[Path, Path], None] = move_into_place) -> Iterator[Path]:
    """Yield ``<path>.partial`` to write (an empty directory to fill, with ``directory``); on success
    ``install(partial, path)`` puts it in place, on any failure (of the block or of ``install``) it is removed.

    ``install`` is for artifacts that keep their predecessor: the disk images pass one that rotates ``.bak`` files.
    """
    partial = fresh_partial(path, directory=directory)
    with removed_on_failure(partial):
        yield partial
        install(partial, path)


def _is_tree(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink()


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

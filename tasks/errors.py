"""The one error hierarchy.

Every error a user can cause is a :class:`BuildError`: it renders as a single line
``<file>: <key path>: <reason>`` and is shown without a traceback, with a non-zero exit.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path


def display_path(path: str | os.PathLike[str]) -> str:
    """A path as the user would type it: relative to the working directory when below it."""
    path = Path(path)
    if not path.is_absolute():
        return str(path)
    try:
        return str(path.relative_to(_resolved(os.getcwd())))
    except ValueError:
        return str(path)


@functools.lru_cache(maxsize=8)
def _resolved(directory: str) -> Path:
    # Paths from the settings are resolved once; resolving every shown path costs a realpath walk each (thousands
    # of task docs), so only the working directory is resolved.
    return Path(directory).resolve()


class BuildError(Exception):
    """A user-facing error: names the file, the key path inside it, and the reason."""

    def __init__(self, reason: str, *, path: str | os.PathLike[str] | None = None, key: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.path = Path(path) if path is not None else None
        self.key = key

    def __str__(self) -> str:
        parts = []
        if self.path is not None:
            parts.append(display_path(self.path))
        if self.key:
            parts.append(self.key)
        parts.append(self.reason)
        return ": ".join(parts)


class InputError(BuildError):
    """A recipe, config or setting that is malformed or invalid."""


class GraphError(BuildError):
    """The dependency graph cannot be built: a missing recipe, a cycle."""


class CommandError(BuildError):
    """An external command failed; ``reason`` carries its exit status and the tail of its log."""


class FormatError(BuildError):
    """An archive or image that does not match its format (initfs, pkgar, RedoxFS, GPT)."""


class LockError(BuildError):
    """Another process holds a resource this one needs (the build directory, a QEMU session)."""

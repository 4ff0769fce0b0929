"""Content digests of directory trees: what a source or a stage holds, independent of mtimes."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..hashing import hash_file, new_hasher

VCS_DIRS = frozenset({".git"})


def tree_digest(root: Path, exclude: frozenset[str] = VCS_DIRS) -> str:
    """Hash of every path below ``root`` with its kind, executable bit and content (symlinks: their target)."""
    hasher = new_hasher()
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(name for name in subdirs if name not in exclude)
        base = Path(directory)
        for name in sorted(files) + [d for d in subdirs if (base / d).is_symlink()]:
            path = base / name
            relative = path.relative_to(root).as_posix()
            if path.is_symlink():
                entry = f"L {relative} {os.readlink(path)}"
            else:
                executable = "x" if os.access(path, os.X_OK) else "-"
                entry = f"F {relative} {executable} {hash_file(path)}"
            hasher.update(entry.encode() + b"\0")
    return hasher.hexdigest()


def remove_tree(path: Path) -> None:
    """Remove a directory, a symlink or a file; nothing if absent."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)

"""The fork's own ``redox-initfs-ar`` (``initfs_archiver=``) instead of the built-in writer: the same layout, its
own header time. Its output is read back before it replaces the previous initfs, so a tool that writes another
revision of the format (or no bootstrap entry) is refused here rather than at boot."""
from __future__ import annotations

from pathlib import Path

from ..atomic import atomic_path
from ..errors import InputError
from ..process import run
from .format import read_initfs


def archive_with_tool(archiver: Path, tree: Path, bootstrap: Path, output: Path, *, max_size: int,
                      log: Path | None = None) -> None:
    with atomic_path(output) as partial:
        run([archiver, "--max-size", str(max_size), tree, bootstrap, "-o", partial], log=log)
        image = read_initfs(partial)
        if not image.header.has_bootstrap or image.header.bootstrap_entry == 0:
            raise InputError("the initfs has no bootstrap entry point: the kernel would jump to it and crash",
                             path=partial, key="bootstrap_entry")

"""Files inside the initfs an image carries (``/boot/initfs``, upstream's ``/usr/lib/boot/initfs``), read as
:class:`tasks.image.files.ImageFiles` reads the image's own: ``doit inspect cat /boot/initfs/etc/init.rc``.

The fork's notes say "we can't extract initfs easily": the archive is read with the project's own initfs reader
(:mod:`tasks.initfs.format`), validated whole before anything is listed. A path is taken as inside an initfs when,
walking it from the root, the first component that is a file of the image is an initfs archive (its magic).
Knows nothing of doit.
"""
from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from ..atomic import atomic_path
from ..errors import BuildError, InputError
from ..initfs.format import MAGIC, Initfs, Inode, InodeKind
from .files import Entry

KINDS = {InodeKind.DIR: "d", InodeKind.FILE: "f", InodeKind.LINK: "l"}


def initfs_at(files, path: str) -> tuple[InitfsView, str] | None:
    """The initfs ``path`` leads into (a view of it) and the path inside it; None when it leads into none. The
    archive is read once, for its magic and its files."""
    parts = PurePosixPath("/", path).parts
    for depth in range(2, len(parts) + 1):
        prefix = str(PurePosixPath(*parts[:depth]))
        try:
            kind = files.stat(prefix).kind
        except BuildError:
            return None
        if kind == "f":
            data = files.read(prefix)
            inside = "/" + "/".join(parts[depth:])
            return (InitfsView(data, prefix, files.image), inside) if data.startswith(MAGIC) else None
        if kind != "d":
            return None
    return None


class InitfsView:
    """One initfs archive's files: ``ls``, ``tree``, ``stat``, ``read``, ``get`` of paths inside it."""

    def __init__(self, data: bytes, where: str, image: Path):
        self.initfs = Initfs(data, image, page_size=None)
        self.where = where  # the archive's path in the image, which the entries' paths start with
        self.image = image  # errors name it, as the image's own do
        self.paths = dict(self.initfs.walk())

    def _inode(self, path: str) -> tuple[str, Inode]:
        relative = str(PurePosixPath("/", path)).strip("/")
        if relative not in self.paths:
            raise InputError(f"{self.where}/{relative}: no such file in the initfs", path=self.image)
        return relative, self.paths[relative]

    def _entry(self, relative: str, inode: Inode, shown: str | None = None) -> Entry:
        """``shown``: the path as listed (``ls`` lists names, as the image's own ``ls`` does)."""
        target = os.fsdecode(self.initfs.content(inode)) if inode.kind is InodeKind.LINK else None
        return Entry(KINDS[inode.kind], inode.mode & 0o7777, inode.uid, inode.gid, inode.length,
                     self.initfs.header.creation_sec, shown or f"{self.where}/{relative}".rstrip("/"), target)

    def stat(self, path: str) -> Entry:
        return self._entry(*self._inode(path))

    def ls(self, path: str = "/") -> list[Entry]:
        relative, inode = self._inode(path)
        if inode.kind is not InodeKind.DIR:
            return [self._entry(relative, inode)]
        prefix = f"{relative}/" if relative else ""
        return [self._entry(name, child, name[len(prefix):]) for name, child in self.paths.items()
                if name.startswith(prefix) and name != relative and "/" not in name[len(prefix):]]

    def tree(self, path: str = "/") -> list[Entry]:
        relative, _ = self._inode(path)
        prefix = f"{relative}/" if relative else ""
        return [self._entry(name, inode) for name, inode in self.paths.items() if name.startswith(prefix) and name]

    def read(self, path: str) -> bytes:
        relative, inode = self._inode(path)
        if inode.kind is InodeKind.DIR:
            raise InputError(f"{self.where}/{relative}: a directory of the initfs", path=self.image)
        return self.initfs.content(inode)

    def get(self, path: str, destination: Path) -> None:
        """A file of the initfs onto the host, with its permission bits (never set-id), private until it has them."""
        relative, inode = self._inode(path)
        if inode.kind is not InodeKind.FILE:
            raise InputError(f"{self.where}/{relative}: only files are copied out of an initfs", path=self.image)
        with atomic_path(destination) as partial:
            descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as stream:
                stream.write(self.initfs.content(inode))
            os.chmod(partial, inode.mode & 0o777)

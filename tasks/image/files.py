"""The files inside a disk image's RedoxFS, without FUSE or root: this project's ``redox-image`` host tool
(``tools/redox-image``, on the ``redoxfs`` crate itself) does the reading and writing; this module finds the
filesystem in the image, runs the tool and reads its answers.

Reading opens the image read-only: the tool's disk refuses every write, so ``inspect`` never changes an image
(opening RedoxFS for writing squashes its allocation log). Writing is atomic: the operations run in one RedoxFS
transaction on a copy of the image beside it (``.partial``, sparse), which replaces the image only when the tool
committed; a failure leaves the image as it was.
"""
from __future__ import annotations

import errno
import functools
import os
import shutil
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, fields
from pathlib import Path, PurePosixPath
from typing import ClassVar

from ..atomic import atomic_path
from ..errors import CommandError, FormatError
from ..process import child_env, run
from . import gpt
from .backups import install_with_backups
from .redoxfs import SIGNATURE

QCOW2_MAGIC = b"QFI\xfb"


@dataclass(frozen=True)
class Entry:
    """One node of the filesystem, as ``tree`` and ``ls`` name it."""

    kind: str  # "d", "f" or "l"
    mode: int  # permission bits
    uid: int
    gid: int
    size: int
    mtime: int  # seconds since the epoch
    path: str
    target: str | None = None  # a symlink's

    @classmethod
    def parse(cls, line: str) -> Entry:
        kind, mode, uid, gid, size, mtime, path, *link = line.split("\t")
        return cls(kind, int(mode, 8), int(uid), int(gid), int(size), int(mtime), path,
                   link[0].removeprefix("-> ") if link else None)

    def __str__(self) -> str:
        link = f" -> {self.target}" if self.target is not None else ""
        when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(self.mtime))
        return f"{self.kind} {self.mode:04o} {self.uid:>5} {self.gid:>5} {self.size:>10} {when}  {self.path}{link}"


@dataclass(frozen=True)
class _Operation:
    """One line of the tool's ``apply`` script: its verb, then the fields in their order (a mode in octal)."""

    verb: ClassVar[str]

    def line(self) -> str:
        values = [f"{getattr(self, field.name):o}" if field.name == "mode" else str(getattr(self, field.name))
                  for field in fields(self)]
        return "\t".join([self.verb, *values])


@dataclass(frozen=True)
class Put(_Operation):
    verb = "put"
    source: Path
    path: str
    mode: int = 0o644
    uid: int = 0
    gid: int = 0


@dataclass(frozen=True)
class MakeDir(_Operation):
    verb = "mkdir"
    path: str
    mode: int = 0o755
    uid: int = 0
    gid: int = 0


@dataclass(frozen=True)
class Symlink(_Operation):
    verb = "symlink"
    target: str
    path: str
    uid: int = 0
    gid: int = 0


@dataclass(frozen=True)
class Remove(_Operation):
    verb = "rm"
    path: str


@dataclass(frozen=True)
class Chmod(_Operation):
    verb = "chmod"
    mode: int
    path: str


@dataclass(frozen=True)
class Chown(_Operation):
    verb = "chown"
    uid: int
    gid: int
    path: str


Operation = Put | MakeDir | Symlink | Remove | Chmod | Chown


def redoxfs_offset(image: Path) -> int:
    """Where the RedoxFS starts in ``image``: the REDOX partition of a GPT disk, or 0 for a bare filesystem."""
    try:
        with open(image, "rb") as stream:
            head = stream.read(len(SIGNATURE))
    except FileNotFoundError:
        raise FormatError("no such image", path=image) from None
    except IsADirectoryError:
        raise FormatError("a directory, not a disk image", path=image) from None
    except OSError as error:
        raise FormatError(f"cannot read: {error.strerror}", path=image) from None
    if head.startswith(QCOW2_MAGIC):
        raise FormatError("a qcow2 image: its files are read from the raw image it was converted from", path=image)
    if head == SIGNATURE:
        return 0
    partition = gpt.read_table(image).by_name("REDOX")
    if partition is None:
        raise FormatError("no REDOX partition in its GPT", path=image)
    return partition.offset


class ImageFiles:
    """The RedoxFS of one image, through the ``redox-image`` tool in ``tool_dir``."""

    def __init__(self, image: Path, tool_dir: Path, source_date: int | None = None):
        self.image = Path(image)
        self.tool = tool_dir / "redox-image"
        self.offset = redoxfs_offset(self.image)
        # the time of what is written: the build's source date, else SOURCE_DATE_EPOCH, else the clock (the tool's)
        self.env = child_env(set={"SOURCE_DATE_EPOCH": str(source_date)}) if source_date is not None else None

    def _run(self, image: Path, *args: str | Path, stdin: str | None = None, capture: bool = True) -> str:
        try:
            return run([self.tool, image, str(self.offset), *args], stdin=stdin, capture=capture, env=self.env)
        except CommandError as error:
            raise CommandError(tool_reason(error), path=self.image) from None

    def tree(self, path: str = "/") -> list[Entry]:
        return [Entry.parse(line) for line in self._run(self.image, "tree", _inside(path)).splitlines()]

    def ls(self, path: str = "/") -> list[Entry]:
        return [Entry.parse(line) for line in self._run(self.image, "ls", _inside(path)).splitlines()]

    def stat(self, path: str) -> Entry:
        return Entry.parse(self._run(self.image, "stat", _inside(path)).rstrip("\n"))

    def read(self, path: str) -> bytes:
        """A file's content (through a temporary file: the tool's standard output is text to the runner)."""
        with tempfile.TemporaryDirectory(prefix="redox-image-") as scratch:
            self._run(self.image, "get", _inside(path), Path(scratch) / "content")
            return (Path(scratch) / "content").read_bytes()

    def get(self, path: str, destination: Path) -> None:
        """A file, or a directory's whole tree, onto the host at ``destination`` (which must not exist), with the
        permission bits it has in the image (never setuid or setgid on the host); a file is written private until
        it has them, so a secret (``/etc/shadow``, 0600) is never readable by others on the way."""
        entry = self.stat(path)
        if entry.kind == "d":
            self.extract(path, destination)
            return
        with atomic_path(destination) as partial:
            os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            self._run(self.image, "get", _inside(path), partial)
            os.chmod(partial, entry.mode & 0o777)

    def extract(self, directory: str, destination: Path) -> None:
        """A directory's whole tree onto the host at ``destination`` (which must not exist)."""
        with atomic_path(destination) as partial:
            self._run(self.image, "extract", _inside(directory), partial)

    def apply(self, operations: Iterable[Operation], backups: int = 0) -> None:
        """Change the image: every operation in one transaction, on a copy that replaces the image once done,
        the one it replaces kept as ``.bak`` (``backups`` of them, as a rebuild keeps them)."""
        with atomic_path(self.image, install=functools.partial(install_with_backups, keep=backups)) as partial:
            sparse_copy(self.image, partial)
            self.apply_to(partial, operations)

    def apply_to(self, copy: Path, operations: Iterable[Operation]) -> None:
        """Every operation in one transaction on ``copy``, a copy of this image the caller puts in place."""
        self._run(copy, "apply", stdin="".join(operation.line() + "\n" for operation in operations))


def tool_reason(error: CommandError) -> str:
    """What the ``redox-image`` tool said went wrong (its ``redox-image: …`` line), else the run's first line."""
    return next((line.strip().removeprefix("redox-image: ") for line in error.reason.splitlines()
                 if "redox-image: " in line), error.reason.splitlines()[0])


def sparse_copy(source: Path, destination: Path, chunk: int = 1 << 20) -> None:
    """Copy a disk image keeping it sparse, with its mode: only the data extents are copied (SEEK_DATA/SEEK_HOLE,
    in the kernel with copy_file_range where there is one), elsewhere runs of zeros become holes."""
    with open(source, "rb") as reader, open(destination, "wb") as writer:
        size = os.fstat(reader.fileno()).st_size
        try:
            extents = list(_data_extents(reader.fileno(), size))
        except OSError:  # no SEEK_DATA here: every chunk is looked at
            extents = [(0, size)]
        for start, end in extents:
            _copy_range(reader, writer, start, end, chunk)
        writer.truncate(size)
    shutil.copymode(source, destination)


def _data_extents(fd: int, size: int):
    position = 0
    while position < size:
        try:
            start = os.lseek(fd, position, os.SEEK_DATA)
        except OSError as error:
            if error.errno == errno.ENXIO:  # only a hole is left
                return
            raise
        end = os.lseek(fd, start, os.SEEK_HOLE)
        yield start, end
        position = end


def _copy_range(reader, writer, start: int, end: int, chunk: int) -> None:
    if hasattr(os, "copy_file_range"):
        position = start
        while position < end:
            copied = os.copy_file_range(reader.fileno(), writer.fileno(), end - position, position, position)
            if copied == 0:
                break
            position += copied
        if position >= end:
            return
        start = position
    zeros = bytes(chunk)
    reader.seek(start)
    writer.seek(start)
    while start < end and (data := reader.read(min(chunk, end - start))):
        if data == zeros[:len(data)]:
            writer.seek(len(data), 1)
        else:
            writer.write(data)
        start += len(data)

def _inside(path: str) -> str:
    """An absolute path inside the image; '..' is refused here as by the tool."""
    posix = PurePosixPath("/") / path
    if ".." in posix.parts:
        raise FormatError(f"{path!r}: a path inside the image must not contain '..'")
    return str(posix)

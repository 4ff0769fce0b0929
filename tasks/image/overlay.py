"""Overlays: a directory tree whose files land in the image over the packages (as mkosi's ``ExtraTrees=``),
instead of changes made by hand and written down in ``post-hoc.md``.

By convention the overlay of ``config/aarch64/desktop.toml`` is ``config/aarch64/desktop.overlay/`` (the
``overlay=DIR`` setting names another): ``desktop.overlay/etc/motd`` becomes ``/etc/motd``. Files, directories and
symlinks keep the tree's permission bits; every node is owned by uid 0, gid 0 unless the overlay's manifest, the
``owners.toml`` file at its top (not copied into the image), says otherwise. A directory the image already has
(``/etc``, a user's home) keeps its mode and owner unless the manifest names it::

    ["home/user/notes.txt"]
    uid = 1000
    gid = 1000
    mode = 0o600        # optional: instead of the tree's

Knows nothing of doit.
"""
from __future__ import annotations

import os
import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..errors import BuildError, InputError
from ..model.tomlfile import did_you_mean
from .files import Chmod, Chown, MakeDir, Operation, Put, Symlink

MANIFEST = "owners.toml"
KEYS = ("uid", "gid", "mode")


@dataclass(frozen=True)
class Owner:
    uid: int = 0
    gid: int = 0
    mode: int | None = None


def default_overlay(config_file: Path) -> Path:
    return config_file.with_suffix(".overlay")


def read_owners(overlay: Path) -> dict[str, Owner]:
    path = overlay / MANIFEST
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise InputError(f"invalid TOML: {error}", path=path) from None
    owners = {}
    for name, fields in data.items():
        where = PurePosixPath(name.strip("/"))
        if not isinstance(fields, dict):
            raise InputError("expected a table of uid, gid, mode", path=path, key=name)
        if ".." in where.parts or not (overlay / where).exists():
            raise InputError(f"no such path in the overlay {overlay}", path=path, key=name)
        for key, value in fields.items():
            if key not in KEYS:
                raise InputError(f"unknown key{did_you_mean(key, KEYS)}; the keys: {', '.join(KEYS)}", path=path,
                                 key=f"{name}.{key}")
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= (0o7777 if key == "mode"
                                                                                         else 0xFFFFFFFF):
                raise InputError(f"expected a number in range, got {value!r}", path=path, key=f"{name}.{key}")
        owners[str(where)] = Owner(**fields)
    return owners


def overlay_file(overlay: Path, inside: PurePosixPath) -> Path:
    """Where the file at ``inside`` (an absolute path in the image) lives in ``overlay``, checked before anything is
    written there: no symlink on the way (the overlay itself included: a write through one would land outside it,
    over anything), no file where a directory must be, and no directory where the file goes (a file never
    replaces a directory)."""
    if overlay.is_symlink():
        raise InputError("the overlay is a symlink: nothing is written through it", path=overlay)
    path = overlay
    for part in inside.relative_to("/").parts:
        path = path / part
        if path.is_symlink():
            raise InputError("a symlink in the overlay: nothing is written through it", path=path)
        if path.exists() and not path.is_dir() and path != overlay / inside.relative_to("/"):
            raise InputError("a file in the overlay where a directory must be", path=path)
    if path.is_dir():
        raise InputError(f"a directory in the overlay: a file never replaces a directory ({inside})", path=path)
    return path


def overlay_operations(overlay: Path) -> list[Operation]:
    """What puts the overlay into an image: its nodes, parents first, in a stable order."""
    if not overlay.is_dir():
        return []
    owners = read_owners(overlay)
    operations: list[Operation] = []
    for top, directories, files in os.walk(overlay):  # a symlink to a directory is listed, not walked into
        directories.sort()
        for name in [*sorted(directories), *sorted(files)]:
            path = Path(top) / name
            relative = path.relative_to(overlay)
            if str(relative) == MANIFEST:
                continue
            owner = owners.get(str(relative), Owner())
            status = path.lstat()
            mode = owner.mode if owner.mode is not None else stat.S_IMODE(status.st_mode)
            inside = f"/{relative}"
            if stat.S_ISLNK(status.st_mode):
                operations.append(Symlink(os.readlink(path), inside, owner.uid, owner.gid))
            elif stat.S_ISDIR(status.st_mode):
                operations.append(MakeDir(inside, mode, owner.uid, owner.gid))
                if str(relative) in owners:  # one the image has already keeps its mode and owner unless named
                    operations += [Chmod(mode, inside), Chown(owner.uid, owner.gid, inside)]
            elif stat.S_ISREG(status.st_mode):
                operations.append(Put(path, inside, mode, owner.uid, owner.gid))
            else:
                raise InputError("an overlay holds files, directories and symlinks only", path=path)
    return operations


def overlay_differences(overlay: Path, files) -> list[str]:
    """The overlay's files that ``files`` (an image's :class:`tasks.image.files.ImageFiles`) lacks or holds with
    other content: what the next build of the image would change."""
    differ = []
    for operation in overlay_operations(overlay):
        if isinstance(operation, Put):
            try:
                same = files.read(operation.path) == operation.source.read_bytes()
            except BuildError:
                same = False
            if not same:
                differ.append(operation.path)
    return differ


def overlay_manifest(overlay: Path) -> dict[bytes, tuple[bytes, str]]:
    """Each node of the overlay, relative path → (kind, content and mode): what ``doit explain`` compares to name
    the files an overlay change touched."""
    from ..hashing import hash_file, hash_value
    manifest: dict[bytes, tuple[bytes, str]] = {}
    for top, directories, files in os.walk(overlay):
        for name in [*directories, *files]:
            path = Path(top) / name
            status = path.lstat()
            content = os.readlink(path) if stat.S_ISLNK(status.st_mode) else \
                hash_file(path) if stat.S_ISREG(status.st_mode) else ""
            manifest[os.fsencode(path.relative_to(overlay))] = (b"node", hash_value([status.st_mode, content]))
    return manifest

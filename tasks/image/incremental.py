"""The incremental image update: when only packages (the initfs among them) or the overlay changed, the existing
image is brought up to date in place instead of running the installer over the whole tree again.

The image keeps a record of what it was made from beside it (``<image>.contents.json``): a digest of everything
only the installer can apply (the config and what it includes, the settings, the text stamps, the signing key, the
code of the image stage and the installer, the ``bootloader`` package, from which the installer alone writes the EFI
partition), each installed package's file hash, the overlay's digest, and the
image's own digest when the record was written. The update is taken only when that base digest is unchanged, the
image still is the one recorded (not changed behind the build's back); otherwise a full build. The config's
``[packages]`` are not part of the base: a package added to the config (with the dependencies the installer would
follow) is written in, one removed is taken out, and ``/filesystem.toml``, the config's copy in the image, is
written again when the config changed. That needs the installed set foreseen as the installer resolves it; a full
build whose packages were not the ones foreseen leaves a record that makes the next change of the set a full build.

For each changed package the installer's own record in the image — the package's head (signature, header, entry
table) in ``/pkg/packages/<name>.pkgar_head`` — says which files the installed version put there: those that the
new version no longer has are removed, with the directories that are left empty, and the new version's files are
written as the installer writes them (its modes, owned by root, parents 0755), then its head. The overlay is
written last, as in a full build. Everything runs in one RedoxFS transaction on a copy of the image.

Knows nothing of doit.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath

from ..engine.publish import output_digest
from ..formats import pkgar
from ..hashing import hash_file
from .files import ImageFiles, MakeDir, Operation, Put, Remove, Symlink

SYMLINK = 0o120000


@dataclass(frozen=True)
class Contents:
    base: str  # what only the installer applies
    packages: dict[str, str]  # installed package -> hash of its .pkgar in the repository
    overlay: str
    image: str = ""  # the image's output digest when this record was written
    image_stat: tuple[int, ...] = ()  # and its size, mtime, ctime, inode: an untouched image is known by them
    foreseen: bool = True  # the installer installed the packages install_order foresaw
    config: str = ""  # the config files' digest: /filesystem.toml is written again when it changed


@dataclass(frozen=True)
class Update:
    """What an in-place update does to the packages: writes these (changed or added), takes out those."""

    write: list[str]
    remove: list[str]
    config_changed: bool  # so /filesystem.toml, the config's copy in the image, is written again


def contents_path(image: Path) -> Path:
    return image.with_name(image.name + ".contents.json")


def read_contents(image: Path) -> Contents | None:
    try:
        record = json.loads(contents_path(image).read_text())
        return Contents(**{**record, "image_stat": tuple(record.get("image_stat", ()))})
    except (OSError, ValueError, TypeError):
        return None


def _stat(image: Path) -> tuple[int, ...]:
    status = image.stat()
    return status.st_size, status.st_mtime_ns, status.st_ctime_ns, status.st_ino


def write_contents(image: Path, contents: Contents) -> None:
    from ..atomic import write_atomically
    recorded = Contents(contents.base, contents.packages, contents.overlay, output_digest(image), _stat(image),
                        contents.foreseen, contents.config)
    write_atomically(contents_path(image), json.dumps(asdict(recorded), indent=1, sort_keys=True).encode())


def installed_packages(repo_dir: Path, names: list[str]) -> dict[str, str]:
    return {name: hash_file(repo_dir / f"{name}.pkgar") for name in names if (repo_dir / f"{name}.pkgar").is_file()}


def install_order(repo_dir: Path, wanted: list[str]) -> list[str] | None:
    """The packages the installer installs for the config's ``wanted`` ones, as it does: each in name order, then
    its ``depends`` depth first, once; a package without a version (a meta-package) is not installed, only its
    dependencies. None when a package's TOML is missing or unreadable (the full build says which)."""
    from ..errors import InputError
    from .installer import read_package
    order: list[str] = []
    seen: set[str] = set()

    def visit(name: str) -> bool:
        seen.add(name)
        try:
            package = read_package(repo_dir / f"{name}.toml")
        except (OSError, InputError):
            return False
        if package.get("version"):
            order.append(name)
        return all(visit(dependency) for dependency in package.get("depends", []) if dependency not in seen)

    return order if all(visit(name) for name in wanted if name not in seen) else None


def changed_packages(previous: Contents | None, current: Contents, image: Path) -> Update | None:
    """The packages to update in place; None when the image must be built by the installer."""
    if previous is None or not image.is_file() or previous.base != current.base:
        return None
    if set(previous.packages) != set(current.packages) and not (previous.foreseen and current.foreseen):
        return None
    if _stat(image) != previous.image_stat and output_digest(image) != previous.image:  # written behind our back
        return None
    return Update(write=sorted(name for name, digest in current.packages.items()
                               if previous.packages.get(name) != digest),
                  remove=sorted(set(previous.packages) - set(current.packages)),
                  config_changed=previous.config != current.config)


def update_operations(files: ImageFiles, update: Update, repo_dir: Path, heads_dir: PurePosixPath, key: bytes,
                      protected: set[str], overlay: list[Operation], scratch: Path) -> list[Operation]:
    """What brings the image's copies of ``update.write`` to the repository's and takes ``update.remove`` out, then
    the overlay."""
    tree = {entry.path: entry for entry in files.tree("/")}
    files.extract(f"/{heads_dir}", scratch / "heads")  # every installed package's head, in one read
    owned: dict[str, set[str]] = {}  # package -> its files' paths, from the heads in the image
    for head in sorted((scratch / "heads").glob("*.pkgar_head")):
        package = pkgar.open_package(head, key)  # a package without data: its entries only
        owned[head.name.removesuffix(".pkgar_head")] = {f"/{entry.path.decode()}" for entry in package.entries}
    operations: list[Operation] = []
    present = set(tree)
    for name in sorted(update.write + update.remove):
        new = pkgar.open_package(repo_dir / f"{name}.pkgar", key) if name in update.write else None
        new_paths = {f"/{entry.path.decode()}" for entry in new.entries} if new else set()
        gone = owned.get(name, set()) - new_paths
        operations += [Remove(path) for path in sorted(gone)]
        present -= gone
        others = set().union(*(paths for other, paths in owned.items() if other != name and other not in
                                update.remove))
        for directory in sorted({str(parent) for path in gone for parent in PurePosixPath(path).parents},
                                key=len, reverse=True):
            if directory in protected or directory == "/" or directory in new_paths:
                continue
            if not any(path.startswith(directory + "/") for path in (present | others | new_paths)):
                operations.append(Remove(directory))
                present.discard(directory)
        if new is None:
            operations.append(Remove(f"/{heads_dir}/{name}.pkgar_head"))
            continue
        for entry in new.entries:
            path = f"/{entry.path.decode()}"
            for parent in reversed(PurePosixPath(path).parents[:-1]):
                if str(parent) not in present:
                    operations.append(MakeDir(str(parent), 0o755))
                    present.add(str(parent))
            content = scratch / f"{name}-{len(operations)}"
            content.write_bytes(new.read(entry))
            if entry.mode & 0o170000 == SYMLINK:
                operations.append(Symlink(content.read_bytes().decode(), path))
            else:
                operations.append(Put(content, path, entry.mode & 0o7777))
            present.add(path)
        head = scratch / f"{name}.pkgar_head"
        with open(repo_dir / f"{name}.pkgar", "rb") as stream:
            head.write_bytes(stream.read(new.header.head_size))
        operations.append(Put(head, f"/{heads_dir}/{name}.pkgar_head", 0o644))
    return operations + overlay


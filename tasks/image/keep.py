"""Keep, restore and release disk images: what users did by hand with ``pure-rust.works.img``, feature-named copies
and ``release.sh`` (``../shared/specs/fork-workflow.md`` §4, operations 17, 18, 20).

* **promote** ``name``: the current image (and its qcow2) copied to ``<image>-<name>.img`` (``.qcow2``) with its stamp
  and a manifest: when, the image's digest, the inputs of the image task, the package versions of the repository,
  the git revisions of the stamp. ``works`` is just a name.
* **restore**: the whole image back from a promotion, or single files from it into the current image. A whole
  restore leaves a note beside the image (``<image>.restored.json``: which promotion, when, the image's digest),
  which holds while the image is that one: the image then is not what its inputs build, and ``doit explain`` says so.
* **release**: the raw image gzip-compressed as the fork names its releases (``<image>.iso.gz``), its SHA-256 in
  ``sha256sum`` format, release notes from the manifest, and the ``git tag`` command to run (printed, not run).

Knows nothing of doit: the commands (:mod:`tasks.cli.images`) say which image and record what they changed.
"""
from __future__ import annotations

import functools
import gzip
import hashlib
import json
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from ..atomic import atomic_path, write_atomically
from ..engine.publish import output_digest
from ..engine.stamp import read_stamp, stamp_path
from ..errors import InputError
from .backups import backup_paths, install_with_backups
from .files import sparse_copy

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
CHUNK = 1 << 20


@dataclass(frozen=True)
class Promotion:
    name: str
    image: Path
    manifest: dict

    @property
    def qcow2(self) -> Path:
        return self.image.with_suffix(".qcow2")


def promoted_path(image: Path, name: str) -> Path:
    if not NAME.fullmatch(name) or name.startswith("bak"):
        raise InputError(f"{name!r}: a promotion's name is letters, digits, '.', '_' and '-' (at most 64, not "
                         "starting with 'bak')", key="name")
    return image.with_name(f"{image.stem}-{name}{image.suffix}")


def manifest_path(promoted: Path) -> Path:
    return promoted.with_name(promoted.name + ".manifest.json")


def manifest_of(image: Path, inputs: dict[str, str], repo: Path) -> dict:
    """What an image is made of, as far as the build knows: its digest, the image task's inputs, the packages of
    the repository it was installed from (name → version) and the git revisions its stamp names."""
    stamp = read_stamp(image)
    packages = {}
    for toml in sorted(path for path in repo.glob("*.toml") if path.stem != "repo"):  # repo.toml: the index
        version = re.search(r'^version = "([^"]*)"', toml.read_text(), re.MULTILINE)
        packages[toml.stem] = version.group(1) if version else ""
    return {"image": image.name, "digest": output_digest(image), "inputs": inputs, "packages": packages,
            "git": {} if stamp is None else {name: revision.model_dump() for name, revision in stamp.git.items()},
            "built_at": None if stamp is None else stamp.built_at}


def promote(image: Path, qcow2: Path, name: str, manifest: dict, backups: int) -> tuple[Promotion, Path | None]:
    """Copy the image (and its qcow2, when there is one) under the promotion's name, with stamp and manifest. A
    promotion of that name already there is kept as ``.bak`` (``backups`` generations, as images are); returns the
    new promotion and where the previous one went (None: there was none)."""
    if not image.is_file():
        raise InputError("no image to promote (build it first)", path=image)
    target = promoted_path(image, name)
    if target.exists() and not backups:
        raise InputError(f"a promotion named {name} exists, and with backups=0 it would be lost: promote under "
                         "another name, or remove it first", path=target, key="name")
    previous = backup_paths(target, backups)[0] if target.exists() else None
    keep = functools.partial(install_with_backups, keep=backups)
    for source, destination in ((image, target), (qcow2, target.with_suffix(".qcow2"))):
        if source.is_file():
            with atomic_path(destination, install=keep) as partial:
                sparse_copy(source, partial)
            if stamp_path(source).exists():
                with atomic_path(stamp_path(destination), install=keep) as partial:
                    shutil.copyfile(stamp_path(source), partial)
    record = {"name": name, "promoted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **manifest}
    with atomic_path(manifest_path(target), install=keep) as partial:
        partial.write_bytes(json.dumps(record, indent=2).encode() + b"\n")
    return Promotion(name, target, record), previous


def restore_note_path(image: Path) -> Path:
    return image.with_name(image.name + ".restored.json")


def note_restore(image: Path, promotion: Promotion) -> None:
    note = {"from": promotion.name, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "digest": output_digest(image)}
    write_atomically(restore_note_path(image), json.dumps(note).encode() + b"\n")


def restored_from(image: Path) -> dict | None:
    """The note of the whole restore that made ``image`` what it is, if it still is (a build since replaced it)."""
    try:
        note = json.loads(restore_note_path(image).read_text())
    except (OSError, ValueError):
        return None
    return note if image.is_file() and note.get("digest") == output_digest(image) else None


def promotions(image: Path) -> list[Promotion]:
    """Every promotion of ``image``, oldest first."""
    found = []
    for manifest in image.parent.glob(f"{image.stem}-*{image.suffix}.manifest.json"):
        record = json.loads(manifest.read_text())
        found.append(Promotion(record["name"], manifest.with_name(manifest.name.removesuffix(".manifest.json")),
                               record))
    return sorted(found, key=lambda promotion: promotion.manifest.get("promoted_at", ""))


def find_promotion(image: Path, name: str) -> Promotion:
    for promotion in promotions(image):
        if promotion.name == name:
            return promotion
    known = ", ".join(promotion.name for promotion in promotions(image)) or "none yet (doit promote name=NAME)"
    raise InputError(f"no promotion {name!r} of {image.name} (the promotions: {known})", key="from")


@dataclass(frozen=True)
class Release:
    archive: Path
    checksum: Path
    notes: Path
    tag: str


def release(image: Path, directory: Path, manifest: dict, tag: str) -> Release:
    """``<stem>.iso.gz`` (gzip, no file name or time in its header: the same image gives the same bytes), its
    ``.sha256`` and release notes in ``directory``."""
    if not image.is_file():
        raise InputError("no image to release (build it first)", path=image)
    if directory.is_symlink():
        raise InputError("a symlink: a release is written into the build directory, never through one",
                         path=directory)
    directory.mkdir(parents=True, exist_ok=True)
    archive = directory / f"{image.stem}.iso.gz"
    digest = hashlib.sha256()
    with atomic_path(archive) as partial:
        with open(image, "rb") as source, open(partial, "wb") as raw, \
                gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as compressed:
            while data := source.read(CHUNK):
                compressed.write(data)
        with open(partial, "rb") as written:
            while data := written.read(CHUNK):
                digest.update(data)
    checksum = archive.with_name(archive.name + ".sha256")
    write_atomically(checksum, f"{digest.hexdigest()}  {archive.name}\n".encode())
    notes = directory / f"{image.stem}-release-notes.md"
    write_atomically(notes, release_notes(archive.name, digest.hexdigest(), manifest, tag).encode())
    return Release(archive, checksum, notes, tag)


def release_notes(archive: str, sha256: str, manifest: dict, tag: str) -> str:
    built = manifest.get("built_at") or "at an unknown time"
    lines = [f"# {tag}", "", f"`{archive}` (SHA-256 `{sha256}`), built {built}.", "", "## Sources", ""]
    for name, revision in sorted(manifest.get("git", {}).items()):
        dirty = " (with uncommitted changes)" if revision.get("dirty") else ""
        lines.append(f"- {name}: `{revision.get('revision')}`{dirty}")
    lines += ["", "## Packages", ""]
    lines += [f"- {name} {version}".rstrip() for name, version in sorted(manifest.get("packages", {}).items())]
    return "\n".join(lines) + "\n"

"""The local package repository (spec §3), as ``redox_installer --cookbook=<dir>`` reads it.

``repo/<target>/<name>.pkgar`` holds a package and ``repo/<target>/<name>.toml`` describes it (``pkg::Package``);
a meta-package (empty version) has a TOML only and installers resolve its ``depends`` without extracting
anything. ``repo/<target>/repo.toml`` lists every package with its entry-table hash (``pkg::Repository``).
"""
from __future__ import annotations

import tomllib
from pathlib import Path

import tomli_w
from pydantic import BaseModel, ConfigDict, ValidationError

from ..atomic import write_atomically
from ..errors import FormatError, InputError
from . import pkgar
from .pkgkeys import KeyPair

INDEX_FILE = "repo.toml"
HOST_PREFIXES = ("host:", "target:")


class PackageRecord(BaseModel):
    """``<name>.toml``. Field order and omissions follow upstream's serde output: empty strings and zero sizes
    are left out, ``depends`` is always written."""

    model_config = ConfigDict(frozen=True, extra="ignore")  # upstream readers ignore fields they do not know

    name: str
    version: str = ""
    target: str
    blake3: str = ""
    source_identifier: str = ""
    commit_identifier: str = ""
    time_identifier: str = ""
    storage_size: int = 0
    network_size: int = 0
    depends: tuple[str, ...] = ()

    @property
    def is_meta(self) -> bool:
        return self.version == ""

    @property
    def index_value(self) -> str:
        """What ``repo.toml`` lists for this package: the entry-table hash, else the version."""
        return self.blake3 or self.version

    def to_toml(self) -> str:
        document = {key: value for key, value in self.model_dump().items() if value not in ("", 0)}
        document["depends"] = list(self.depends)
        return tomli_w.dumps(document)


def check_package_name(name: str) -> None:
    """Upstream's ``PackageName::new``: non-empty, no ``/`` or NUL, at most one ``.``, ``:`` only in a prefix."""
    bare = next((name[len(prefix):] for prefix in HOST_PREFIXES if name.startswith(prefix)), name)
    if not bare or "/" in bare or "\0" in bare or ":" in bare or bare.count(".") > 1:
        raise InputError(f"invalid package name {name!r}: it must be non-empty, without '/', NUL or ':' (except a "
                         f"{' or '.join(HOST_PREFIXES)} prefix), with at most one '.'")


def publish(repo_dir: Path, record: PackageRecord, stage: Path | None, key: KeyPair, *,
            header_format: pkgar.HeaderFormat = pkgar.HeaderFormat.current(),
            packaging: pkgar.Packaging = pkgar.Packaging.UNCOMPRESSED) -> PackageRecord:
    """Write ``<name>.pkgar`` from ``stage`` (none for a meta-package) and ``<name>.toml`` under
    ``repo_dir/<target>``; return the record as written (with the hash and sizes filled in).

    ``repo.toml`` is left alone: regenerate it with :func:`write_index` once all packages are written, so
    concurrent publishers never race on it.
    """
    check_package_name(record.name)
    directory = repo_dir / record.target
    directory.mkdir(parents=True, exist_ok=True)
    archive = directory / f"{record.name}.pkgar"
    if record.is_meta:
        if stage is not None:
            raise InputError(f"package {record.name} has no version, so it is a meta-package and cannot have "
                             f"files (stage {stage})")
        archive.unlink(missing_ok=True)
    else:
        if stage is None:
            raise InputError(f"package {record.name} has a version but no stage to package")
        pkgar.create(stage, archive, key, header_format=header_format, packaging=packaging)
        package = pkgar.open_package(archive, key.public_key)
        record = record.model_copy(update={"blake3": package.header.blake3.hex(),
                                           "storage_size": package.installed_size(),
                                           "network_size": archive.stat().st_size})
    write_atomically(directory / f"{record.name}.toml", record.to_toml())
    return record


def load_record(path: Path) -> PackageRecord:
    try:
        return PackageRecord.model_validate(tomllib.loads(path.read_text()))
    except tomllib.TOMLDecodeError as error:
        raise FormatError(f"not TOML: {error}", path=path) from None
    except ValidationError as error:
        first = error.errors()[0]
        raise FormatError(first["msg"], path=path, key=".".join(str(part) for part in first["loc"])) from None


def write_index(target_dir: Path, build_id: str | None = None) -> dict[str, str]:
    """Regenerate ``repo.toml`` from every ``<name>.toml`` beside it (as upstream's ``repo_builder`` does)."""
    records = [load_record(path) for path in target_dir.glob("*.toml") if path.name != INDEX_FILE]
    packages = {record.name: record.index_value for record in sorted(records, key=lambda record: record.name)}
    document: dict[str, object] = {"build_id": build_id} if build_id else {}
    document["packages"] = packages
    write_atomically(target_dir / INDEX_FILE, tomli_w.dumps(document))
    return packages

"""Installer configs (``config/**/*.toml``), merged as the upstream installer does.

``include`` paths are relative to the including file and resolved recursively. The merge list is
``[include1, include2, …, self]`` folded left, so later files win: ``[general]`` per field (``prompt`` only from the
first config, as the current installer), ``[packages]``/``[users]``/``[groups]`` per key, ``[[files]]`` concatenated.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import BeforeValidator

from ..errors import InputError
from .names import PackageName, parse_package_name
from .tomlfile import Table, read_toml, validate

Rule = Literal["ignore", "source", "binary", "local"]
RULES: tuple[str, ...] = Rule.__args__  # type: ignore[attr-defined]


class General(Table):
    cookbook: str | None = None
    prompt: bool | None = None
    filesystem_size: int | None = None
    efi_partition_size: int | None = None
    skip_partitions: bool | None = None
    encrypt_disk: str | None = None
    live_disk: bool | None = None
    write_bootloader: str | None = None
    no_mount: bool | None = None


class PackageSpec(Table):
    version: str | None = None
    git: str | None = None
    path: str | None = None


def _check_rule(value: object) -> object:
    # A precise message for a mistyped rule; pydantic's union error would list both variants' complaints.
    if isinstance(value, str) and value not in RULES:
        raise ValueError(f"unknown rule {value!r} (expected a table or one of: {', '.join(RULES)})")
    return value


PackageValue = Annotated[Union[Rule, PackageSpec], BeforeValidator(_check_rule)]


class FileEntry(Table):
    path: str
    data: str = ""
    symlink: bool = False
    directory: bool = False
    recursive_chown: bool = False
    postinstall: bool = False
    append: bool = False
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None


class User(Table):
    password: str | None = None
    uid: int | None = None
    gid: int | None = None
    name: str | None = None
    home: str | None = None
    shell: str | None = None


class Group(Table):
    gid: int | None = None
    members: list[str] = []


class ConfigFile(Table):
    """The content of one config file, before includes are merged."""

    include: list[str] = []
    general: General = General()
    packages: dict[PackageName, PackageValue] = {}
    files: list[FileEntry] = []
    users: dict[str, User] = {}
    groups: dict[str, Group] = {}


@dataclass
class Config:
    """A config with its includes merged; remembers which file declared each package."""

    path: Path
    general: General = field(default_factory=General)
    packages: dict[str, PackageValue] = field(default_factory=dict)
    files: list[FileEntry] = field(default_factory=list)
    users: dict[str, User] = field(default_factory=dict)
    groups: dict[str, Group] = field(default_factory=dict)
    package_origin: dict[str, Path] = field(default_factory=dict)
    sources: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def merge(self, other: "Config") -> None:
        """Fold ``other`` (a later file) into this one: the installer's ``Config::merge``."""
        updates = {name: value for name, value in other.general if value is not None and name != "prompt"}
        self.general = self.general.model_copy(update=updates)
        self.packages.update(other.packages)
        self.package_origin.update(other.package_origin)
        self.files.extend(other.files)
        self.users.update(other.users)
        self.groups.update(other.groups)
        self.sources.extend(other.sources)
        self.warnings.extend(other.warnings)

    def rule(self, package: str) -> str:
        """The cookbook rule for a package: the string value, or ``source`` for a table."""
        value = self.packages.get(package)
        return value if isinstance(value, str) else "source"

    @property
    def wanted_packages(self) -> list[str]:
        """The packages to install: every package not set to ``"ignore"``, sorted like the installer's BTreeMap."""
        return sorted(name for name, value in self.packages.items() if value != "ignore")


def load_config(path: Path) -> Config:
    """Load ``path`` with its includes merged; errors name the file (and the including file for includes)."""
    return _load(path.resolve(), stack=())


def _load(path: Path, stack: tuple[Path, ...]) -> Config:
    data = read_toml(path)
    config_file, unknown = validate(ConfigFile, data, path)
    for name in config_file.packages:
        parse_package_name(name)  # already validated; keeps the grammar in one place
    merged: Config | None = None
    for index, include in enumerate(config_file.include):
        included = _resolve_include(path, index, include, stack)
        child = _load(included, stack + (path,))
        if merged is None:
            merged = child
        else:
            merged.merge(child)
    own = Config(path, config_file.general, dict(config_file.packages), list(config_file.files),
                 dict(config_file.users), dict(config_file.groups),
                 {name: path for name in config_file.packages}, [path],
                 [f"{_show(path)}: {warning}" for warning in unknown])
    if merged is None:
        return own
    merged.merge(own)
    merged.path = path
    return merged


def _resolve_include(path: Path, index: int, include: str, stack: tuple[Path, ...]) -> Path:
    target = (path.parent / include).resolve()
    key = f"include[{index}]"
    if target == path or target in stack:
        chain = " -> ".join(_show(step) for step in (*stack, path, target))
        raise InputError(f"include loop: {chain}", path=path, key=key)
    if not target.is_file():
        raise InputError(f"included file {include!r} not found (looked for {_show(target)})", path=path, key=key)
    return target


def _show(path: Path) -> str:
    from ..errors import display_path
    return display_path(path)

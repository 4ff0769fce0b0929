"""Installer configs (``config/**/*.toml``), merged as the upstream installer does.

``include`` paths are relative to the including file and resolved recursively. The merge list is
``[include1, include2, …, self]`` folded left, so later files win: ``[general]`` per field (``prompt`` too, as the
pinned installer 0.2.40 merges it), ``[packages]``/``[users]``/``[groups]`` per key, ``[[files]]`` concatenated.

Every path a config puts into the image is checked here, at load time, because the installer writes it on the host
(``<staging dir>/<path>``, as root, then chmod and chown): ``[[files]]`` paths and users' homes have no ``..`` and no
NUL; user and group names are account names (they also make ``/home/<name>`` and the ``;``-separated passwd lines);
and no entry lies under a ``[[files]]`` symlink whose target leaves the image (absolute, or climbing out), which the
installer would follow onto the host.
"""
from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Annotated, Literal, Union

from pydantic import AfterValidator, BeforeValidator, Discriminator, Field, Tag, model_validator

from ..errors import InputError
from .names import PackageName, parse_package_name
from .tomlfile import Table, read_toml, validate

Rule = Literal["ignore", "source", "binary", "local"]
RULES: tuple[str, ...] = Rule.__args__  # type: ignore[attr-defined]


# The installer's integers are u32: a value outside fails its parse, so it fails ours.
U32 = Annotated[int, Field(ge=0, le=2**32 - 1)]


class General(Table):
    cookbook: str | None = None
    prompt: bool | None = None
    filesystem_size: U32 | None = None
    efi_partition_size: U32 | None = None
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
    if not isinstance(value, (str, dict)):
        raise ValueError(f"expected a table or one of: {', '.join(RULES)} (got {value!r})")
    return value


# A string is a rule, a table a spec: the discriminator keeps pydantic from reporting both variants' complaints.
PackageValue = Annotated[
    Union[Annotated[Rule, Tag("<rule>")], Annotated[PackageSpec, Tag("<spec>")]],
    Discriminator(lambda value: "<rule>" if isinstance(value, str) else "<spec>"),
    BeforeValidator(_check_rule)]

ACCOUNT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")


def _image_path(value: str) -> str:
    if not value:
        raise ValueError("a path in the image must not be empty")
    if "\0" in value:
        raise ValueError(f"{value!r}: a path in the image must not contain NUL")
    if ".." in PurePosixPath(value).parts:
        raise ValueError(f"{value!r}: a path in the image must not contain '..' (the installer writes it on the host)")
    return value


def _passwd_field(value: str) -> str:
    if any(char in value for char in ";\n\0"):
        raise ValueError(f"{value!r}: must not contain ';', a newline or NUL (fields of /etc/passwd and /etc/group)")
    return value


def check_account_name(value: str) -> str:
    if not ACCOUNT_NAME.fullmatch(value):
        raise ValueError(f"{value!r}: not an account name (a letter or '_', then letters, digits, '_', '.', '-'; at "
                         f"most 64 characters): it names the home /home/<name> and a line of /etc/passwd")
    return value


ImagePath = Annotated[str, AfterValidator(_image_path)]
PasswdField = Annotated[str, AfterValidator(_passwd_field)]
AccountName = Annotated[str, AfterValidator(check_account_name)]


class FileEntry(Table):
    path: ImagePath
    data: str  # required by the installer's parser, even for a directory
    symlink: bool = False
    directory: bool = False
    recursive_chown: bool = False
    postinstall: bool = False
    append: bool = False
    mode: U32 | None = None
    uid: U32 | None = None
    gid: U32 | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> "FileEntry":
        if self.symlink and self.directory:
            raise ValueError("symlink and directory are both true: an entry is a file, a directory or a symlink")
        return self

    @property
    def kind(self) -> str:
        return "symlink" if self.symlink else "directory" if self.directory else "file"


class User(Table):
    password: PasswdField | None = None
    uid: U32 | None = None
    gid: U32 | None = None
    name: PasswdField | None = None
    home: Annotated[ImagePath, AfterValidator(_passwd_field)] | None = None
    shell: PasswdField | None = None


class Group(Table):
    gid: U32 | None = None
    members: list[AccountName]  # required by the installer's parser


class ConfigFile(Table):
    """The content of one config file, before includes are merged."""

    include: list[str] = []
    general: General = General()
    packages: dict[PackageName, PackageValue] = {}
    files: list[FileEntry] = []
    users: dict[AccountName, User] = {}
    groups: dict[AccountName, Group] = {}


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
    general_origin: dict[str, Path] = field(default_factory=dict)
    """For each key of :attr:`general` set: the config file whose value won."""
    file_origin: list[tuple[Path, int]] = field(default_factory=list)
    """For each of :attr:`files`: the config file declaring it, and its index there."""
    sources: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def merge(self, other: "Config") -> None:
        """Fold ``other`` (a later file) into this one: the installer's ``Config::merge``."""
        updates = {name: value for name, value in other.general if value is not None}
        self.general = self.general.model_copy(update=updates)
        self.packages.update(other.packages)
        self.package_origin.update(other.package_origin)
        self.general_origin.update({name: other.general_origin[name] for name in updates})
        self.files.extend(other.files)
        self.file_origin.extend(other.file_origin)
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
    config = _load(path.resolve(), stack=())
    _check_symlinks_followed(config)
    _check_kinds(config)
    _check_filesystem_size(config)
    return config


def _leaves_the_image(entry: FileEntry) -> bool:
    """A symlink whose target, resolved where the installer creates it, is outside the image's root."""
    if entry.data.startswith("/"):
        return True
    depth = len(PurePosixPath(entry.path.strip("/")).parts) - 1  # of the directory holding the link
    for part in PurePosixPath(entry.data).parts:
        depth += -1 if part == ".." else 0 if part == "." else 1
        if depth < 0:
            return True
    return False


def _normal(path: str) -> str:
    return posixpath.normpath("/" + path.strip("/"))


def _check_symlinks_followed(config: Config) -> None:
    """No ``[[files]]`` entry at or under a symlink entry whose target leaves the image (see the module's doc)."""
    normal = _normal
    escaping = [(normal(entry.path), entry, origin) for entry, origin in zip(config.files, config.file_origin,
                                                                             strict=True)
                if entry.symlink and _leaves_the_image(entry)]
    for entry, (path, index) in zip(config.files, config.file_origin, strict=True):
        here = normal(entry.path)
        for link, symlink, (link_file, link_index) in escaping:
            # The same link declared again (an include repeated) writes nothing through it; anything else at or
            # under its path does.
            if here.startswith(link.rstrip("/") + "/") or (here == link and not entry.symlink):
                raise InputError(f"{entry.path!r} is under the symlink {symlink.path!r} -> {symlink.data!r} "
                                 f"({_show(link_file)}: files[{link_index}]), whose target leaves the image: the "
                                 f"installer would write through it onto the host", path=path, key=f"files[{index}]")


def _check_kinds(config: Config) -> None:
    """A ``[[files]]`` path is one kind (file, directory, symlink) in every file that declares it, and nothing lies
    under a file: the installer would replace a directory (the image's /etc) with a file, or fail half-way."""
    first: dict[str, tuple[FileEntry, tuple[Path, int]]] = {}
    for entry, origin in zip(config.files, config.file_origin, strict=True):
        first.setdefault(_normal(entry.path), (entry, origin))
    for entry, (path, index) in zip(config.files, config.file_origin, strict=True):
        here = _normal(entry.path)
        earlier, (earlier_file, earlier_index) = first[here]
        if earlier.kind != entry.kind:
            raise InputError(f"{entry.path!r} is a {entry.kind} here but a {earlier.kind} in "
                             f"{_show(earlier_file)}: files[{earlier_index}]: a path is one kind in the image",
                             path=path, key=f"files[{index}]")
        for parent in PurePosixPath(here).parents:
            above = first.get(str(parent))
            if above is not None and above[0].kind == "file":
                above_file, above_index = above[1]
                raise InputError(f"{entry.path!r} is under {above[0].path!r}, a file in {_show(above_file)}: "
                                 f"files[{above_index}]", path=path, key=f"files[{index}]")


# The installer's smallest image: the EFI partition and a RedoxFS that holds anything.
MIN_FILESYSTEM_MIB = 32


def _check_filesystem_size(config: Config) -> None:
    size = config.general.filesystem_size
    if size is not None and size < MIN_FILESYSTEM_MIB:
        raise InputError(f"{size} MiB is too small: the image needs at least {MIN_FILESYSTEM_MIB} (MiB)",
                         path=config.general_origin.get("filesystem_size", config.path),
                         key="general.filesystem_size")


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
                 {name: path for name in config_file.packages},
                 {name: path for name, value in config_file.general if value is not None},
                 [(path, index) for index in range(len(config_file.files))], [path],
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
    if target.is_dir():
        raise InputError(f"{include!r} is a directory ({_show(target)}): an include names a config file",
                         path=path, key=key)
    if not target.is_file():
        raise InputError(f"included file {include!r} not found (looked for {_show(target)})", path=path, key=key)
    return target


def key_manifest(sources: list[Path], base: Path) -> dict[bytes, tuple[bytes, str]]:
    """Every key of every config file, ``<file relative to base>: <dotted key>`` → its value's hash (the manifest
    ``doit explain`` compares to name the keys a config change touched; a ``[[files]]`` entry is one key)."""
    from ..hashing import hash_value
    manifest: dict[bytes, tuple[bytes, str]] = {}

    def walk(prefix: str, value: object) -> None:
        if isinstance(value, dict) and value:
            for key, item in value.items():
                walk(f"{prefix}.{key}" if prefix else key, item)
        elif prefix == "files" and isinstance(value, list):
            for index, entry in enumerate(value):
                manifest[f"{name}: files[{index}]".encode()] = (b"key", hash_value(entry))
        else:
            manifest[f"{name}: {prefix}".encode()] = (b"key", hash_value(value))
    for path in sources:
        name = os.path.relpath(path, base)
        try:
            walk("", read_toml(path))
        except InputError:
            manifest[f"{name}: (the file)".encode()] = (b"key", "unreadable")
    return manifest


def _show(path: Path) -> str:
    from ..errors import display_path
    return display_path(path)

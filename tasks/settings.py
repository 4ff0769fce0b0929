"""Where things are and what is being built: one typed object, filled from doit's command-line variables.

``doit list config=config/aarch64/server.toml root=/path/to/redox build=/tmp/b`` — every variable is optional.
"""
from __future__ import annotations

import platform
from pathlib import Path, PurePosixPath
from typing import Literal

from pydantic import BaseModel, ByteSize, ConfigDict, NonNegativeInt, ValidationError

from .errors import InputError
from .variables import OPTIONS, PROJECT_DIR, build_dir, root_dir

DEFAULT_CONFIG = Path("config/aarch64/desktop.toml")
DEFAULT_TARGET = "aarch64-unknown-redox"
MIB = 1 << 20


def host_triple() -> str:
    """The Rust triple of this machine (Linux or macOS hosts)."""
    machine = {"arm64": "aarch64", "amd64": "x86_64"}.get(platform.machine().lower(), platform.machine().lower())
    system = platform.system()
    if system == "Darwin":
        return f"{machine}-apple-darwin"
    if system == "Linux":
        return f"{machine}-unknown-linux-gnu"
    return f"{machine}-unknown-{system.lower()}"


class Settings(BaseModel):
    """The tree being built (``root``: holds ``recipes/`` and ``config/``), the config, and the output directory."""

    model_config = ConfigDict(frozen=True)

    root: Path = PROJECT_DIR
    config: Path = DEFAULT_CONFIG
    build_dir: Path | None = None
    target: str = DEFAULT_TARGET
    """The Redox target of the image and the package repository."""
    toolchain: Literal["pinned", "host"] = "pinned"
    """What compiles the recipes: the pinned (Cranelift) toolchain for ``target``, or the host's own compilers
    for this machine (the demo: host programs as placeholders in a ``target``-shaped image, which cannot boot)."""
    board: str | None = None
    """A board of the initfs layout (``tasks/templates/initfs/layout.toml``); none: QEMU ``virt``."""
    rust_log: str = "warn"
    """The ``RUST_LOG`` filter that the initfs's init.rc exports."""
    initfs_max_size: ByteSize = ByteSize(128 * MIB)
    """The fork's redox-initfs-ar is a debug build, whose limit is 128 MiB (``128MiB``, or bytes)."""
    boot_dir: PurePosixPath = PurePosixPath("boot")
    """Where packages carry boot files (bootloader, kernel, initfs): the fork's ``boot``, upstream ``usr/lib/boot``."""
    backups: NonNegativeInt = 2
    """Previous disk images (and qcow2s) kept: ``x.bak``, ``x.bak.1``, …"""
    initfs_archiver: Path | None = None
    """The fork's ``redox-initfs-ar`` (a path) to pack the initfs instead of the built-in writer."""
    prebuilt: Path | None = None
    """Where packages taken prebuilt (rule ``binary``) come from: a directory laid out like the package server,
    ``<dir>/<target>/<name>.pkgar`` and ``<dir>/id_ed25519.pub.toml``. Default: ``<build>/prebuilt``."""

    @classmethod
    def from_vars(cls, variables: dict[str, str]) -> Settings:
        root = root_dir(variables)
        config = Path(variables.get("config", DEFAULT_CONFIG))
        if not config.is_absolute():
            config = root / config
        options = {name: variables[name] for name in OPTIONS if name in variables}
        try:
            return cls(root=root, config=config, build_dir=build_dir(variables), **options)
        except ValidationError as error:
            problem = error.errors()[0]
            name = ".".join(str(part) for part in problem["loc"])
            raise InputError(f"{problem['msg']} (got {problem['input']!r})", key=name) from None

    @property
    def config_file(self) -> Path:
        """The config to load. As upstream's ``mk/config.mk``: ``config/<arch>/<name>.toml`` when it exists,
        else the architecture-independent ``config/<name>.toml``."""
        if not self.config.exists() and self.config.parent.parent.name == "config":
            shared = self.config.parent.parent / self.config.name
            if shared.exists():
                return shared
        return self.config

    @property
    def prebuilt_dir(self) -> Path:
        return self.prebuilt if self.prebuilt is not None else self.build / "prebuilt"

    @property
    def recipes_dir(self) -> Path:
        return self.root / "recipes"

    @property
    def build(self) -> Path:
        return self.build_dir if self.build_dir is not None else self.root / "build"

    @property
    def arch(self) -> str:
        return self.target.split("-", 1)[0]

    @property
    def cook_target(self) -> str:
        """The triple recipes are compiled for."""
        return host_triple() if self.toolchain == "host" else self.target

    @property
    def host_only(self) -> bool:
        """Recipes are compiled for this machine (the demo, tests): no Redox toolchain is involved."""
        return self.cook_target == host_triple()

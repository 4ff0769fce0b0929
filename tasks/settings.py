"""Where things are and what is being built: one typed object, filled from doit's command-line variables.

``doit list config=config/aarch64/server.toml root=/path/to/redox build=/tmp/b`` — every variable is optional.
"""
from __future__ import annotations

import platform
from pathlib import Path

from pydantic import BaseModel, ConfigDict

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = Path("config/aarch64/desktop.toml")
DEFAULT_TARGET = "aarch64-unknown-redox"


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

    @classmethod
    def from_vars(cls, variables: dict[str, str]) -> "Settings":
        root = Path(variables.get("root", PROJECT_DIR)).resolve()
        config = Path(variables.get("config", DEFAULT_CONFIG))
        if not config.is_absolute():
            config = root / config
        build = variables.get("build")
        return cls(root=root, config=config, build_dir=Path(build).resolve() if build else None,
                   target=variables.get("target", DEFAULT_TARGET))

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
    def recipes_dir(self) -> Path:
        return self.root / "recipes"

    @property
    def build(self) -> Path:
        return self.build_dir if self.build_dir is not None else self.root / "build"

    @property
    def arch(self) -> str:
        return self.target.split("-", 1)[0]

    @property
    def host_target(self) -> str:
        return host_triple()

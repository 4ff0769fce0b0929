"""Where things are and what is being built: one typed object, filled from doit's command-line variables and
made from the table that declares them (:data:`tasks.variables.SETTINGS`).

``doit list config=config/aarch64/desktop.toml root=/path/to/redox build=/tmp/b`` — every variable is optional.
"""
from __future__ import annotations

import platform
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from pydantic import (
    ByteSize,
    ConfigDict,
    Field,
    NonNegativeInt,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from .errors import InputError
from .variables import NAMES, SETTING, SETTINGS, Setting, build_dir, config_file, root_dir
from .variables import PROJECT_DIR as PROJECT_DIR  # where the tests and the stages find it

DEFAULT_CONFIG = Path(str(SETTING["config"].default))
DEFAULT_TARGET = str(SETTING["target"].default)


def host_triple() -> str:
    """The Rust triple of this machine (Linux or macOS hosts)."""
    machine = {"arm64": "aarch64", "amd64": "x86_64"}.get(platform.machine().lower(), platform.machine().lower())
    system = platform.system()
    if system == "Darwin":
        return f"{machine}-apple-darwin"
    if system == "Linux":
        return f"{machine}-unknown-linux-gnu"
    return f"{machine}-unknown-{system.lower()}"


def _field(setting: Setting) -> tuple[Any, Any]:
    """A setting's pydantic field: its type (optional when it has no default) and its default, validated as a value
    given on the command line would be."""
    kind = Literal[setting.choices] if setting.kind == "choice" else _TYPES[setting.kind]
    return (kind if setting.default is not None else kind | None,
            Field(default=setting.default, description=setting.help, validate_default=True))


_TYPES = {"path": Path, "text": str, "count": NonNegativeInt, "size": ByteSize, "posix-path": PurePosixPath}
_Declared = create_model("_Declared", __config__=ConfigDict(frozen=True),
                         **{setting.name: _field(setting) for setting in SETTINGS})


class Settings(_Declared):
    """The tree being built (``root``: holds ``recipes/`` and ``config/``), the config, the build directory, and the
    other settings: one field per entry of :data:`tasks.variables.SETTINGS`, which declares each once."""

    @model_validator(mode="before")
    @classmethod
    def _resolve(cls, values: dict[str, Any]) -> dict[str, Any]:
        """``root`` as the directory it names, ``config`` relative to it, ``build`` by default inside it."""
        config = Path(values.get("config") or DEFAULT_CONFIG)
        root = root_dir(values)
        return {**values, "root": root, "config": config if config.is_absolute() else root / config,
                "build": build_dir(values)}

    @field_validator("cache")
    @classmethod
    def _cache_url(cls, url: str | None) -> str | None:
        from .cache.store import check_url
        if url is not None and (problem := check_url(url)) is not None:
            raise ValueError(problem)
        return url

    @classmethod
    def from_vars(cls, variables: dict[str, str]) -> Settings:
        try:
            return cls.model_validate({name: variables[name] for name in NAMES if name in variables})
        except ValidationError as error:
            problem = error.errors()[0]
            name = ".".join(str(part) for part in problem["loc"])
            shown = "" if name == "cache" else f" (got {problem['input']!r})"  # a URL may carry credentials
            reason = problem["msg"].removeprefix("Value error, ")  # pydantic's prefix to a validator's own words
            raise InputError(f"{reason}{shown}", key=name) from None

    @property
    def config_file(self) -> Path:
        """The config to load (:func:`tasks.variables.config_file`)."""
        return config_file(self.config)

    @property
    def overlay_dir(self) -> Path:
        """The overlay of the config (tasks/image/overlay.py): ``overlay=``, else ``<config>.overlay`` beside it."""
        return self.overlay if self.overlay is not None else self.config_file.with_suffix(".overlay")

    @property
    def package_server_key(self) -> Path:
        """The package server's public key the tree pins: ``config/<arch>/``, else ``config/``."""
        name = "package-server.pub.toml"
        per_arch = self.root / "config" / self.arch / name
        return per_arch if per_arch.exists() else self.root / "config" / name

    @property
    def cache_keys_dir(self) -> Path:
        """The public keys whose cache entries are accepted (``*.pub.toml``): ``config/<arch>/cache-keys/``, else
        ``config/cache-keys/``."""
        per_arch = self.root / "config" / self.arch / "cache-keys"
        return per_arch if per_arch.is_dir() else self.root / "config" / "cache-keys"

    @property
    def prebuilt_dir(self) -> Path:
        return self.prebuilt if self.prebuilt is not None else self.build / "prebuilt"

    @property
    def recipes_dir(self) -> Path:
        return self.root / "recipes"

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

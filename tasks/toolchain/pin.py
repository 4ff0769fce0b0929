"""The one toolchain pin: channel, components and codegen backend, read from ``[tool.redox.toolchain]``.

The fork kept the channel in 15+ ``rust-toolchain.toml`` copies by hand; here the pin lives in one setting, and every
build reaches the pinned installation through its environment (``RUSTUP_TOOLCHAIN``, or ``PATH`` and ``RUSTC``),
which takes precedence over those files: they are never written (a build does not write into the user's sources),
only reported where they say otherwise (:func:`disagreeing_pins`).
"""
from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from ..errors import InputError

TABLE = "tool.redox.toolchain"
TOOLCHAIN_FILE = "rust-toolchain.toml"
CRANELIFT_COMPONENT = "rustc-codegen-cranelift-preview"
# Directories that never hold a component's own rust-toolchain.toml (build output, VCS data, vendored crates).
_SKIPPED_DIRS = frozenset({".git", "target", "build", "vendor", "node_modules"})


class CodegenBackend(StrEnum):
    CRANELIFT = "cranelift"
    LLVM = "llvm"


def _kebab(name: str) -> str:
    return name.replace("_", "-")


class ToolchainPin(BaseModel):
    """Which Rust installation builds for the target, and with which backend. Defaults match the fork (rustup's
    ``nightly-2026-01-02`` with Cranelift), so the code works without the table."""

    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=_kebab, populate_by_name=True)

    channel: str = "nightly-2026-01-02"
    # A Rust installation outside rustup instead of the channel: a directory whose bin/ holds rustc and cargo
    # (Debian's rustc-web: /usr); its standard library source must be at lib/rustlib/src/rust/library.
    path: Path | None = None
    # llvm-tools ships llvm-ar/strip/objcopy/nm in rustlib/<host>/bin, which replace binutils in the fork.
    components: tuple[str, ...] = ("rust-src", CRANELIFT_COMPONENT, "llvm-tools-preview")
    backend: CodegenBackend = CodegenBackend.CRANELIFT
    # A self-built librustc_codegen_cranelift.{so,dylib} (macOS has no rustup component); machine-local.
    backend_path: Path | None = None
    # Opt-in: run the `rustup toolchain install` fix command instead of only printing it.
    install: bool = False

    @field_validator("backend_path", "path")
    @classmethod
    def _expand_user(cls, path: Path | None) -> Path | None:
        return path.expanduser().absolute() if path is not None else None

    @property
    def name(self) -> str:
        """How the installation is known: its rustup name, or its directory."""
        return str(self.path) if self.path is not None else self.channel

    @property
    def uses_cranelift(self) -> bool:
        return self.backend is CodegenBackend.CRANELIFT

    @property
    def uses_cranelift_component(self) -> bool:
        return self.uses_cranelift and self.backend_path is None

    def required_components(self) -> tuple[str, ...]:
        """The pinned components, plus the Cranelift component when the backend comes from rustup."""
        wanted = list(self.components)
        if self.uses_cranelift_component and component_id(CRANELIFT_COMPONENT) not in map(component_id, wanted):
            wanted.append(CRANELIFT_COMPONENT)
        return tuple(wanted)

    def install_command(self) -> list[str]:
        """The exact command that installs this pin."""
        argv = ["rustup", "toolchain", "install", self.channel]
        for component in self.required_components():
            argv += ["--component", component]
        return argv


def component_id(name: str, host: str | None = None) -> str:
    """A component's name without the host suffix and the ``-preview`` suffix rustup adds or drops."""
    if host and name.endswith("-" + host):
        name = name[: -len(host) - 1]
    return name.removesuffix("-preview")


def load_pin(pyproject: Path, overrides: Mapping[str, Any] | None = None) -> ToolchainPin:
    """The pin from ``[tool.redox.toolchain]`` of ``pyproject`` (defaults where absent), with ``overrides``
    (e.g. doit command-line variables such as ``backend-path=...``) applied on top."""
    table: dict[str, Any] = {}
    if pyproject.exists():
        with open(pyproject, "rb") as stream:
            document = tomllib.load(stream)
        table = dict(document.get("tool", {}).get("redox", {}).get("toolchain", {}))
    table.update(overrides or {})
    try:
        return ToolchainPin.model_validate(table)
    except ValidationError as error:
        first = error.errors()[0]
        key = ".".join([TABLE, *(str(part) for part in first["loc"])])
        raise InputError(first["msg"], path=pyproject, key=key) from None


def find_toolchain_files(roots: Iterable[Path]) -> list[Path]:
    """Every ``rust-toolchain.toml`` below ``roots``, skipping build output and VCS directories."""
    found: list[Path] = []
    for root in roots:
        for directory, subdirs, files in os.walk(root):
            subdirs[:] = sorted(name for name in subdirs if name not in _SKIPPED_DIRS)
            if TOOLCHAIN_FILE in files:
                found.append(Path(directory) / TOOLCHAIN_FILE)
    return sorted(found)


def disagreeing_pins(pin: ToolchainPin, roots: Iterable[Path]) -> list[tuple[Path, str]]:
    """Every ``rust-toolchain.toml`` below ``roots`` whose ``[toolchain].channel`` is not the pin's, with the
    channel it names (``?`` for a file that is not valid TOML); read only."""
    found = []
    for path in find_toolchain_files(roots):
        try:
            channel = str(tomllib.loads(path.read_text()).get("toolchain", {}).get("channel", "?"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError):
            channel = "?"
        if channel != pin.channel:
            found.append((path, channel))
    return found

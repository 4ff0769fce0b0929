"""doit's command-line variables (``doit image config=config/aarch64/server.toml root=/path/to/redox``): their names,
and where the tree being built and its build directory are.

Standard library only: the no-op check (``tasks.stages.loader``) needs the build directory before anything heavier
is imported; :class:`tasks.settings.Settings` validates the rest and follows the same rules.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
# Variables that are plain settings (validated and converted by tasks.settings.Settings).
OPTIONS = ("target", "toolchain", "board", "rust_log", "initfs_max_size", "boot_dir", "backups", "prebuilt",
           "initfs_archiver")
NAMES = ("config", "root", "build", *OPTIONS)


def root_dir(variables: Mapping[str, str]) -> Path:
    """``root=``: the tree holding ``recipes/`` and ``config/`` (default: this project)."""
    return Path(variables.get("root", PROJECT_DIR)).resolve()


def build_dir(variables: Mapping[str, str]) -> Path:
    """``build=``: where everything built goes (default: ``<root>/build``)."""
    build = variables.get("build")
    return Path(build).resolve() if build else root_dir(variables) / "build"

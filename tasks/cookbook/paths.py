"""Where a recipe is cooked: its build directory, stage, sysroot and toolchain, and its optional packages' stages.

Standard library only, so that the build's layout is spelled once and read cheaply (``tasks.build`` uses it to name
outputs without loading the cookbook).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CookPaths:
    """Where one recipe is cooked for one triple. ``target``: upstream's ``<recipe>/target/<triple>``."""

    recipe: Path
    source: Path
    target: Path
    root: Path            # COOKBOOK_ROOT (the tree holding recipes/)
    log: Path

    @property
    def build(self) -> Path:
        return self.target / "build"

    @property
    def stage(self) -> Path:
        return self.target / "stage"

    @property
    def sysroot(self) -> Path:
        return self.target / "sysroot"

    @property
    def toolchain(self) -> Path:
        return self.target / "toolchain"

    def optional_stage(self, name: str) -> Path:
        return self.target / f"stage.{name}"

"""Where a recipe is cooked: its build directory, stage, sysroot and toolchain, and its optional packages' stages.

Standard library only, so that the build's layout is spelled once and read cheaply (:class:`tasks.layout.Layout`
names the stages with :func:`stage_dir` without loading the cookbook).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


def stage_dir(target: Path, optional: str | None = None) -> Path:
    """A recipe's stage in its cook directory ``target``, or the stage of one of its optional packages."""
    return target / ("stage" if optional is None else f"stage.{optional}")


def cargo_target_dir(target: Path) -> Path:
    """cargo's target directory in a recipe's cook directory ``target``."""
    return target / "build" / "target"


@dataclass(frozen=True)
class CookPaths:
    """Where one recipe is cooked for one triple. ``target``: upstream's ``<recipe>/target/<triple>``."""

    recipe: Path
    source: Path
    target: Path
    root: Path            # COOKBOOK_ROOT (the tree holding recipes/)
    log: Path
    cargo_target: Path | None = None
    """cargo's target directory (default: ``build/target``): recipes that build one source share the one of the
    recipe that owns it, so that what one compiled the other does not compile again."""

    @property
    def build(self) -> Path:
        return self.target / "build"

    @property
    def cargo_target_dir(self) -> Path:
        return self.cargo_target or cargo_target_dir(self.target)

    @property
    def stage(self) -> Path:
        return stage_dir(self.target)

    @property
    def sysroot(self) -> Path:
        return self.target / "sysroot"

    @property
    def toolchain(self) -> Path:
        return self.target / "toolchain"

    def optional_stage(self, name: str) -> Path:
        return stage_dir(self.target, name)

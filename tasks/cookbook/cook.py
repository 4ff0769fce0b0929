"""Cook a recipe: sysroot from the build dependencies' stages, the build script into ``stage.tmp``, optional
packages split off, then ``stage.tmp`` renamed to ``stage`` (removed instead if anything failed, so the previous
stage stays). When to cook is the engine's decision."""
from __future__ import annotations

import fnmatch
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..atomic import atomic_path, move_into_place, remove_path, removed_on_failure
from ..engine.treehash import hash_directory
from ..errors import BuildError
from ..model.recipe import OptionalPackage, Recipe
from ..toolchain.env import CargoBuild
from .paths import CookPaths
from .script import ScriptDirs, ScriptOptions, run_build_script

SYSROOT_DIRS = ("bin", "include", "lib", "share")
ET_EXEC, ET_DYN = 2, 3  # ELF e_type of an executable and of a PIE (or shared object)

RemoteStage = Callable[[str, Path], None]
"""Fills a stage directory with the prebuilt package of a ``remote`` recipe (name, stage directory)."""


@dataclass(frozen=True)
class CookRequest:
    """Everything a cook depends on besides the recipe and its source."""

    cargo: CargoBuild
    options: ScriptOptions
    dependency_stages: Sequence[Path] = ()        # build dependencies' stages: the sysroot
    host_dependency_stages: Sequence[Path] = ()   # host: dependencies' stages: COOKBOOK_TOOLCHAIN
    template: str | None = None                   # override (installer config rules: binary, ignore)


@dataclass(frozen=True)
class CookResult:
    stage: Path
    optional_stages: dict[str, Path]


def cook(recipe: Recipe, paths: CookPaths, request: CookRequest, remote: RemoteStage | None = None) -> CookResult:
    """Build ``recipe`` into ``paths.stage`` (and ``stage.<optional>``). Whether it needs building is the
    engine's decision (tasks/signatures.py), not this function's."""
    optional = {name: paths.optional_stage(name) for name in recipe.optional_names}
    stage_tmp = paths.target / "stage.tmp"  # upstream's name: the build script sees it as COOKBOOK_STAGE
    optional_tmp = {name: paths.target / f"stage.{name}.tmp" for name in optional}
    remove_path(stage_tmp)
    stage_tmp.mkdir(parents=True)
    template = request.template or recipe.template
    with removed_on_failure(stage_tmp, *optional_tmp.values()):
        if template == "remote":
            if remote is None:
                raise BuildError("template 'remote' needs a local package repository, which is not configured yet",
                                 path=recipe.path, key="build.template")
            remote(recipe.name, stage_tmp)
        elif template != "none":
            _build(recipe, paths, request, stage_tmp)
        split_optional_packages(stage_tmp, recipe.file.optional_packages, paths.target)
        for name, tmp in optional_tmp.items():
            move_into_place(tmp, paths.optional_stage(name))
        move_into_place(stage_tmp, paths.stage)
    return CookResult(paths.stage, optional)


def _build(recipe: Recipe, paths: CookPaths, request: CookRequest, stage_tmp: Path) -> None:
    assemble_sysroot(paths.sysroot, request.dependency_stages)
    libraries = relink_when_libraries_changed(paths, request.cargo.target_name)
    toolchain = None
    if request.host_dependency_stages:
        toolchain = assemble_sysroot(paths.toolchain, request.host_dependency_stages)
    paths.build.mkdir(parents=True, exist_ok=True)  # kept between cooks: cargo's incremental state lives here
    dirs = ScriptDirs(root=paths.root.resolve(), recipe=paths.recipe.resolve(), source=paths.source.resolve(),
                      build=paths.build.resolve(), stage=stage_tmp.resolve(), sysroot=paths.sysroot.resolve(),
                      cargo_target=paths.cargo_target_dir.resolve(),
                      toolchain=toolchain.resolve() if toolchain else None)
    try:
        run_build_script(recipe.build, recipe.name, dirs, request.cargo, request.options, paths.log)
    except BuildError as error:
        raise type(error)(f"cook {recipe.name}: {error.reason}", path=error.path, key=error.key) from None
    libraries.record()


@dataclass(frozen=True)
class LinkedLibraries:
    """The sysroot's libraries a cargo target directory's executables were last linked against."""

    record_file: Path
    digest: str

    def record(self) -> None:
        self.record_file.parent.mkdir(parents=True, exist_ok=True)
        self.record_file.write_text(self.digest)


def relink_when_libraries_changed(paths: CookPaths, target_name: str) -> LinkedLibraries:
    """Cargo does not know that a program links the sysroot's libraries (``-L`` and ``-lc`` are no inputs it
    tracks): after a relibc change it would keep the binaries linked against the old libc.a. When the sysroot's
    ``usr/lib`` differs from the one that cargo's output for ``target_name`` was last linked against, the
    executables there are removed, so that cargo links them again — only them: every crate stays compiled. Kept per
    target directory and target, so that recipes sharing one (base, base-initfs) relink once."""
    libraries, output = paths.sysroot / "usr" / "lib", paths.cargo_target_dir / target_name
    linked = LinkedLibraries(output / "sysroot-lib.digest", hash_directory(libraries) if libraries.is_dir() else "")
    if linked.record_file.is_file() and linked.record_file.read_text() != linked.digest:
        for executable in _linked_executables(output):
            executable.unlink()
    return linked


def _linked_executables(output: Path) -> list[Path]:
    """The ELF executables (static or PIE) in cargo's ``<profile>/deps`` directories of one target."""
    found = []
    for path in (path for deps in output.glob("*/deps") for path in deps.iterdir()):
        if path.is_file() and not path.is_symlink() and path.suffix == "":
            with open(path, "rb") as stream:
                head = stream.read(18)
            if head[:4] == b"\x7fELF" and int.from_bytes(head[16:18], "little") in (ET_EXEC, ET_DYN):
                found.append(path)
    return found


def assemble_sysroot(destination: Path, stages: Sequence[Path]) -> Path:
    """Upstream's sysroot: ``usr/{bin,include,lib,share}`` with ``bin`` etc. linked to them, and every stage
    copied in, in order (a later stage's file replaces an earlier one's). Built aside, then renamed."""
    with atomic_path(destination, directory=True) as partial:
        for name in SYSROOT_DIRS:
            (partial / "usr" / name).mkdir(parents=True)
            (partial / name).symlink_to(Path("usr") / name)
        for stage in stages:
            shutil.copytree(stage, partial, symlinks=True, dirs_exist_ok=True)
    return destination


def split_optional_packages(stage: Path, packages: Sequence[OptionalPackage], target_dir: Path) -> None:
    """Move each staged file matching an optional package's globs into ``stage.<name>.tmp``; the first
    matching pattern wins. Globs follow globset's defaults (``*`` also matches ``/``), like upstream."""
    for package in packages:
        remove_path(target_dir / f"stage.{package.name}.tmp")
        (target_dir / f"stage.{package.name}.tmp").mkdir(parents=True)
    if not packages:
        return
    for path in sorted(_staged_files(stage)):
        relative = path.relative_to(stage).as_posix()
        owner = next((package for package in packages
                      if any(fnmatch.fnmatchcase(relative, pattern.lstrip("/")) for pattern in package.files)), None)
        if owner is not None:
            moved = target_dir / f"stage.{owner.name}.tmp" / relative
            moved.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, moved)


def _staged_files(stage: Path) -> list[Path]:
    found = []
    for directory, subdirs, files in os.walk(stage):
        base = Path(directory)
        found += [base / name for name in files]
        found += [base / name for name in subdirs if (base / name).is_symlink()]
    return found

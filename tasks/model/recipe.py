"""Cookbook recipes (``recipes/**/<name>/recipe.toml``), compatible with upstream's ``src/recipe.rs``.

Every table is optional: an empty file is a meta-package. ``[source]`` is untagged (the first variant whose key is
present wins: same_as, path, git, tar); ``[build]`` is selected by ``template``.
"""
from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import AfterValidator, Discriminator, Field, Tag, field_validator

from ..errors import InputError
from ..hashing import hash_file, hash_value
from .names import OptionalDependencyName, PackageName
from .tomlfile import Table, read_toml, validate

RECIPE_FILE = "recipe.toml"
SOURCE_DIR = "source"  # upstream's place for a recipe's source, beside its recipe.toml


def _beneath(what: str) -> AfterValidator:
    """A relative path that stays beneath ``what`` (no ``..``, not absolute): a recipe from someone else never
    feeds a host file to ``patch`` or builds outside its source."""
    def check(value: str) -> str:
        if value.startswith("/") or ".." in Path(value).parts:
            raise ValueError(f"{value!r}: must be a path beneath {what} (no '..', not absolute)")
        return value
    return AfterValidator(check)


PatchPath = Annotated[str, _beneath("the recipe's directory")]
SourcePath = Annotated[str, _beneath("the source")]


class GitSource(Table):
    git: str
    upstream: str | None = None
    branch: str | None = None
    rev: str | None = None
    shallow_clone: bool | None = None
    patches: list[PatchPath] = []
    script: str | None = None


class TarSource(Table):
    tar: str
    blake3: str | None = None
    patches: list[PatchPath] = []
    script: str | None = None


class PathSource(Table):
    path: str


class SameAsSource(Table):
    same_as: str


SOURCE_KEYS = ("same_as", "path", "git", "tar")


def _source_kind(value: object) -> str | None:
    # Tags are wrapped in <> so that error locations can drop them (see tomlfile.key_path).
    if isinstance(value, dict):
        return next((f"<{key}>" for key in SOURCE_KEYS if key in value), None)
    return {SameAsSource: "<same_as>", PathSource: "<path>", GitSource: "<git>", TarSource: "<tar>"}.get(
        type(value))


Source = Annotated[
    Union[Annotated[SameAsSource, Tag("<same_as>")], Annotated[PathSource, Tag("<path>")],
          Annotated[GitSource, Tag("<git>")], Annotated[TarSource, Tag("<tar>")]],
    Discriminator(_source_kind, custom_error_type="source_kind",
                  custom_error_message="expected one of the keys same_as, path, git or tar"),
]

Template = Literal["none", "remote", "cargo", "configure", "cmake", "meson", "python", "custom"]
TEMPLATES: tuple[str, ...] = Template.__args__  # type: ignore[attr-defined]

COMMON_BUILD_KEYS = {"template", "dependencies", "dev-dependencies"}
TEMPLATE_KEYS: dict[str, set[str]] = {
    "none": set(),
    "remote": set(),
    "cargo": {"cargopath", "cargoflags", "cargopackages", "cargoexamples", "clearlocked", "cargopackagesprefixed"},
    "configure": {"configureflags"},
    "cmake": {"cmakeflags"},
    "meson": {"mesonflags"},
    "python": {"pyprojectpath", "pipflags", "legacysetup"},
    "custom": {"script"},
}
# Upstream accepts a custom recipe without a script (many wip recipes are placeholders) but cannot build it, so it
# loads with a warning and the graph refuses it only when a config needs it built.
REQUIRED_TEMPLATE_KEYS = {"custom": ("script",)}


class Build(Table):
    template: Template
    dependencies: list[PackageName] = []
    dev_dependencies: list[PackageName] = Field(default=[], alias="dev-dependencies")
    # cargo
    cargopath: SourcePath | None = None
    cargoflags: list[str] = []
    cargopackages: list[str] = []
    cargoexamples: list[str] = []
    clearlocked: bool = False
    cargopackagesprefixed: bool = False
    # configure, cmake, meson
    configureflags: list[str] = []
    cmakeflags: list[str] = []
    mesonflags: list[str] = []
    # python
    pyprojectpath: SourcePath | None = None
    pipflags: list[str] = []
    legacysetup: bool = False
    # custom
    script: str | None = None

    @field_validator("cargoflags", mode="before")
    @classmethod
    def _split_flag_string(cls, value: object) -> object:
        # A few recipes write cargoflags as one string; cargo receives it split like a shell would.
        return shlex.split(value) if isinstance(value, str) else value

    def keys_set(self) -> set[str]:
        return {field.alias or name for name, field in type(self).model_fields.items()
                if name in self.model_fields_set}


class Package(Table):
    dependencies: list[PackageName] = []
    version: str | None = None
    description: str | None = None


class OptionalPackage(Table):
    name: str
    dependencies: list[OptionalDependencyName] = []
    files: list[str] = []

    @field_validator("name")
    @classmethod
    def _simple_name(cls, value: str) -> str:
        if not value or any(char in value for char in "./:\0"):
            raise ValueError(f"invalid optional package name {value!r}: must be non-empty without '.', '/', ':'")
        return value


class RecipeFile(Table):
    """The content of one ``recipe.toml``."""

    source: Source | None = None
    build: Build = Build(template="none")
    package: Package = Package()
    optional_packages: list[OptionalPackage] = Field(default=[], alias="optional-packages")


@dataclass(frozen=True)
class Recipe:
    """A recipe found on disk: its name (the directory name), where it is, what it says."""

    name: str
    dir: Path
    file: RecipeFile
    warnings: tuple[str, ...] = ()
    digest: str = ""
    """What the recipe says, hashed: a comment or the order of keys does not change it (a signature component)."""

    @property
    def path(self) -> Path:
        return self.dir / RECIPE_FILE

    @property
    def source_dir(self) -> Path:
        return self.dir / SOURCE_DIR

    @property
    def source(self) -> GitSource | TarSource | PathSource | SameAsSource | None:
        return self.file.source

    @property
    def build(self) -> Build:
        return self.file.build

    @property
    def template(self) -> str:
        return self.file.build.template

    @property
    def optional_names(self) -> list[str]:
        return [optional.name for optional in self.file.optional_packages]

    def files_digest(self) -> str:
        """The files beside recipe.toml that a build script may read (programs.txt, helper scripts, patches): every
        file below the recipe's directory but recipe.toml itself (its parsed digest counts) and the fetched
        source, by relative path and content."""
        files = []
        for directory, subdirs, names in os.walk(self.dir):
            if Path(directory) == self.dir:
                subdirs[:] = [name for name in subdirs if name != SOURCE_DIR]
                names = [name for name in names if name not in (RECIPE_FILE, SOURCE_DIR)]
            subdirs.sort()
            files += [Path(directory, name) for name in sorted(names)]
        return hash_value([[path.relative_to(self.dir).as_posix(), hash_file(path) if path.is_file() else
                            os.readlink(path) if path.is_symlink() else None] for path in files])

    def build_error(self) -> InputError | None:
        """Why this recipe cannot be built from source, if it cannot."""
        for key in REQUIRED_TEMPLATE_KEYS.get(self.template, ()):
            if getattr(self.build, key) is None:
                return InputError(f"missing required key for template '{self.template}'", path=self.path,
                                  key=f"build.{key}")
        return None


def load_recipe(directory: Path) -> Recipe:
    """Read and validate ``<directory>/recipe.toml``; :class:`InputError` names file, key and reason."""
    path = directory / RECIPE_FILE
    data = read_toml(path)
    _check_template_value(data, path)
    warnings = []
    if data.get("source") == {}:
        # Upstream placeholders write an empty [source]; it means "no source yet".
        del data["source"]
        warnings.append("source: empty table (no source to fetch)")
    recipe_file, unknown = validate(RecipeFile, data, path)
    recipe = Recipe(directory.name, directory, recipe_file)
    warnings += unknown + _template_warnings(recipe)
    digest = hash_value(recipe_file.model_dump(mode="json", by_alias=True))
    return Recipe(directory.name, directory, recipe_file, tuple(warnings), digest)


def _check_template_value(data: dict, path: Path) -> None:
    # Checked before pydantic so the message lists the templates, as users need when they mistype one.
    build = data.get("build")
    if isinstance(build, dict) and isinstance(build.get("template"), str) and build["template"] not in TEMPLATES:
        raise InputError(f"unknown template {build['template']!r} (expected one of: {', '.join(TEMPLATES)})",
                         path=path, key="build.template")


def _template_warnings(recipe: Recipe) -> list[str]:
    """A missing required key makes the recipe unbuildable; keys of other templates are ignored."""
    build = recipe.build
    warnings = []
    if (error := recipe.build_error()) is not None:
        warnings.append(f"{error.key}: {error.reason} (the recipe cannot be built)")
    allowed = COMMON_BUILD_KEYS | TEMPLATE_KEYS[build.template]
    warnings += [f"build.{key}: not used by template '{build.template}' (ignored)"
                 for key in sorted(build.keys_set() - allowed)]
    return warnings

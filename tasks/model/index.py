"""Finding recipes: a recipe is a directory holding ``recipe.toml`` anywhere under ``recipes/``."""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import GraphError, display_path
from .parsecache import RecipeCache
from .recipe import RECIPE_FILE, Recipe
from .tomlfile import did_you_mean


class RecipeIndex:
    """Name → recipe directory for one tree, loading recipes on demand (each file is parsed once)."""

    def __init__(self, recipes_dir: Path, cache: Path | None = None):
        self.recipes_dir = recipes_dir
        self.dirs, self.warnings = discover(recipes_dir)
        self._loaded: dict[str, Recipe] = {}
        self.cache = RecipeCache(cache)

    def __contains__(self, name: str) -> bool:
        return name in self.dirs

    def names(self) -> list[str]:
        return sorted(self.dirs)

    def load(self, name: str) -> Recipe:
        """The recipe called ``name``; :class:`GraphError` when there is none (callers add who asked)."""
        if (recipe := self._loaded.get(name)) is None:
            directory = self.dirs.get(name)
            if directory is None:
                raise GraphError(f"no recipe named {name!r} under {display_path(self.recipes_dir)}"
                                 + did_you_mean(name, self.dirs))
            recipe = self._loaded[name] = self.cache.load(directory)
        return recipe

    def loaded(self) -> list[Recipe]:
        """The recipes read so far."""
        return list(self._loaded.values())

    def loaded_dirs(self) -> list[Path]:
        """The directories of the recipes read so far: what the build depends on (besides discovery itself)."""
        return [recipe.dir for recipe in self.loaded()]

    def name_of_dir(self, directory: Path) -> str | None:
        """The recipe name of a directory (for ``same_as``), if it is the recipe of that name."""
        directory = directory.resolve()
        name = directory.name
        return name if name in self.dirs and self.dirs[name].resolve() == directory else None


def discover(recipes_dir: Path) -> tuple[dict[str, Path], list[str]]:
    """All recipe directories by name. A recipe's own subdirectories (``source/``, ``target/``) are not searched.

    Duplicate names warn, listing every path; the first path in sorted order wins, so the choice does not depend
    on the file system's directory order.
    """
    found: dict[str, list[Path]] = {}
    pending = [recipes_dir]
    while pending:
        directory = pending.pop()
        try:
            entries = list(os.scandir(directory))
        except FileNotFoundError:
            continue
        # Whatever recipe.toml is (a file, or by mistake a directory or a dangling link) makes this a recipe, so
        # asking for it says what is wrong with it instead of "no recipe named …".
        if any(entry.name == RECIPE_FILE for entry in entries):
            found.setdefault(os.path.basename(directory), []).append(Path(directory))
            continue
        pending.extend(entry.path for entry in entries if entry.is_dir(follow_symlinks=False))
    chosen: dict[str, Path] = {}
    warnings: list[str] = []
    for name, paths in found.items():
        paths.sort()
        chosen[name] = paths[0]
        if len(paths) > 1:
            listed = ", ".join(display_path(path) for path in paths)
            warnings.append(f"recipe {name!r} is defined {len(paths)} times: {listed}; "
                            f"using {display_path(paths[0])}")
    return chosen, sorted(warnings)

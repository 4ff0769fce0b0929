"""Parsed recipes kept between runs: a recipe file is parsed and validated again only when its stat changed.

A no-op build of a 3,000-recipe graph would otherwise spend most of its time re-reading TOML. The cache is one
pickle under the build directory, keyed by path with (size, mtime_ns, inode); it is rewritten only when an entry
changed, atomically, and a cache that cannot be read is simply rebuilt.
"""
from __future__ import annotations

import os
import pickle
from pathlib import Path

from ..atomic import write_atomically
from .recipe import RECIPE_FILE, Recipe, load_recipe

FORMAT = 2  # 2: recipes carry their digest


class RecipeCache:
    def __init__(self, path: Path | None):
        self.path = path
        self._entries: dict[str, tuple[tuple[int, int, int], Recipe]] = self._read()
        self._changed = False

    def load(self, directory: Path) -> Recipe:
        file = directory / RECIPE_FILE
        try:
            info = os.stat(file)
        except FileNotFoundError:
            return load_recipe(directory)  # says which file is missing
        key = (info.st_size, info.st_mtime_ns, info.st_ino)
        cached = self._entries.get(str(file))
        if cached is not None and cached[0] == key:
            return cached[1]
        recipe = load_recipe(directory)
        self._entries[str(file)] = (key, recipe)
        self._changed = True
        return recipe

    def __getstate__(self) -> dict:
        """Pickled with its project (:meth:`tasks.model.project.Project.save`): the path alone, as an empty cache."""
        return {"path": self.path, "_entries": {}, "_changed": False}

    def save(self) -> None:
        if self.path is None or not self._changed:
            return
        # Uniquely named temporary: two builds loading the same recipes may save the cache at once.
        write_atomically(self.path, pickle.dumps((FORMAT, self._entries), protocol=pickle.HIGHEST_PROTOCOL))
        self._changed = False

    def _read(self) -> dict:
        if self.path is None:
            return {}
        try:
            with open(self.path, "rb") as stream:
                version, entries = pickle.load(stream)
        except (OSError, pickle.PickleError, EOFError, ValueError, TypeError, AttributeError, ImportError):
            return {}
        return entries if version == FORMAT else {}

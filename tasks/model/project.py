"""Everything a build needs to know, loaded once: settings, the merged config, the recipes, the graph."""
from __future__ import annotations

import copyreg
import io
import pickle
from dataclasses import dataclass
from pathlib import Path, PosixPath

from ..atomic import write_atomically
from ..errors import InputError
from ..hashing import hash_bytes
from ..settings import Settings
from .config import Config, load_config
from .graph import Graph, Step, graph_for_config
from .index import RecipeIndex


@dataclass
class Project:
    settings: Settings
    config: Config
    index: RecipeIndex
    graph: Graph

    @classmethod
    def load(cls, settings: Settings) -> "Project":
        if not settings.config_file.is_file():
            raise InputError("config file not found (choose one with config=PATH)", path=settings.config_file)
        config = load_config(settings.config_file)
        index = RecipeIndex(settings.recipes_dir, cache=settings.build / "cache" / "recipes.pickle")
        graph = graph_for_config(index, config, prebuilt=_prebuilt_lookup(settings))
        index.cache.save()
        return cls(settings, config, index, graph)

    def save(self, path: Path) -> str:
        """Kept for the check after an edit, which takes it instead of loading the recipes and the graph when
        neither can have changed (:meth:`restore`); returns the digest that names this copy."""
        buffer = io.BytesIO()
        pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
        pickler.dispatch_table = {**copyreg.dispatch_table, PosixPath: _path_from_text}
        pickler.dump(self)
        data = buffer.getvalue()
        write_atomically(path, data)
        return hash_bytes(data)

    @classmethod
    def restore(cls, path: Path, digest: str, settings: Settings) -> "Project | None":
        """The project :meth:`save` kept as ``digest``, if it is there and of these settings (None: load it)."""
        try:
            data = path.read_bytes()
            kept = pickle.loads(data) if hash_bytes(data) == digest else None
        except (OSError, pickle.PickleError, EOFError, ValueError, TypeError, AttributeError, ImportError):
            return None
        return kept if isinstance(kept, cls) and kept.settings == settings else None

    @property
    def warnings(self) -> list[str]:
        recipe_warnings = [f"{step.recipe.path}: {warning}"
                           for step in self.graph.steps.values() for warning in step.recipe.warnings]
        return self.index.warnings + self.config.warnings + recipe_warnings

    def source_dir(self, step: Step) -> Path:
        """The source a recipe builds from: its own, or with ``same_as`` the other recipe's."""
        return (self.index.load(step.source_from) if step.source_from else step.recipe).source_dir


def _path_from_text(path: PosixPath) -> tuple:
    """A path pickled as its text: restored by parsing one string, where pathlib's own pickling joins its parts
    again (the run after an edit restores thousands: a third less time)."""
    return PosixPath, (str(path),)


def _prebuilt_lookup(settings: Settings):
    """Where the graph finds a config package with rule ``binary`` and no recipe: the package server
    (``prebuilt_url=``, through the per-user cache), else the prebuilt directory."""
    def lookup(name: str) -> tuple[str, list[str]]:
        from ..cookbook.download import Server, prebuilt_metadata
        from ..cookbook.script import offline
        server = Server(settings.prebuilt_url, settings.target, settings.package_server_key) \
            if settings.prebuilt_url else None
        found = prebuilt_metadata(name, server=server, prebuilt_dir=settings.prebuilt_dir, target=settings.target,
                                  offline=offline())
        return found.version, found.depends
    return lookup

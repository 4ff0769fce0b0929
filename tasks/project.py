"""Everything a build needs to know, loaded once: settings, the merged config, the recipes, the graph."""
from __future__ import annotations

from dataclasses import dataclass

from .errors import InputError
from .graph import Graph, graph_for_config
from .model.config import Config, load_config
from .model.index import RecipeIndex
from .settings import Settings


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
        graph = graph_for_config(index, config)
        index.cache.save()
        return cls(settings, config, index, graph)

    @property
    def warnings(self) -> list[str]:
        recipe_warnings = [f"{step.recipe.path}: {warning}"
                           for step in self.graph.steps.values() for warning in step.recipe.warnings]
        return self.index.warnings + self.config.warnings + recipe_warnings

"""``fetch:<recipe>``: a recipe's source brought to what its ``[source]`` says — a git clone at its rev or branch,
a tar checked against its blake3, a path copied, or a ``same_as`` link to another recipe's source (fetched
first) — then its patches and fetch script. A source edited since it was fetched is left as it is."""
from __future__ import annotations

from ..errors import display_path
from ..hashing import hash_file, hash_value
from ..model.recipe import SOURCE_KEYS, GitSource, Recipe, TarSource
from .stage import NONE, Dep, RecipeStage, task_name


class Fetch(RecipeStage[str]):
    """Fetch recipe sources (git, tar with blake3, path, same_as), then patches and scripts"""

    name = "fetch"
    data = ("templates/cookbook_prelude.sh.j2",)  # a fetch script runs inside the cookbook prelude

    def items(self) -> list[str]:
        return list(self.graph.sources)

    def describe(self, name: str) -> str:
        recipe = self.graph.sources[name]
        kind = next((key for key in SOURCE_KEYS if hasattr(recipe.source, key)), "no")
        return f"fetch the {kind} source of {name} ({display_path(recipe.path)})"

    def deps(self, name: str) -> list[Dep]:
        other = self.graph.same_as.get(name)
        return [Dep(task_name("fetch", other))] if other is not None else []

    def inputs(self, name: str) -> dict[str, str]:
        recipe = self.graph.sources[name]
        return {"source-table": hash_value(recipe.source.model_dump(mode="json") if recipe.source else None),
                "patches": _patches(recipe)}

    def run(self, name: str) -> None:
        from ..cookbook.fetch import SourcePaths, fetch
        from ..cookbook.script import offline
        recipe = self.graph.sources[name]
        other = self.graph.sources.get(self.graph.same_as.get(name) or "")
        result = fetch(recipe, SourcePaths.for_recipe(recipe, self.settings.build), trees=self.ctx.trees,
                       offline=offline(), log=self.layout.log(task_name("fetch", name)),
                       same_as_source=other.source_dir if other is not None else None)
        if result.message:
            print(f"{name}: {result.status}: {result.message}")


def _patches(recipe: Recipe) -> str:
    patches = recipe.source.patches if isinstance(recipe.source, (GitSource, TarSource)) else []
    return hash_value([[patch, hash_file(recipe.dir / patch) if (recipe.dir / patch).is_file() else NONE]
                       for patch in patches])

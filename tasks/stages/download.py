"""``download:<recipe>``: a package taken prebuilt (rule ``binary``) brought from the package server named by
``prebuilt_url=`` into the build's prebuilt directory, through the per-user cache and verified against the key the
tree pins (:mod:`tasks.cookbook.download`). Without ``prebuilt_url`` there are no such tasks: the packages are
read from ``prebuilt=DIR`` as they are."""
from __future__ import annotations

import sys
from pathlib import Path

from ..hashing import hash_file, hash_value
from .stage import NONE, RecipeStage


class Download(RecipeStage[str]):
    """Download packages taken prebuilt from the package server (prebuilt_url=), verified with the pinned key"""

    name = "download"

    def items(self) -> list[str]:
        if not self.settings.prebuilt_url:
            return []
        return [step.recipe.name for step in self.graph.steps.values() if step.rule == "binary" and not step.node.host]

    def describe(self, name: str) -> str:
        return f"download {name} from {self.settings.prebuilt_url}"

    def inputs(self, name: str) -> dict[str, str]:
        key = self.layout.prebuilt_key
        return {"server": hash_value([self.settings.prebuilt_url, self.settings.target, name]),
                "key": hash_file(key) if key.is_file() else NONE}

    def outputs(self, name: str) -> list[Path]:
        package = self.layout.prebuilt_package(name)
        return [package.with_suffix(".toml"), package]

    def run(self, name: str) -> None:
        from ..cookbook.download import Server, fetch_package
        from ..cookbook.script import offline
        server = Server(str(self.settings.prebuilt_url), self.settings.target, self.layout.prebuilt_key)
        built_here = frozenset(step.recipe.name for step in self.graph.steps.values() if step.builds_from_source)
        followed = fetch_package(server, name, self.layout.prebuilt_package(name).parent, offline=offline(),
                                 built_here=built_here)
        missing = [dependency for dependency in followed if dependency not in self.graph.sources
                   and all(step.recipe.name != dependency for step in self.graph.steps.values())]
        if missing:
            print(f"warning: {name} from {server.url} depends on {', '.join(missing)}, which this config does not "
                  f"build or take; they are in the package cache: add them to [packages]", file=sys.stderr)

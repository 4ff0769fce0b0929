"""``pkg:<recipe>``: a recipe's stage (and each optional package's) published as a signed pkgar and its
``<name>.toml`` in the local package repository the installer reads. A recipe that builds nothing is a
meta-package: a ``.toml`` of dependencies only. Host builds are tools for other builds and are never published."""
from __future__ import annotations

import re
from pathlib import Path

from ..formats.pkgkeys import public_key_digest
from ..hashing import hash_value
from ..model.graph import Node, Step
from ..model.recipe import GitSource, Recipe, TarSource
from .names import INITFS_PACKAGE, INITFS_SOURCES
from .stage import Dep, RecipeStage, task_name

VERSION = re.compile(r"\d+(\.\d+){1,2}")


class Package(RecipeStage[Node]):
    """Package recipe stages as signed pkgar files in the local repository (pkg:<recipe>)"""

    name = "pkg"
    cached = True

    def items(self) -> list[Node]:
        return [node for node in self.graph.steps if not node.host]

    def describe(self, node: Node) -> str:
        return f"package {node} into repo/"

    def deps(self, node: Node) -> list[Dep]:
        return [Dep(task_name("cook", node))]

    def inputs(self, node: Node) -> dict[str, str]:
        step = self.graph.steps[node]
        return {"recipe": step.recipe.digest, "depends": hash_value([str(dep) for dep in step.runtime_deps]),
                "key": self.ctx.shared(public_key_digest, self.layout.key_dir), "target": self.settings.target}

    def outputs(self, node: Node) -> list[Path]:
        return [path for path in self.possible_outputs(node) if path.exists()]

    def possible_outputs(self, node: Node) -> list[Path]:
        recipe = self.graph.steps[node].recipe
        return [path for name in self._package_names(recipe) for path in self.layout.package_paths(name)]

    def stamp_sources(self, node: Node) -> list[Recipe]:
        return [self.graph.steps[node].recipe]

    def run(self, node: Node) -> None:
        from ..formats import pkgkeys
        from ..formats.repo import PackageRecord, publish
        step = self.graph.steps[node]
        recipe, stage = step.recipe, self.layout.stage(node)
        key = pkgkeys.ensure_keys(self.layout.key_dir)
        depends = [str(dep) for dep in step.runtime_deps]
        if recipe.name == INITFS_SOURCES[0]:
            depends.append(INITFS_PACKAGE)  # its stage goes into the initfs, not into the image
        meta = recipe.name == INITFS_SOURCES[0] or (step.template == "none" and not any(stage.rglob("*")))
        record = PackageRecord(name=recipe.name, version="" if meta else _version(step), target=self.settings.target,
                               depends=depends)
        publish(self.layout.repo, record, None if meta else stage, key)
        for optional in recipe.file.optional_packages:
            opt_deps = [f"{recipe.name}{dep}" if dep.startswith(".") else dep for dep in optional.dependencies]
            record = PackageRecord(name=f"{recipe.name}.{optional.name}", version=_version(step),
                                   target=self.settings.target, depends=[recipe.name, *opt_deps])
            publish(self.layout.repo, record, self.layout.stage(node, optional.name), key)

    @staticmethod
    def _package_names(recipe: Recipe) -> list[str]:
        return [recipe.name, *(f"{recipe.name}.{name}" for name in recipe.optional_names)]


def _version(step: Step) -> str:
    """Upstream's rule: [package].version, else a version in the tar URL or git rev/branch, else TODO."""
    recipe = step.recipe
    if recipe.file.package.version:
        return recipe.file.package.version
    source = recipe.source
    candidates = [source.tar] if isinstance(source, TarSource) else \
        [source.rev or "", source.branch or ""] if isinstance(source, GitSource) else []
    for text in candidates:
        if match := VERSION.search(text):
            return match.group(0)
    return "TODO"

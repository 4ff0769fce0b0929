"""What each task does, for one project: fetch, cook and package recipes; the toolchain; the relibc sysroot.

Knows nothing of doit: ``tasks.stages`` declares the tasks and calls these methods as their actions. Paths:
everything a build writes is under the build directory (``build/`` by default):

``build/<triple>/recipes/<name>/``  a recipe's build dir, stage and sysroot (upstream: ``<recipe>/target/<T>``)
``build/cookbook/``                 the local package repository the installer reads (``repo/<T>``, ``build/`` keys)
``build/<arch>/<config>.img``       the disk image of a config (and its ``.qcow2``)
``build/logs/<task>.log``          one log per task
"""
from __future__ import annotations

import functools
import os
import re
from pathlib import Path

from .cookbook.cook import CookPaths, CookRequest, cook
from .cookbook.fetch import SourcePaths, fetch
from .cookbook.relibc import assemble_relibc_sysroot
from .cookbook.script import ScriptOptions
from .formats import pkgkeys
from .formats.repo import PackageRecord, publish, write_index
from .graph import Node, Step
from .model.recipe import GitSource, Recipe, TarSource
from .project import Project
from .settings import PROJECT_DIR, host_triple
from .toolchain import ArtifactKind, SpecKind, host_build, load_pin, spec_path, target_build, verify_toolchain
from .toolchain import fingerprint as toolchain_fingerprint
from .toolchain import write_pins, write_specs

VERSION = re.compile(r"\d+(\.\d+){1,2}")
# Recipes built before the sysroot exists, or against none.
NO_SYSROOT = {"relibc": ArtifactKind.RELIBC, "kernel": ArtifactKind.KERNEL}


class Builder:
    def __init__(self, project: Project):
        self.project = project
        self.settings = project.settings
        self.build = self.settings.build

    # --- layout ----------------------------------------------------------------------------------------------

    @property
    def host_only(self) -> bool:
        """The target is this machine (demo and tests): no Redox toolchain is involved."""
        return self.settings.target == host_triple()

    @property
    def arch_dir(self) -> Path:
        return self.build / self.settings.arch

    @property
    def sysroot(self) -> Path:
        return self.arch_dir / "sysroot"

    @property
    def image_path(self) -> Path:
        """The disk image the ``image`` task assembles for the selected config: ``build/<arch>/<config name>.img``."""
        return self.arch_dir / f"{self.settings.config_file.stem}.img"

    @property
    def qcow2_path(self) -> Path:
        """The ``qcow2`` task's copy of :attr:`image_path`."""
        return self.image_path.with_suffix(".qcow2")

    @property
    def cookbook(self) -> Path:
        return self.build / "cookbook"

    @property
    def repo(self) -> Path:
        return self.cookbook / "repo"

    def log(self, task: str) -> Path:
        return self.build / "logs" / f"{task.replace('/', '_')}.log"

    def triple(self, node: Node) -> str:
        return host_triple() if node.host else self.settings.target

    def cook_paths(self, node: Node) -> CookPaths:
        step = self.project.graph.steps[node]
        return CookPaths(recipe=step.recipe.dir, source=self.source_dir(step.recipe),
                         target=self.build / self.triple(node) / "recipes" / node.recipe, root=self.settings.root,
                         log=self.log(f"cook-{node}"))

    def source_dir(self, recipe: Recipe) -> Path:
        return recipe.dir / "source"

    # --- toolchain -------------------------------------------------------------------------------------------

    @functools.cached_property
    def pin(self):
        return load_pin(PROJECT_DIR / "pyproject.toml")

    @functools.cached_property
    def toolchain(self):
        return verify_toolchain(self.pin, log=self.log("toolchain"))

    def specs(self) -> dict[SpecKind, Path]:
        return {kind: spec_path(self.arch_dir, kind, self.settings.arch) for kind in SpecKind}

    def prepare_toolchain(self) -> None:
        """Verify the pinned toolchain, write the pin into every rust-toolchain.toml, render the target specs."""
        if self.host_only:
            return
        self.toolchain  # noqa: B018  (raises with the fix command when something is missing)
        sources = [recipe.dir / "source" for recipe in self.project.graph.sources.values()]
        write_pins(self.pin, [path for path in sources if path.is_dir()])
        write_specs(self.arch_dir, self.settings.arch, self.sysroot)

    def fingerprint(self) -> str:
        return "host" if self.host_only else toolchain_fingerprint(self.toolchain, self.specs().values())

    # --- fetch, cook, package -----------------------------------------------------------------------------------

    def fetch(self, name: str) -> None:
        recipe = self.project.graph.sources[name]
        other = self.project.graph.sources.get(self._same_as(name) or "")
        result = fetch(recipe, SourcePaths.for_recipe(recipe, self.build), offline=self._offline(),
                       log=self.log(f"fetch-{name}"),
                       same_as_source=self.source_dir(other) if other is not None else None)
        if result.message:
            print(f"{name}: {result.status}: {result.message}")

    def cook(self, node: Node) -> None:
        step = self.project.graph.steps[node]
        paths = self.cook_paths(node)
        if step.source_from:
            paths = CookPaths(recipe=paths.recipe, source=self.source_dir(self.project.index.load(step.source_from)),
                              target=paths.target, root=paths.root, log=paths.log)
        deps = [self.cook_paths(dep).stage for dep in step.build_deps if not dep.host]
        host_deps = [self.cook_paths(dep).stage for dep in step.build_deps if dep.host]
        cook(step.recipe, paths, CookRequest(
            cargo=self._cargo(step),
            options=ScriptOptions(target=self.triple(node), offline=self._offline(), jobs=os.cpu_count() or 1),
            dependency_stages=deps if node.host or self.host_only or node.recipe in NO_SYSROOT
            else [*deps, self.sysroot],
            host_dependency_stages=host_deps, template=step.template,
            extra_inputs={"toolchain": self.fingerprint()}))

    def package(self, node: Node) -> None:
        """Publish the recipe's stage (and its optional packages) as signed pkgar files in the local repo."""
        step = self.project.graph.steps[node]
        key = pkgkeys.ensure_keys(self.cookbook / "build")
        paths = self.cook_paths(node)
        recipe = step.recipe
        meta = step.template == "none" and not any(paths.stage.rglob("*"))
        depends = [str(dep) for dep in step.runtime_deps]
        publish(self.repo, self._record(step, recipe.name, depends, meta), None if meta else paths.stage, key)
        for optional in recipe.file.optional_packages:
            opt_deps = [f"{recipe.name}{dep}" if dep.startswith(".") else dep for dep in optional.dependencies]
            publish(self.repo, self._record(step, f"{recipe.name}.{optional.name}", [recipe.name, *opt_deps], False),
                    paths.optional_stage(optional.name), key)

    def index_repo(self) -> None:
        target_dir = self.repo / self.settings.target
        target_dir.mkdir(parents=True, exist_ok=True)
        write_index(target_dir)

    def relibc_sysroot(self) -> None:
        """``build/<arch>/sysroot``: relibc's libc.a and CRT objects, merged as the fork does."""
        stage = self.cook_paths(Node("relibc")).stage
        tools = self.toolchain
        assemble_relibc_sysroot(stage, self.sysroot, ar=str(tools.tool("llvm-ar")), rust_lld=str(tools.tool("rust-lld")),
                                log=self.log("relibc"))

    # --- helpers -------------------------------------------------------------------------------------------------

    def _cargo(self, step: Step):
        if step.node.host or self.host_only:
            return host_build(None if self.host_only else self.toolchain)
        kind = NO_SYSROOT.get(step.node.recipe, ArtifactKind.USERSPACE)
        spec = self.specs()[SpecKind.KERNEL if kind is ArtifactKind.KERNEL else SpecKind.USERSPACE]
        return target_build(self.toolchain, kind, spec=spec, sysroot=self.sysroot)

    def _record(self, step: Step, name: str, depends: list[str], meta: bool) -> PackageRecord:
        return PackageRecord(name=name, version="" if meta else self._version(step.recipe),
                             target=self.settings.target, depends=depends)

    def _version(self, recipe: Recipe) -> str:
        """Upstream's rule: [package].version, else a version in the tar URL or git rev/branch, else TODO."""
        if recipe.file.package.version:
            return recipe.file.package.version
        source = recipe.source
        candidates = [source.tar] if isinstance(source, TarSource) else \
            [source.rev or "", source.branch or ""] if isinstance(source, GitSource) else []
        for text in candidates:
            if match := VERSION.search(text):
                return match.group(0)
        return "TODO"

    def _same_as(self, name: str) -> str | None:
        steps = [step for step in self.project.graph.steps.values() if step.recipe.name == name]
        return steps[0].source_from if steps else None

    def _offline(self) -> bool:
        return os.environ.get("COOKBOOK_OFFLINE", "") not in ("", "0", "false")


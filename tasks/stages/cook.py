"""``cook:<recipe>`` (``cook:host:<recipe>`` for a host build): a recipe built into its stage with the upstream
cookbook's environment — the build dependencies' stages (and, for target userspace, relibc's sysroot) as its
sysroot, the template's or the recipe's script run by bash, optional packages split off into ``stage.<name>``.
A ``binary`` rule takes the stage from a prebuilt package instead, verified against the prebuilt directory's key.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..errors import InputError, display_path
from ..hashing import hash_file
from ..model.graph import Node, Step
from ..model.recipe import Recipe
from ..toolchain import hosttools
from ..toolchain.selected import SelectedToolchain
from .stage import NONE, Dep, RecipeStage, task_name

# Environment variables a cook reads besides what the recipe and toolchain say.
COOK_ENV = ("RUSTFLAGS", "CARGO_PROFILE_RELEASE_LTO", "COOKBOOK_DEBUG", "COOKBOOK_NOSTRIP", "COOKBOOK_OFFLINE")
# Recipes built before the sysroot exists, or against none: recipe → tasks.toolchain.env.ArtifactKind value.
NO_SYSROOT = {"relibc": "relibc", "kernel": "kernel", "bootstrap": "bootstrap"}
BOOTLOADER = Node("bootloader")  # the installer copies its <boot_dir>/bootloader.efi to EFI/BOOT/BOOTAA64.EFI


class Cook(RecipeStage[Node]):
    """Build recipes into their stage with the cookbook environment (cook:<recipe>, cook:host:<recipe>)"""

    name = "cook"
    cached = True
    env = COOK_ENV
    data = ("templates/cookbook_prelude.sh.j2", "templates/cookbook_redoxer")

    @property
    def toolchain(self) -> SelectedToolchain:
        return self.ctx.shared(SelectedToolchain, self.layout)

    def items(self) -> list[Node]:
        return list(self.graph.steps)

    def describe(self, node: Node) -> str:
        step = self.graph.steps[node]
        return f"build {node} (template {step.template}, rule {step.rule}; {display_path(step.recipe.path)})"

    def deps(self, node: Node) -> list[Dep]:
        step = self.graph.steps[node]
        if self._given_file(node) is not None:
            return []
        if step.template == "remote" and self.settings.prebuilt_url and not node.host:
            return [Dep(task_name("download", node.recipe))]  # its package, from the server
        deps = [Dep(task_name("cook", dep)) for dep in step.build_deps]
        if step.recipe.name in self.graph.sources:  # its source is hashed as an input of its own
            deps.insert(0, Dep(task_name("fetch", step.recipe.name), order_only=True))
        if self._compiled_for_target(step):  # so is the toolchain, by its fingerprint
            deps.append(Dep("toolchain", order_only=True))
        if self._needs_sysroot(step):
            deps.append(Dep("relibc"))
        return deps

    def inputs(self, node: Node) -> dict[str, str]:
        step = self.graph.steps[node]
        components = {"recipe": step.recipe.digest, "template": step.template, "target": self.layout.triple(node),
                      # what its script may read beside recipe.toml, and beside the recipe whose source it builds
                      "recipe-files": step.recipe.files_digest()}
        if step.source_from is not None:
            components["source-recipe-files"] = self.graph.sources[step.source_from].files_digest()
        if (given := self._given_file(node)) is not None:
            components["bootloader"] = hash_file(given) if given.is_file() else NONE
        elif step.builds_from_source:
            source = self.ctx.project.source_dir(step)
            components["source"] = self.ctx.trees.hash(source).digest if source.is_dir() else NONE
        elif step.template == "remote":
            package, key = self.layout.prebuilt_package(node.recipe), self.layout.prebuilt_key
            components["prebuilt"] = hash_file(package) if package.is_file() else NONE
            components["prebuilt-key"] = hash_file(key) if key.is_file() else NONE  # what it is verified with
        if self._compiled_for_target(step) and given is None:
            components["toolchain"] = self.toolchain.fingerprint
        return components

    def outputs(self, node: Node) -> list[Path]:
        recipe = self.graph.steps[node].recipe
        return [self.layout.stage(node), *(self.layout.stage(node, name) for name in recipe.optional_names)]

    def work_dirs(self, node: Node) -> list[Path]:
        return [self.layout.cook_dir(node)]  # its build tree, cargo's target directory and its sysroot

    def stamp_sources(self, node: Node) -> list[Recipe]:
        return [self.graph.steps[node].recipe]

    def run(self, node: Node) -> None:
        from ..cookbook.cook import CookRequest, cook
        from ..cookbook.paths import CookPaths
        from ..cookbook.script import ScriptOptions, offline
        step = self.graph.steps[node]
        if (given := self._given_file(node)) is not None:
            return self._bootloader_stage(given, self.layout.stage(node))
        deps = [self.layout.stage(dep) for dep in step.build_deps if not dep.host]
        host_deps = [self.layout.stage(dep) for dep in step.build_deps if dep.host]
        paths = CookPaths(recipe=step.recipe.dir, source=self.ctx.project.source_dir(step),
                          target=self.layout.cook_dir(node), root=self.settings.root,
                          log=self.layout.log(task_name("cook", node)), cargo_target=self._cargo_target(step))
        cargo = self._cargo(step)
        if self._compiled_for_target(step):
            cargo = cargo.with_path([hosttools.ensure(name, self.settings.build, log=paths.log)
                                     for name in hosttools.COOKBOOK])
        rustc = self._rustc_cache(cargo, paths.log)
        if rustc is not None:
            cargo = cargo.with_wrapper(rustc.wrapper_env())
        cook(step.recipe, paths, remote=self._prebuilt_stage, request=CookRequest(
            cargo=cargo,
            options=ScriptOptions(target=self.layout.triple(node), offline=offline(), jobs=os.cpu_count() or 1),
            dependency_stages=[*deps, self.layout.sysroot] if self._needs_sysroot(step) else deps,
            host_dependency_stages=host_deps, template=step.template))
        if rustc is not None:
            rustc.count(task_name("cook", node))

    def _rustc_cache(self, cargo, log: Path):
        """sccache for this cook's compilations (``cache_rustc=yes``), when the build can be wrapped."""
        from ..cache.rustc import RustcCache
        settings = self.settings
        if settings.cache is None or settings.cache_rustc != "yes":
            return None
        sccache = hosttools.ensure("sccache", settings.build, log=log) / "sccache"
        rustc = RustcCache(sccache, settings.cache, settings.build, settings.cache_upload == "yes")
        return rustc if rustc.wraps(cargo.set.get("RUSTFLAGS", "")) else None

    def _cargo_target(self, step: Step) -> Path | None:
        """For a recipe that builds another's source (``same_as``), that recipe's cargo target directory."""
        from ..cookbook.paths import cargo_target_dir
        if step.source_from is None:
            return None
        return cargo_target_dir(self.layout.cook_dir(Node(step.source_from, host=step.node.host)))

    def _given_file(self, node: Node) -> Path | None:
        """The bootloader file the settings give (``bootloader=``), which replaces whatever the recipe builds."""
        return self.settings.bootloader if node == BOOTLOADER else None

    def _bootloader_stage(self, efi: Path, stage: Path) -> None:
        from ..atomic import atomic_path
        if not efi.is_file():
            raise InputError("no such UEFI bootloader file", path=efi, key="bootloader")
        with atomic_path(stage, directory=True) as partial:
            (partial / self.settings.boot_dir).mkdir(parents=True)
            shutil.copyfile(efi, partial / self.settings.boot_dir / "bootloader.efi")
            os.chmod(partial / self.settings.boot_dir / "bootloader.efi", 0o644)  # packaged modes: not the umask's

    def _compiled_for_target(self, step: Step) -> bool:
        return not step.node.host and step.builds_from_source

    def _needs_sysroot(self, step: Step) -> bool:
        """Target userspace builds link against relibc's sysroot; host builds use the host's libc."""
        return not (step.node.host or self.toolchain.host_only or step.node.recipe in NO_SYSROOT
                    or not step.builds_from_source)

    def _cargo(self, step: Step):
        from ..toolchain.env import SPEC, ArtifactKind, host_build, target_build
        if step.node.host or self.toolchain.host_only:
            return host_build(None if self.toolchain.host_only else self.toolchain.verified)
        kind = ArtifactKind(NO_SYSROOT.get(step.node.recipe, ArtifactKind.USERSPACE))
        spec = self.toolchain.specs()[SPEC[kind]]
        return target_build(self.toolchain.verified, kind, spec=spec, sysroot=self.layout.sysroot)

    def _prebuilt_stage(self, name: str, stage: Path) -> None:
        """The stage of a prebuilt package: its pkgar verified against the prebuilt directory's key, extracted."""
        from ..formats import pkgar, pkgkeys
        archive, key = self.layout.prebuilt_package(name), self.layout.prebuilt_key
        for path in (archive, key):
            if not path.is_file():
                if not path.is_relative_to(self.settings.prebuilt_dir):  # the key the tree pins (prebuilt_url=)
                    raise InputError(f"{name} is taken prebuilt from {self.settings.prebuilt_url}, but no key of "
                                     "the server is pinned here: put its id_ed25519.pub.toml there", path=path)
                raise InputError(f"{name} is taken prebuilt (rule \"binary\"), but this file is missing: put the "
                                 f"package server's {path.relative_to(self.settings.prebuilt_dir)} there, or choose "
                                 f"another directory with prebuilt=DIR", path=path)
        pkgar.extract(archive, pkgkeys.load_public_key(key), stage)

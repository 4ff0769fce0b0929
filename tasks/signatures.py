"""What each task's output depends on: its input signature, and the outputs it records.

A signature names its components (``recipe``, ``source``, ``dep:cook:relibc``, ``toolchain``, ``env:RUSTFLAGS``,
``code``, …) so ``doit explain`` can say which one changed. Dependencies enter by their recorded *output* hash:
a rebuild that comes out byte-identical changes nothing downstream (early cutoff). Knows nothing of doit.
"""
from __future__ import annotations

import functools
from pathlib import Path

from .build import INITFS_SOURCES, Builder
from .engine import Engine, Signature, StampContext, env_components
from .engine.evidence import Spec
from .graph import Node
from .hashing import hash_file, hash_value
from .model.recipe import GitSource, Recipe, TarSource
from .settings import PROJECT_DIR

# Environment variables a cook reads besides what the recipe and toolchain say (an explicit allow-list).
COOK_ENV = ("RUSTFLAGS", "CARGO_PROFILE_RELEASE_LTO", "COOKBOOK_DEBUG", "COOKBOOK_NOSTRIP", "COOKBOOK_OFFLINE")
# Every variable a signature reads, directly or through a path or command (the no-op evidence compares them).
READ_ENV = (*COOK_ENV, "RUSTC", "SOURCE_DATE_EPOCH", "HOME", "RUSTUP_HOME", "RUSTUP_TOOLCHAIN", "CARGO_HOME",
            "XDG_CACHE_HOME", "REDOX_HOST_TOOLS")
NONE = "(none)"
# The modules that implement each task kind (by name: packages re-export functions under the same names).
IMPLEMENTATION = {
    "fetch": ("cookbook.fetch", "cookbook.git", "cookbook.archive"),
    "cook": ("cookbook.cook", "cookbook.script", "build"),
    "pkg": ("formats.pkgar", "formats.repo", "build"),
    "toolchain": ("build", "toolchain.specs", "toolchain.pin"),
    "relibc": ("cookbook.relibc", "build"),
    "initfs": ("formats.initfs", "initfs_tree", "formats.pkgar", "formats.repo", "build"),
    "image": ("installer", "formats.gpt", "formats.redoxfs", "backups", "hosttools", "build"),
    "qcow2": ("qcow2_image", "backups", "build"),
    "host-tools": ("hosttools", "build"),
}
INITFS_TEMPLATES = PROJECT_DIR / "tasks" / "templates" / "initfs"
STAMP_TEMPLATES = PROJECT_DIR / "tasks" / "templates" / "stamps"


class TaskInputs:
    def __init__(self, builder: Builder, engine: Engine):
        self.builder = builder
        self.engine = engine
        self.graph = builder.project.graph

    # --- per task kind ---------------------------------------------------------------------------------------

    def fetch(self, name: str) -> Signature:
        recipe = self.graph.sources[name]
        components = {
            "source-table": hash_value(recipe.source.model_dump(mode="json") if recipe.source else None),
            "patches": self._patches(recipe),
            "code": self._code("fetch"),
        }
        if (other := self.builder.same_as(name)) is not None:
            components[f"dep:fetch:{other}"] = self._output(f"fetch:{other}")
        return Signature(components)

    def cook(self, node: Node) -> Signature:
        step = self.graph.steps[node]
        components = {
            "recipe": step.recipe.digest,
            "template": step.template,
            "target": self.builder.triple(node),
            "code": self._code("cook"),
            **env_components(COOK_ENV),
        }
        if step.builds_from_source:
            source = self.builder.cook_source(node)
            components["source"] = self.engine.trees.hash(source).digest if source.is_dir() else NONE
        elif step.template == "remote":
            package = self.builder.prebuilt_package(node.recipe)
            components["prebuilt"] = hash_file(package) if package.is_file() else NONE
        for dep in step.build_deps:
            components[f"dep:cook:{dep}"] = self._output(f"cook:{dep}")
        if self.builder.needs_sysroot(node):
            components["dep:relibc"] = self._output("relibc")
        if not node.host and step.builds_from_source:
            components["toolchain"] = self.builder.fingerprint()
        return Signature(components)

    def pkg(self, node: Node) -> Signature:
        step = self.graph.steps[node]
        return Signature({
            "dep:cook": self._output(f"cook:{node}"),
            "recipe": step.recipe.digest,
            "depends": hash_value([str(dep) for dep in step.runtime_deps]),
            "key": self.key_hash,
            "target": self.builder.settings.target,
            "code": self._code("pkg"),
        })

    def toolchain(self) -> Signature:
        return Signature({"toolchain": self.builder.fingerprint(), "code": self._code("toolchain")})

    def relibc(self) -> Signature:
        return Signature({"dep:cook:relibc": self._output("cook:relibc"), "toolchain": self.builder.fingerprint(),
                          "code": self._code("relibc")})

    def initfs(self) -> Signature:
        settings = self.builder.settings
        components = {f"dep:cook:{name}": self._output(f"cook:{name}") for name in INITFS_SOURCES
                      if Node(name) in self.graph.steps}
        return Signature({
            **components,
            "templates": hash_value([hash_file(path) for path in sorted(INITFS_TEMPLATES.rglob("*"))
                                     if path.is_file()]),
            "settings": hash_value([settings.target, settings.board, settings.rust_log, settings.initfs_max_size,
                                    settings.boot_dir, settings.toolchain]),
            "archiver": hash_file(settings.initfs_archiver) if settings.initfs_archiver else "built-in",
            # checked against the writer's layout: an edit must re-run the check even when the binaries do not change
            "format": hash_value([hash_file(path) for path in self.builder.initfs_format_files()]),
            "stamp": hash_value(self.builder.build_stamp().model_dump()),
            "toolchain": self.builder.fingerprint(),  # its strip
            "key": self.key_hash,
            "code": self._code("initfs"),
        })

    def image(self) -> Signature:
        settings = self.builder.settings
        packages = {f"dep:pkg:{step.node.recipe}": self._output(f"pkg:{step.node.recipe}")
                    for step in self.graph.image_steps() if not step.node.host}
        return Signature({
            **packages,
            "dep:initfs": self._output("initfs"),
            "dep:host-tools": self._output("host-tools"),
            "config": hash_value([[str(path), hash_file(path)] for path in self.builder.project.config.sources]),
            "settings": hash_value([settings.target, settings.boot_dir]),
            "stamp": hash_value(self.builder.build_stamp().model_dump()),
            "templates": hash_value([hash_file(path) for path in sorted(STAMP_TEMPLATES.glob("*.j2"))]),
            "key": self.key_hash,
            "code": self._code("image"),
        })

    def host_tools(self) -> Signature:
        from .hosttools import PINNED
        components = {"code": self._code("host-tools")}
        for name in self.builder.HOST_TOOLS:
            source = self.builder.host_tool_source(name)
            components[name] = self.engine.trees.hash(source).digest if source else \
                f"{PINNED[name].crate} {PINNED[name].version}"
        return Signature(components)

    def qcow2(self) -> Signature:
        return Signature({"dep:image": self._output("image"), "code": self._code("qcow2")})

    def evidence_spec(self) -> Spec:
        """What the signatures read besides the recipe files, ``config/`` and this project's code (which the no-op
        evidence observes anyway): the directories of the recipes in the graph (sources, patches), config files
        included from elsewhere, the package key, the toolchain, the prebuilt packages, the initfs archiver,
        environment variables and the commands of :meth:`Builder.probes`. Call it once the graph is loaded."""
        settings = self.builder.settings
        self.key_hash  # noqa: B018  (made now if missing: observed as the signatures will find it)
        files = [*self.builder.project.config.sources, self._key_file, *self.builder.toolchain_files()]
        if settings.initfs_archiver is not None:
            files.append(settings.initfs_archiver)
        zones = [*self.builder.project.index.loaded_dirs(), settings.prebuilt_dir]  # sources, patches, scripts
        return Spec(zones=[str(path) for path in zones], files=[str(path) for path in files], env=list(READ_ENV),
                    probes=self.builder.probes())

    # --- outputs and stamps ------------------------------------------------------------------------------------

    def cook_outputs(self, node: Node) -> list[Path]:
        return [self.builder.stage_dir(node),
                *(self.builder.stage_dir(node, name) for name in self.graph.steps[node].recipe.optional_names)]

    def pkg_outputs(self, node: Node) -> list[Path]:
        directory = self.builder.repo / self.builder.settings.target
        names = [node.recipe, *(f"{node.recipe}.{name}" for name in self.graph.steps[node].recipe.optional_names)]
        candidates = [directory / f"{name}{suffix}" for name in names for suffix in (".toml", ".pkgar")]
        return [path for path in candidates if path.exists()]

    def stamp_context(self, recipes: list[Recipe]) -> StampContext:
        sources = {recipe.name: recipe.dir / "source" for recipe in recipes if (recipe.dir / "source").is_dir()}
        return StampContext(main_repo=self.builder.settings.root, sources=sources,
                            toolchain=self.builder.fingerprint())

    @functools.cached_property
    def key_hash(self) -> str:
        """The package signing key. Created here, not by the first pkg action: a signature must not change between
        one build and the next."""
        public = self._key_file
        if not public.exists():
            from .formats import pkgkeys
            pkgkeys.ensure_keys(public.parent)
        return hash_file(public)

    @property
    def _key_file(self) -> Path:
        return self.builder.cookbook / "build" / "id_ed25519.pub.toml"

    # --- helpers ---------------------------------------------------------------------------------------------


    def _output(self, task: str) -> str:
        return self.engine.state.output_hash(task) or NONE

    @staticmethod
    def _patches(recipe: Recipe) -> str:
        patches = recipe.source.patches if isinstance(recipe.source, (GitSource, TarSource)) else []
        return hash_value([[patch, hash_file(recipe.dir / patch) if (recipe.dir / patch).is_file() else NONE]
                           for patch in patches])

    @staticmethod
    @functools.cache
    def _code(kind: str) -> str:
        """The version of a task kind's own implementation: editing it re-runs those tasks."""
        files = [PROJECT_DIR / "tasks" / f"{name.replace('.', '/')}.py" for name in IMPLEMENTATION[kind]]
        if kind == "cook":
            files += [PROJECT_DIR / "tasks/templates" / name for name in ("cookbook_prelude.sh.j2", "cookbook_redoxer")]
        return hash_value([hash_file(path) for path in files])

"""What each task does, for one project: fetch, cook and package recipes; the toolchain; the relibc sysroot.

Knows nothing of doit: ``tasks.stages`` declares the tasks and calls these methods as their actions. Paths:
everything a build writes is under the build directory (``build/`` by default):

``build/<triple>/recipes/<name>/``  a recipe's build dir, stage and sysroot (upstream: ``<recipe>/target/<T>``)
``build/cookbook/``                 the local package repository the installer reads (``repo/<T>``, ``build/`` keys)
``build/<arch>/initfs.img``         the initfs (its tree beside it in ``initfs/``), published as package ``initfs``
``build/<arch>/<config>.img``       the disk image of ``config/<arch>/<config>.toml``, and its ``.qcow2``
``build/logs/<task>.log``          one log per task
"""
from __future__ import annotations

import functools
import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .cookbook.paths import CookPaths
from .errors import CommandError, InputError
from .graph import Node, Step
from .hashing import hash_file, hash_text, hash_value
from .model.recipe import GitSource, Recipe, TarSource
from .process import run
from .project import Project
from .settings import PROJECT_DIR, host_triple

if TYPE_CHECKING:
    from .engine import TreeHasher
    from .formats.repo import PackageRecord
    from .initfs_tree import BuildStamp, InitfsLayout
    from .toolchain import SpecKind

# The build machinery (cookbook, toolchain, formats) is imported where it is used: a no-op build only asks the
# engine whether tasks are current and must not pay for loading what would build them.

VERSION = re.compile(r"\d+(\.\d+){1,2}")
# Recipes built before the sysroot exists, or against none.
NO_SYSROOT = {"relibc": "relibc", "kernel": "kernel"}  # recipe → toolchain.ArtifactKind value
# base-initfs's stage is what the initfs is made of: the layout's binaries under bin/ and lib/drivers/, and the
# bootstrap ELF as bootstrap. Binaries missing there are taken from base's stage (usr/bin/, usr/lib/drivers/).
# Its package holds no files: it depends on the package `initfs`, which carries the image to <boot_dir>/initfs.
INITFS_SOURCES = ("base-initfs", "base")
INITFS_PACKAGE = "initfs"
BINARY_DIRS = ("bin", "lib/drivers", "usr/bin", "usr/lib/drivers")
BOOTSTRAP = "bootstrap"
STAMP_DATE = "%Y-%m-%d %H:%M"
HEAD_COMMIT = ("rev-parse", "--short=9", "HEAD")
COMMIT_TIME = ("log", "-1", "--format=%ct")
OS_RELEASE = "/usr/lib/os-release"
ION_INITRC = ".config/ion/initrc"  # in root's home (the installer's default: /home/root; the fork's: /root)


class Builder:
    def __init__(self, project: Project, trees: TreeHasher | None = None):
        self.project = project
        self.settings = project.settings
        self.build = self.settings.build
        self.trees = trees  # the engine's tree hasher: fetch's "edited since fetched?" shares its caches

    # --- layout ----------------------------------------------------------------------------------------------

    @property
    def host_only(self) -> bool:
        """Recipes are compiled for this machine (demo and tests): no Redox toolchain is involved."""
        return self.settings.cook_target == host_triple()

    @property
    def arch_dir(self) -> Path:
        return self.build / self.settings.arch

    @property
    def sysroot(self) -> Path:
        return self.arch_dir / "sysroot"

    @property
    def cookbook(self) -> Path:
        return self.build / "cookbook"

    @property
    def repo(self) -> Path:
        return self.cookbook / "repo"

    def log(self, task: str) -> Path:
        return self.build / "logs" / f"{task.replace('/', '_')}.log"

    def triple(self, node: Node) -> str:
        return host_triple() if node.host else self.settings.cook_target

    def cook_dir(self, node: Node) -> Path:
        """Where a recipe is cooked for its triple: its build dir, sysroot, ``stage`` and ``stage.<optional>``."""
        return self.build / self.triple(node) / "recipes" / node.recipe

    def stage_dir(self, node: Node, optional: str | None = None) -> Path:
        paths = self.cook_paths(node)
        return paths.stage if optional is None else paths.optional_stage(optional)

    def source_dir(self, recipe: Recipe) -> Path:
        return recipe.dir / "source"

    def cook_source(self, node: Node) -> Path:
        """The source a recipe builds from: its own, or with ``same_as`` the other recipe's."""
        step = self.project.graph.steps[node]
        return self.source_dir(self.project.index.load(step.source_from) if step.source_from else step.recipe)

    def cook_paths(self, node: Node) -> CookPaths:
        return CookPaths(recipe=self.project.graph.steps[node].recipe.dir, source=self.cook_source(node),
                         target=self.cook_dir(node), root=self.settings.root, log=self.log(f"cook-{node}"))

    # --- toolchain -------------------------------------------------------------------------------------------

    @functools.cached_property
    def pin(self):
        from .toolchain import load_pin
        return load_pin(PROJECT_DIR / "pyproject.toml")

    @functools.cached_property
    def toolchain(self):
        from .toolchain import verify_toolchain
        return verify_toolchain(self.pin, log=self.log("toolchain"))

    def specs(self) -> dict[SpecKind, Path]:
        from .toolchain import SpecKind, spec_path
        return {kind: spec_path(self.arch_dir, kind, self.settings.arch) for kind in SpecKind}

    def prepare_toolchain(self) -> None:
        """Verify the pinned toolchain, write the pin into every rust-toolchain.toml, render the target specs."""
        from .toolchain import write_pins, write_specs
        if self.host_only:
            return
        self.toolchain  # noqa: B018  (raises with the fix command when something is missing)
        sources = [recipe.dir / "source" for recipe in self.project.graph.sources.values()]
        write_pins(self.pin, [path for path in sources if path.is_dir()])
        write_specs(self.arch_dir, self.settings.arch, self.sysroot)

    @functools.cached_property
    def _fingerprint(self) -> str:
        if self.host_only:  # builds for this machine: the host compiler is the toolchain
            return hash_text(run(self._host_compiler_argv(), capture=True))
        return self._pinned_fingerprint()

    @staticmethod
    def _host_compiler_argv() -> list[str]:
        return [os.environ.get("RUSTC", "rustc"), "-vV"]

    def probes(self) -> list[list[str]]:
        """The commands whose output signatures depend on: the tree's commit and its time (the build stamp), and
        for host builds the host compiler's version."""
        probes = [self._git_argv(*args) for args in (HEAD_COMMIT, COMMIT_TIME)]
        if self.host_only:
            probes.append(self._host_compiler_argv())
        return probes

    def _pinned_fingerprint(self) -> str:
        """The pinned toolchain's fingerprint, remembered under the build directory for as long as the toolchain's
        files (rustc, cargo, its component list, the backend library) and the target specs are unchanged: checking
        that costs a few stats, where verifying the toolchain again costs five rustup runs and hashing the backend
        library — on every no-op build."""
        from .atomic import write_atomically
        from .toolchain import fingerprint
        cache = self.build / "cache" / "toolchain-fingerprint.json"
        key = self._toolchain_key()
        if key is not None and cache.is_file():
            remembered = json.loads(cache.read_text())
            if remembered.get("key") == key:
                return remembered["fingerprint"]
        value = fingerprint(self.toolchain, self.specs().values())
        key = self._toolchain_key()  # the check may have installed the toolchain (install = true)
        if key is not None:
            write_atomically(cache, json.dumps({"key": key, "fingerprint": value}))
        return value

    def _toolchain_key(self) -> str | None:
        """What the pinned toolchain's fingerprint depends on, read without running rustup; None when its directory
        is not where rustup keeps toolchains (then the fingerprint is always computed)."""
        try:
            stats = [[str(path), info.st_size, info.st_mtime_ns, info.st_ino]
                     for path in self._toolchain_files() if (info := path.stat())]
        except FileNotFoundError:
            return None
        specs = [[path.name, hash_file(path) if path.is_file() else None] for path in self.specs().values()]
        return hash_value([self.pin.model_dump(mode="json"), stats, specs])

    def _toolchain_files(self) -> list[Path]:
        rustup_home = Path(os.environ.get("RUSTUP_HOME", Path.home() / ".rustup"))
        directory = rustup_home / "toolchains" / f"{self.pin.channel}-{host_triple()}"
        files = [directory / "bin/rustc", directory / "bin/cargo", directory / "lib/rustlib/components"]
        return files if self.pin.backend_path is None else [*files, self.pin.backend_path]

    def toolchain_files(self) -> list[Path]:
        """The files the toolchain's fingerprint is known by (none for host builds: see :meth:`probes`)."""
        return [] if self.host_only else [*self._toolchain_files(), *self.specs().values()]

    def fingerprint(self) -> str:
        """The toolchain's identity (rustc -vV, backend, target specs); computed once per build."""
        return self._fingerprint

    def needs_sysroot(self, node: Node) -> bool:
        """Target userspace builds link against relibc's sysroot; host builds use the host's libc."""
        step = self.project.graph.steps[node]
        return not (node.host or self.host_only or node.recipe in NO_SYSROOT or not step.builds_from_source)

    # --- fetch, cook, package -----------------------------------------------------------------------------------

    def fetch(self, name: str) -> None:
        from .cookbook.fetch import SourcePaths, fetch
        recipe = self.project.graph.sources[name]
        other = self.project.graph.sources.get(self.same_as(name) or "")
        result = fetch(recipe, SourcePaths.for_recipe(recipe, self.build), trees=self.trees, offline=self._offline(),
                       log=self.log(f"fetch-{name}"),
                       same_as_source=self.source_dir(other) if other is not None else None)
        if result.message:
            print(f"{name}: {result.status}: {result.message}")

    def cook(self, node: Node) -> None:
        from .cookbook.cook import CookRequest, cook
        from .cookbook.script import ScriptOptions
        step = self.project.graph.steps[node]
        deps = [self.stage_dir(dep) for dep in step.build_deps if not dep.host]
        host_deps = [self.stage_dir(dep) for dep in step.build_deps if dep.host]
        cook(step.recipe, self.cook_paths(node), remote=self._extract_prebuilt, request=CookRequest(
            cargo=self._cargo(step),
            options=ScriptOptions(target=self.triple(node), offline=self._offline(), jobs=os.cpu_count() or 1),
            dependency_stages=[*deps, self.sysroot] if self.needs_sysroot(node) else deps,
            host_dependency_stages=host_deps, template=step.template))

    def package(self, node: Node) -> None:
        """Publish the recipe's stage (and its optional packages) as signed pkgar files in the local repo."""
        from .formats import pkgkeys
        from .formats.repo import publish
        step = self.project.graph.steps[node]
        key = pkgkeys.ensure_keys(self.cookbook / "build")
        stage = self.stage_dir(node)
        recipe = step.recipe
        depends = [str(dep) for dep in step.runtime_deps]
        if recipe.name == INITFS_SOURCES[0]:
            depends.append(INITFS_PACKAGE)  # its stage goes into the initfs, not into the image
        meta = recipe.name == INITFS_SOURCES[0] or (step.template == "none" and not any(stage.rglob("*")))
        publish(self.repo, self._record(step, recipe.name, depends, meta), None if meta else stage, key)
        for optional in recipe.file.optional_packages:
            opt_deps = [f"{recipe.name}{dep}" if dep.startswith(".") else dep for dep in optional.dependencies]
            publish(self.repo, self._record(step, f"{recipe.name}.{optional.name}", [recipe.name, *opt_deps], False),
                    self.stage_dir(node, optional.name), key)

    def index_repo(self) -> None:
        from .formats.repo import write_index
        target_dir = self.repo / self.settings.target
        target_dir.mkdir(parents=True, exist_ok=True)
        write_index(target_dir)

    def relibc_sysroot(self) -> None:
        """``build/<arch>/sysroot``: relibc's libc.a and CRT objects, merged as the fork does."""
        from .cookbook.relibc import assemble_relibc_sysroot
        stage = self.stage_dir(Node("relibc"))
        tools = self.toolchain
        assemble_relibc_sysroot(stage, self.sysroot, ar=str(tools.tool("llvm-ar")),
                                rust_lld=str(tools.tool("rust-lld")), log=self.log("relibc"))

    # --- initfs, disk image, qcow2 ---------------------------------------------------------------------------

    @property
    def initfs_image(self) -> Path:
        return self.arch_dir / "initfs.img"

    @property
    def disk_image(self) -> Path:
        """The disk image the ``image`` task assembles for the selected config: ``build/<arch>/<config name>.img``."""
        return self.arch_dir / f"{self.settings.config_file.stem}.img"

    @property
    def qcow2_image(self) -> Path:
        return self.disk_image.with_suffix(".qcow2")

    def initfs_package_files(self) -> list[Path]:
        directory = self.repo / self.settings.target
        return [path for path in (directory / f"{INITFS_PACKAGE}.pkgar", directory / f"{INITFS_PACKAGE}.toml")
                if path.exists()]

    def initfs(self) -> None:
        """Assemble the initfs tree per the layout, archive it with the bootstrap, publish it as package `initfs`."""
        from .formats import pkgkeys
        from .formats.initfs import write_initfs
        from .formats.repo import PackageRecord, publish
        from .initfs_tree import assemble_tree, load_layout
        bootstrap = self._bootstrap()
        layout = load_layout(self.settings.target, self.settings.board)
        stamp = self.build_stamp()
        tree = assemble_tree(self.arch_dir / "initfs", layout, self._initfs_binaries(layout), manifest=stamp,
                             rust_log=self.settings.rust_log, strip=self._strip_tool(), log=self.log("initfs"))
        if self.settings.initfs_archiver is None:
            self._check_bootstrap_reads_our_format()
            write_initfs(tree.root, self.initfs_image, bootstrap=bootstrap,
                         max_size=int(self.settings.initfs_max_size), mtime=self._source_date_epoch())
        else:
            self._archive_with_tool(tree.root, bootstrap)
        stage = self.arch_dir / "initfs-package"
        shutil.rmtree(stage, ignore_errors=True)
        (stage / self.settings.boot_dir).mkdir(parents=True)
        shutil.copyfile(self.initfs_image, stage / self.settings.boot_dir / "initfs")
        os.chmod(stage / self.settings.boot_dir / "initfs", 0o644)  # packaged modes must not depend on the umask
        record = PackageRecord(name=INITFS_PACKAGE, version=stamp.label, target=self.settings.target)
        publish(self.repo, record, stage, pkgkeys.ensure_keys(self.cookbook / "build"))

    def _check_bootstrap_reads_our_format(self) -> None:
        """The bootstrap parses the initfs with the initfs crate of the base source it is built from; when that crate
        declares another layout than our writer's (the fork's history has two), stop before writing an image it
        would misread, and say to use its own ``redox-initfs-ar`` (``initfs_archiver=``)."""
        from .formats.initfs import check_bootstrap_format
        for types_rs in self.initfs_format_files():
            check_bootstrap_format(types_rs)

    def initfs_format_files(self) -> list[Path]:
        """The initfs crates' layout declarations in the sources the initfs is made from (``initfs/src/types.rs``)."""
        return [path for name in INITFS_SOURCES if Node(name) in self.project.graph.steps
                if (path := self.cook_source(Node(name)) / "initfs" / "src" / "types.rs").is_file()]

    def _archive_with_tool(self, tree: Path, bootstrap: Path) -> None:
        """The fork's own ``redox-initfs-ar`` instead of ours: same layout, its own header time. Its output is read
        back before it replaces the previous initfs, so a tool that writes another revision of the format (or no
        bootstrap entry) is refused here rather than at boot."""
        from .formats.initfs import read_initfs
        partial = self.initfs_image.with_name(self.initfs_image.name + ".tool.partial")
        partial.unlink(missing_ok=True)
        run([self.settings.initfs_archiver, "--max-size", str(int(self.settings.initfs_max_size)), tree, bootstrap,
             "-o", partial], log=self.log("initfs"))
        image = read_initfs(partial)
        if not image.header.has_bootstrap or image.header.bootstrap_entry == 0:
            raise InputError("the initfs has no bootstrap entry point: the kernel would jump to it and crash",
                             path=partial, key="bootstrap_entry")
        os.replace(partial, self.initfs_image)

    # --- host tools ---------------------------------------------------------------------------------------------

    HOST_TOOLS = ("redox_installer", "redoxfs")

    def host_tool_source(self, name: str) -> Path | None:
        """The tree's own source of a host tool (its recipe's ``source/``, when the recipe is in the graph and the
        source has been fetched); None: the pinned release from crates.io."""
        step = self.project.graph.steps.get(Node(name))
        source = self.cook_source(Node(name)) if step is not None else None
        return source if source is not None and (source / "Cargo.toml").is_file() else None

    def host_tool_bins(self) -> list[Path]:
        from . import hosttools
        bins = []
        for name in self.HOST_TOOLS:
            directory = self.build / "host" / name / "bin" if self.host_tool_source(name) else \
                hosttools.install_root(name) / "bin"
            bins += [directory / binary for binary in hosttools.PINNED[name].binaries]
        return bins

    def host_tools(self) -> None:
        """The installer and redoxfs for this machine: built from the tree's source when it has it, else the pinned
        releases (cached per user)."""
        from . import hosttools
        for name in self.HOST_TOOLS:
            if (source := self.host_tool_source(name)) is not None:
                hosttools.install_from_source(name, source, self.build)
            else:
                hosttools.ensure(name, self.build)

    def image(self) -> None:
        """``build/<arch>/<config>.img`` from the local repository with the pinned installer; the last one kept."""
        from .installer import ImageRequest, build_image
        self.index_repo()
        build_image(ImageRequest(cookbook=self.cookbook, config=self.stamped_config(), output=self.disk_image,
                                 target=self.settings.target, backups=self.settings.backups,
                                 boot_dir=self.settings.boot_dir), self.build, log=self.log("image"))

    def stamped_config(self) -> Path:
        """The selected config plus the build's text stamps as ``[[files]]``: ``/usr/lib/os-release`` with BUILD_ID
        (the pinned installer 0.2.40 does not add it) and the first line of root's ion initrc, which the fork's
        developers see at login. Rendered from ``tasks/templates/stamps/`` with the build stamp; the config's own
        content of those files is kept. Written beside the image; the installer reads it (``include`` of the
        original)."""
        import tomli_w

        from .templating import render
        stamp, files = self.build_stamp(), {entry.path: entry.data for entry in self.project.config.files}
        root = self.project.config.users.get("root")
        initrc_path = f"{((root.home if root else None) or '/home/root').rstrip('/')}/{ION_INITRC}"
        stamped = [
            {"path": OS_RELEASE, "data": render("stamps/os-release.j2", stamp=stamp,
                                                os_release=files.get(OS_RELEASE, ""))},
            {"path": initrc_path, "data": render("stamps/ion-initrc.j2", stamp=stamp,
                                                 initrc=files.get(initrc_path, "")), "mode": 0o644},
        ]
        path = self.disk_image.with_suffix(".toml")
        text = tomli_w.dumps({"include": [str(self.settings.config_file)], "files": stamped})
        from .atomic import write_text_if_changed
        write_text_if_changed(path, text)
        return path

    def qcow2(self) -> None:
        from .qcow2_image import convert_qcow2
        convert_qcow2(self.disk_image, self.qcow2_image, backups=self.settings.backups, log=self.log("qcow2"))

    @functools.cached_property
    def _build_stamp(self) -> BuildStamp:
        from .initfs_tree import BuildStamp
        commit = self._git(*HEAD_COMMIT)
        date = time.strftime(STAMP_DATE, time.gmtime(self._source_date_epoch()))
        return BuildStamp(commit=commit or "unversioned", date=date)

    def build_stamp(self) -> BuildStamp:
        """init.rc's stamp: the tree's commit and the source date. Uncommitted edits are not part of it (they would
        rebuild the initfs for an edit of any recipe); the JSON stamp beside each artifact records every tree's
        dirty flag."""
        return self._build_stamp

    # --- helpers -------------------------------------------------------------------------------------------------

    def _cargo(self, step: Step):
        from .toolchain import ArtifactKind, SpecKind, host_build, target_build
        if step.node.host or self.host_only:
            return host_build(None if self.host_only else self.toolchain)
        kind = ArtifactKind(NO_SYSROOT.get(step.node.recipe, ArtifactKind.USERSPACE))
        spec = self.specs()[SpecKind.KERNEL if kind is ArtifactKind.KERNEL else SpecKind.USERSPACE]
        return target_build(self.toolchain, kind, spec=spec, sysroot=self.sysroot)

    def prebuilt_package(self, name: str) -> Path:
        """The package file a ``binary`` rule takes, in the prebuilt directory (the package server's layout)."""
        return self.settings.prebuilt_dir / self.settings.target / f"{name}.pkgar"

    def _extract_prebuilt(self, name: str, stage: Path) -> None:
        """The stage of a prebuilt package: its pkgar verified against the prebuilt directory's key, extracted."""
        from .formats import pkgar, pkgkeys
        archive = self.prebuilt_package(name)
        key = self.settings.prebuilt_dir / "id_ed25519.pub.toml"
        for path in (archive, key):
            if not path.is_file():
                raise InputError(f"{name} is taken prebuilt (rule \"binary\"), but this file is missing: put the "
                                 f"package server's {path.relative_to(self.settings.prebuilt_dir)} there, or choose "
                                 f"another directory with prebuilt=DIR", path=path)
        pkgar.extract(archive, pkgkeys.load_public_key(key), stage)

    def _record(self, step: Step, name: str, depends: list[str], meta: bool) -> PackageRecord:
        from .formats.repo import PackageRecord
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

    def same_as(self, name: str) -> str | None:
        """The recipe whose source ``name`` uses (``same_as``), if any."""
        return self.project.graph.same_as.get(name)

    def _offline(self) -> bool:
        return os.environ.get("COOKBOOK_OFFLINE", "") not in ("", "0", "false")

    def _initfs_binaries(self, layout: InitfsLayout) -> dict[str, Path]:
        steps = self.project.graph.steps
        stages = [self.cook_paths(Node(name)).stage for name in INITFS_SOURCES if Node(name) in steps]
        found = {}
        for name in layout.binaries:
            candidates = (stage / directory / name for stage in stages for directory in BINARY_DIRS)
            if (path := next((path for path in candidates if path.is_file()), None)) is not None:
                found[name] = path
        return found  # assemble_tree names the missing ones

    def _bootstrap(self) -> Path:
        source = INITFS_SOURCES[0]
        if Node(source) not in self.project.graph.steps:
            raise InputError(f"the initfs needs recipe {source!r} (the bootstrap and the early daemons) in the "
                             f"config's packages", path=self.settings.config_file, key="packages")
        bootstrap = self.cook_paths(Node(source)).stage / BOOTSTRAP
        if not bootstrap.is_file():
            raise InputError(f"missing: recipe {source} must stage the bootstrap ELF here", path=bootstrap)
        return bootstrap

    def _strip_tool(self) -> Path | None:
        """The toolchain's llvm-strip; for host builds the system's strip (none: binaries are copied as they are)."""
        if not self.host_only:
            return self.toolchain.tool("llvm-strip")
        system = shutil.which("strip")
        return Path(system) if system else None

    def _git(self, *args: str) -> str | None:
        """Output of a git command in the tree; None when the tree is not a git work tree."""
        try:
            return run(self._git_argv(*args), capture=True).strip()
        except CommandError:
            return None

    def _git_argv(self, *args: str) -> list[str]:
        return ["git", "--no-optional-locks", "-C", str(self.settings.root), *args]

    def _source_date_epoch(self) -> int:
        """``SOURCE_DATE_EPOCH``, else the time of the tree's last commit, else now: the same inputs make the
        same initfs bytes."""
        if (epoch := os.environ.get("SOURCE_DATE_EPOCH")) is not None:
            if not epoch.isdigit():
                raise InputError(f"{epoch!r} is not a number of seconds", key="SOURCE_DATE_EPOCH")
            return int(epoch)
        committed = self._git(*COMMIT_TIME)
        return int(committed) if committed else int(time.time())

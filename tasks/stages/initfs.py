"""``initfs``: the initfs tree assembled from the stages of base-initfs and base, then archived with the bootstrap
(the built-in writer, or the fork's ``redox-initfs-ar``) and published as package ``initfs``.

Its ``bin/`` and ``lib/drivers/`` are base-initfs's stage's own when that stage has them, as the fork's initfs
script lays them out; else the layout of the target and board (``tasks/templates/initfs/layout.toml``) names the
binaries to take. Its ``etc/`` is the base source's own ``init.rc``, ``<target>/init_drivers.rc`` and
``drivers/initfs.toml`` where the source has them — the users' files, with only init.rc's stamp comment (line 2)
and, with ``rust_log=``, its RUST_LOG export rewritten — else rendered from the project's templates."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..errors import InputError
from ..formats.pkgkeys import public_key_digest
from ..hashing import hash_file, hash_value
from ..model.graph import Node
from ..model.recipe import Recipe
from ..revision import TreeRevision
from ..toolchain.selected import SelectedToolchain
from .names import INITFS_PACKAGE, INITFS_SOURCES
from .stage import Dep, Stage, task_name

BINARY_DIRS = ("bin", "lib/drivers", "usr/bin", "usr/lib/drivers")
BOOTSTRAP = "bootstrap"


class Initfs(Stage):
    """Pack the initfs: bootstrap, daemons, init.rc; size and header checked"""

    name = "initfs"
    cached = True
    data = ("templates/initfs",)

    @property
    def sources(self) -> list[Node]:
        """The recipes in the graph whose stages the initfs is made of, base-initfs first."""
        return [node for name in INITFS_SOURCES if (node := Node(name)) in self.graph.steps]

    @property
    def revision(self) -> TreeRevision:
        return self.ctx.shared(TreeRevision, self.settings.root)

    def recipes(self) -> list[str]:
        """base-initfs's and base's: their sources' ``init.rc``, ``initfs.toml`` and the initfs crate's layout."""
        return self.with_sources([node.recipe for node in self.sources])

    def deps(self) -> list[Dep]:
        return [Dep("base", order_only=True), *(Dep(task_name("cook", node)) for node in self.sources)]

    def inputs(self) -> dict[str, str]:
        settings = self.settings
        return {
            "settings": hash_value([settings.target, settings.board, settings.rust_log, settings.initfs_max_size,
                                    settings.boot_dir, settings.toolchain]),
            "archiver": hash_file(settings.initfs_archiver) if settings.initfs_archiver else "built-in",
            # checked against the writer's layout: an edit must re-run the check even when the binaries do not change
            "format": hash_value([hash_file(path) for path in self._format_files()]),
            "stamp": hash_value(self.revision.stamp.identity()),
            "user-files": hash_value([[place, hash_file(path)] for place, path in (self._user_files() or {}).items()]),
            "toolchain": self.ctx.shared(SelectedToolchain, self.layout).fingerprint,  # its strip
            "key": self.ctx.shared(public_key_digest, self.layout.key_dir),
        }

    def outputs(self) -> list[Path]:
        return [self.layout.initfs_image, *self.layout.package_files(INITFS_PACKAGE)]

    def possible_outputs(self) -> list[Path]:
        return [self.layout.initfs_image, *self.layout.package_paths(INITFS_PACKAGE)]

    def work_dirs(self) -> list[Path]:
        return [self.layout.initfs_tree, self.layout.initfs_package_stage]

    def stamp_sources(self) -> list[Recipe]:
        return [self.graph.steps[node].recipe for node in self.sources]

    def run(self) -> None:
        from ..initfs.archiver import archive_with_tool
        from ..initfs.format import write_initfs
        from ..initfs.tree import assemble_tree, load_layout, stage_programs, template_etc, write_tree
        settings, image = self.settings, self.layout.initfs_image
        bootstrap = self._bootstrap()
        layout = load_layout(settings.target, settings.board)
        strip, log, etc = self.ctx.shared(SelectedToolchain, self.layout).strip_tool(), self.layout.log("initfs"), \
            self._user_etc()
        # base-initfs's stage, when it lays out bin/ and lib/drivers/ itself, is taken as it is; else the layout's
        # binaries are picked by name from the stages.
        if (programs := stage_programs(self.layout.stage(Node(INITFS_SOURCES[0])))) is not None:
            tree = write_tree(self.layout.initfs_tree, programs, strip=strip, log=log,
                              etc=etc or template_etc(layout, self.revision.stamp, settings.rust_log))
        else:
            tree = assemble_tree(self.layout.initfs_tree, layout, self._binaries(layout.binaries), strip=strip,
                                 manifest=self.revision.stamp, rust_log=settings.rust_log, etc=etc, log=log)
        if settings.initfs_archiver is None:
            self._check_bootstrap_reads_our_format()
            write_initfs(tree.root, image, bootstrap=bootstrap, max_size=int(settings.initfs_max_size),
                         mtime=self.revision.source_date_epoch)
        else:
            archive_with_tool(settings.initfs_archiver, tree.root, bootstrap, image,
                              max_size=int(settings.initfs_max_size), log=self.layout.log("initfs"))
        self._publish(image)

    def _publish(self, image: Path) -> None:
        from ..formats import pkgkeys
        from ..formats.repo import PackageRecord, publish
        stage = self.layout.initfs_package_stage
        shutil.rmtree(stage, ignore_errors=True)
        (stage / self.settings.boot_dir).mkdir(parents=True)
        shutil.copyfile(image, stage / self.settings.boot_dir / "initfs")
        os.chmod(stage / self.settings.boot_dir / "initfs", 0o644)  # packaged modes must not depend on the umask
        record = PackageRecord(name=INITFS_PACKAGE, version=self.revision.stamp.label, target=self.settings.target)
        publish(self.layout.repo, record, stage, pkgkeys.ensure_keys(self.layout.key_dir))

    def _user_files(self) -> dict[str, Path] | None:
        """The users' own etc/ files in the first source the initfs is made from that has them (see above)."""
        from ..initfs.tree import user_files
        for node in self.sources:
            if (files := user_files(self.ctx.project.source_dir(self.graph.steps[node]),
                                    self.settings.target)) is not None:
                return files
        return None

    def _user_etc(self) -> dict[str, str] | None:
        from ..initfs.tree import stamped_init_rc
        if (files := self._user_files()) is None:
            return None
        etc = {place: path.read_text(encoding="utf-8") for place, path in files.items()}
        etc["etc/init.rc"] = stamped_init_rc(etc["etc/init.rc"], self.revision.stamp, self.settings.rust_log,
                                             files["etc/init.rc"])
        return etc

    def _check_bootstrap_reads_our_format(self) -> None:
        """The bootstrap parses the initfs with the initfs crate of the base source it is built from; when that crate
        declares another layout than our writer's (the fork's history has two), stop before writing an image it
        would misread, and say to use its own ``redox-initfs-ar`` (``initfs_archiver=``)."""
        from ..initfs.format import check_bootstrap_format
        for types_rs in self._format_files():
            check_bootstrap_format(types_rs)

    def _format_files(self) -> list[Path]:
        """The initfs crates' layout declarations in the sources the initfs is made from (``initfs/src/types.rs``)."""
        return [path for node in self.sources
                if (path := self.ctx.project.source_dir(self.graph.steps[node]) / "initfs/src/types.rs").is_file()]

    def _binaries(self, names: tuple[str, ...]) -> dict[str, Path]:
        stages = [self.layout.stage(node) for node in self.sources]
        found = {}
        for name in names:
            candidates = (stage / directory / name for stage in stages for directory in BINARY_DIRS)
            if (path := next((path for path in candidates if path.is_file()), None)) is not None:
                found[name] = path
        return found  # assemble_tree names the missing ones

    def _bootstrap(self) -> Path:
        source = Node(INITFS_SOURCES[0])
        if source not in self.graph.steps:
            raise InputError(f"the initfs needs recipe {source.recipe!r} (the bootstrap and the early daemons) in "
                             f"the config's packages", path=self.settings.config_file, key="packages")
        bootstrap = self.layout.stage(source) / BOOTSTRAP
        if not bootstrap.is_file():
            raise InputError(f"missing: recipe {source.recipe} must stage the bootstrap ELF here", path=bootstrap)
        return bootstrap

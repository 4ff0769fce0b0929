"""Where a build puts things: every path under the build directory (``build/`` by default), spelled once.

``build/<triple>/recipes/<name>/``  a recipe's cook directory: build dir, sysroot, ``stage`` (upstream:
                                    ``<recipe>/target/<triple>``)
``build/cookbook/``                 the local package repository the installer reads (``repo/<target>``) and the
                                    signing key (``build/``)
``build/<arch>/sysroot``            relibc's sysroot every userspace build links against
``build/<arch>/initfs.img``         the initfs (its tree beside it in ``initfs/``), published as package ``initfs``
``build/<arch>/<config>.img``       the disk image of ``config/<arch>/<config>.toml``, and its ``.qcow2``
``build/logs/<task>.log``           the latest log of a task (``tasks.logs``: one per run, under ``<task>/``)

Knows nothing of doit.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .cookbook.paths import stage_dir
from .formats.pkgkeys import PUBLIC_KEY_FILE
from .logs import log_name
from .settings import Settings, host_triple

if TYPE_CHECKING:
    from .model.graph import Node


@dataclass(frozen=True)
class Layout:
    settings: Settings

    @property
    def build(self) -> Path:
        return self.settings.build

    @property
    def arch_dir(self) -> Path:
        return self.build / self.settings.arch

    @property
    def sysroot(self) -> Path:
        return self.arch_dir / "sysroot"

    @property
    def cache(self) -> Path:
        return self.build / "cache"

    def log(self, task: str) -> Path:
        """The stable path of a task's log (``cook:hello``), which points to its latest run's."""
        return self.build / "logs" / f"{log_name(task)}.log"

    # --- recipes -------------------------------------------------------------------------------------------------

    def triple(self, node: Node) -> str:
        return host_triple() if node.host else self.settings.cook_target

    def cook_dir(self, node: Node) -> Path:
        """Where a recipe is cooked for its triple: its build dir, sysroot, ``stage`` and ``stage.<optional>``."""
        return self.build / self.triple(node) / "recipes" / node.recipe

    def stage(self, node: Node, optional: str | None = None) -> Path:
        return stage_dir(self.cook_dir(node), optional)

    def prebuilt_package(self, name: str) -> Path:
        """The package file a ``binary`` rule takes, in the prebuilt directory (the package server's layout)."""
        return self.settings.prebuilt_dir / self.settings.target / f"{name}.pkgar"

    @property
    def prebuilt_key(self) -> Path:
        """What prebuilt packages are verified with: the key the tree pins for its package server
        (``prebuilt_url=``), else the prebuilt directory's own."""
        if self.settings.prebuilt_url:
            return self.settings.package_server_key
        return self.settings.prebuilt_dir / PUBLIC_KEY_FILE

    # --- the package repository ----------------------------------------------------------------------------------

    @property
    def cookbook(self) -> Path:
        return self.build / "cookbook"

    @property
    def repo(self) -> Path:
        return self.cookbook / "repo"

    @property
    def repo_dir(self) -> Path:
        """The target's directory of the repository: ``<name>.pkgar`` and ``<name>.toml``, and the index."""
        return self.repo / self.settings.target

    @property
    def key_dir(self) -> Path:
        return self.cookbook / "build"

    @property
    def public_key(self) -> Path:
        return self.key_dir / PUBLIC_KEY_FILE

    def package_files(self, name: str) -> list[Path]:
        """The files of package ``name`` in the repository that exist (a meta-package has no ``.pkgar``)."""
        return [path for path in self.package_paths(name) if path.exists()]

    def package_paths(self, name: str) -> list[Path]:
        """Where the files of package ``name`` go in the repository, whether they exist or not."""
        return [self.repo_dir / f"{name}{suffix}" for suffix in (".toml", ".pkgar")]

    # --- initfs and images ---------------------------------------------------------------------------------------

    @property
    def initfs_tree(self) -> Path:
        return self.arch_dir / "initfs"

    @property
    def initfs_image(self) -> Path:
        return self.arch_dir / "initfs.img"

    @property
    def initfs_package_stage(self) -> Path:
        return self.arch_dir / "initfs-package"

    @property
    def disk_image(self) -> Path:
        """The disk image of the selected config: ``build/<arch>/<config name>.img``."""
        return self.arch_dir / f"{self.settings.config_file.stem}.img"

    @property
    def stamped_config(self) -> Path:
        """The config the installer reads: the selected one plus the build's text stamps, beside the image."""
        return self.disk_image.with_suffix(".toml")

    @property
    def qcow2_image(self) -> Path:
        return self.disk_image.with_suffix(".qcow2")

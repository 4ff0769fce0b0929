"""``share:<recipe>``: a recipe's programs (the stage's ``bin/`` and ``usr/bin/``, stripped as the cook left them)
copied into ``share/``, the directory ``doit boot`` shares with the guest over 9p as ``hostshare``: the quickest way
to try a program without rebuilding the image. The modes are set here, on the host (chmod does not work through
9p). Only when asked for: nothing else depends on it.

A stage comes from a recipe, someone else's: a program that is a symlink is copied only when it points inside the
stage (uutils' links to its one binary), never a host file it names (``/etc/shadow``); and ``share/`` itself is
written only when it is a directory of the tree, not a symlink to elsewhere."""
from __future__ import annotations

import shutil
from pathlib import Path

from ..model.graph import Node
from .stage import Dep, RecipeStage, task_name

PROGRAM_DIRS = ("bin", "usr/bin")


class Share(RecipeStage[Node]):
    """Copy a recipe's programs into share/, the guest's 9p hostshare (share:<recipe>)"""

    name = "share"

    def items(self) -> list[Node]:
        return [node for node in self.graph.steps if not node.host and self.graph.steps[node].builds_from_source]

    def describe(self, node: Node) -> str:
        return f"copy the programs of {node} into {self.share}"

    @property
    def share(self) -> Path:
        return self.settings.root / "share"

    def deps(self, node: Node) -> list[Dep]:
        return [Dep(task_name("cook", node))]

    def outputs(self, node: Node) -> list[Path]:
        return [self.share / program.name for program in self._programs(node)]

    def run(self, node: Node) -> None:
        from ..atomic import atomic_path
        from ..errors import InputError
        if self.share.is_symlink() or (self.share.exists() and not self.share.is_dir()):
            raise InputError("not a directory of the tree (a symlink or a file): nothing is written through it",
                             path=self.share)
        self.share.mkdir(exist_ok=True)
        for program in self._programs(node):
            with atomic_path(self.share / program.name) as partial:
                shutil.copyfile(program, partial)
                partial.chmod(0o755)
            print(f"{program.name} -> {self.share / program.name}")

    def _programs(self, node: Node) -> list[Path]:
        stage = self.layout.stage(node)
        inside = stage.resolve()
        found = {}
        for directory in PROGRAM_DIRS:
            where = stage / directory
            if where.is_dir() and not where.is_symlink():
                found.update({path.name: path for path in sorted(where.iterdir())
                              if path.is_file() and path.resolve().is_relative_to(inside)})
        return list(found.values())

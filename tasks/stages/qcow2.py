"""``qcow2``: the disk image converted with ``qemu-img`` and checked by ``qemu-img check`` before it replaces the
previous qcow2, which is kept as ``.bak``."""
from __future__ import annotations

from pathlib import Path

from ..model.recipe import Recipe
from .stage import Dep, Stage


class Qcow2(Stage):
    """Convert the disk image to qcow2 (qemu-img), keeping the previous one as .bak"""

    name = "qcow2"

    def recipes(self) -> list[str]:
        return []

    def deps(self) -> list[Dep]:
        return [Dep("image")]

    def outputs(self) -> list[Path]:
        return [self.layout.qcow2_image]

    def stamp_sources(self) -> list[Recipe]:
        return []

    def run(self) -> None:
        from ..image.qcow2 import convert_qcow2
        convert_qcow2(self.layout.disk_image, self.layout.qcow2_image, backups=self.settings.backups,
                      log=self.layout.log("qcow2"))

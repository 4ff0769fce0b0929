"""``base``: the base system — daemons and drivers — is what recipe ``base`` cooks; this stage names that step of
the pipeline (after relibc, before the initfs) and builds nothing of its own."""
from __future__ import annotations

from ..model.graph import Node
from .stage import Dep, Stage, task_name

BASE = Node("base")


class Base(Stage):
    """Build the base system: daemons and drivers (recipes core/base)"""

    name = "base"

    def needed(self) -> bool:
        return False

    def recipes(self) -> list[str]:
        return []

    def deps(self) -> list[Dep]:
        return [Dep("relibc"), *([Dep(task_name("cook", BASE))] if BASE in self.graph.steps else [])]

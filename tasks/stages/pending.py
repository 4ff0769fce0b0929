"""Actions of stages whose machinery is still being integrated: they fail loudly instead of pretending."""
from __future__ import annotations

from ..errors import BuildError


def pending_action(stage: str):
    def action() -> None:
        raise BuildError(f"the {stage} stage has no action yet in this build of the tool")
    action.__name__ = f"pending_{stage}"
    return action

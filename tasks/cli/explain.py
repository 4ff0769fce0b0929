"""``doit explain TASK…``: why a task is stale (which input changed, old and new hash), like bitbake-diffsigs."""
from __future__ import annotations

from doit.exceptions import TaskFailed

from ..errors import BuildError
from .creators import engine, signature_of


def explain_task() -> dict:
    def explain(pos: list[str]) -> TaskFailed | None:
        for task in pos or []:
            try:
                print(engine().explain(task, signature_of(task)))
            except BuildError as error:
                return TaskFailed(f"{task}: its inputs cannot be read: {error}")
        return None
    return {"actions": [explain], "pos_arg": "pos", "uptodate": [False], "verbosity": 2,
            "doc": "Say why tasks are stale: doit explain cook:ion pkg:ion (which input changed, old -> new hash)"}

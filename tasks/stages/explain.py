"""``doit explain TASK…``: why a task is stale (which input changed, old and new hash), like bitbake-diffsigs."""
from __future__ import annotations

from .common import engine, signature_of


def task_explain():
    """Say why tasks are stale: doit explain cook:ion pkg:ion (which input changed, old -> new hash)"""
    def explain(pos: list[str]) -> None:
        for task in pos or []:
            print(engine().explain(task, signature_of(task)))
    return {"actions": [explain], "pos_arg": "pos", "uptodate": [False], "verbosity": 2}

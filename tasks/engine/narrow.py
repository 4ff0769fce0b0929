"""The check after an edit: which tasks the changes can reach, from the evidence's plan, and which of those to load.

The evidence of the last run (:mod:`.evidence`) says *what* changed since; its :class:`~.evidence.Plan` says which
tasks read each recipe's directory, which task wrote each output, and which task runs after which. An edit of files
inside recipes (a source, a patch, a script's file) or of outputs (gone, or written by hand) reaches:

* the *candidates*: the tasks that read the edited recipes (each stage's ``recipes()``), the tasks whose outputs
  changed, and the tasks of any stage that does not say which recipes it reads; only these are judged;
* what runs after a candidate found stale, within what the targets need: it reads that task's new output, so it
  is loaded and judged by the build as usual, after it (where the output came out the same, early cutoff stops it).

Every other task is current as in a no-op: nothing it read changed. Anything else that changed — a recipe file
(the graph may change), a config, the build system's code, the environment, a command's output, another build's
records, a new recipe — may change any task, and takes the full check. Doit-free, and cheap: names and paths only.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .evidence import GENERATION, OUTPUTS, RECIPE_FILE, Evidence, Plan, describe_key, described

GIT = "\0git\0"
LINK_TARGET = b"\0target"


@dataclass
class Edit:
    """What changed, by owner: the recipes whose files changed and the tasks whose outputs changed."""

    recipes: set[str]
    outputs: set[str]
    described: list[str]  # the changed paths (files, outputs), for the message

    def candidates(self, plan: Plan) -> set[str]:
        readers = {task for recipe in self.recipes for task in plan.readers.get(recipe, ())}
        return readers | self.outputs | set(plan.pipeline)


class NotNarrow(Exception):
    """A change that may reach any task: the message names it."""


def edit_of(evidence: Evidence, keys: Iterable[bytes | str]) -> Edit:
    """Each changed key attributed to its owner, or :class:`NotNarrow` naming the first that has none."""
    plan = evidence.load_plan()
    if plan is None:
        raise NotNarrow("the evidence has no plan")
    recipes: set[str] = set()
    outputs: set[str] = set()
    changes = described([key for key in keys if key != OUTPUTS])
    for key in sorted(keys, key=describe_key):
        if key == OUTPUTS:
            owner = dict(zip(evidence.spec.outputs, plan.owners, strict=True))
            changed = evidence.changed_outputs()
            outputs.update(owner[path] for path in changed)
            changes += changed
        elif key == GENERATION:
            raise NotNarrow("the build state (another command built, cleaned or forgot tasks)")
        elif not (owners := _owners(plan, key)):
            raise NotNarrow(describe_key(key))
        else:
            recipes.update(owners)
    return Edit(recipes, outputs, changes)


def _owners(plan: Plan, key: bytes | str) -> list[str]:
    """The recipes whose directories (or linked sources: base-initfs's is base's) hold the changed path; none for
    anything else, and for a recipe file itself, whose edit may change the graph."""
    if isinstance(key, str):
        if not key.startswith(GIT):
            return []  # an environment variable, a command's output
        key = os.fsencode(key[len(GIT):])
    key = directory = key.removesuffix(LINK_TARGET)
    owners: list[str] = []
    while True:
        if (recipes := plan.zones.get(directory)) is not None:
            if key == os.path.join(directory, RECIPE_FILE):
                return []
            owners += recipes
        if (parent := os.path.dirname(directory)) == directory:
            return owners
        directory = parent


def reached(plan: Plan, targets: Iterable[str], candidates: set[str], current: Callable[[str], bool]) -> list[str]:
    """The tasks to load, in dependency order: the candidates ``current`` finds stale, and what runs after them
    within what ``targets`` need (targets that are not tasks of the plan are left to the caller)."""
    loaded: dict[str, None] = {}  # in the order met: dependencies first
    for task in _dependencies_first(plan.deps, targets):
        if any(dep in loaded for dep in plan.deps[task]) or (task in candidates and not current(task)):
            loaded[task] = None
    return list(loaded)


def _dependencies_first(deps: dict[str, list[str]], targets: Iterable[str]) -> list[str]:
    """``targets`` and everything they need, each after what it needs."""
    order: list[str] = []
    done: set[str] = set()
    for target in targets:
        if target in deps and target not in done:
            stack = [(target, iter(deps[target]))]
            done.add(target)
            while stack:
                task, pending = stack[-1]
                for dep in pending:
                    if dep in deps and dep not in done:
                        done.add(dep)
                        stack.append((dep, iter(deps[dep])))
                        break
                else:
                    stack.pop()
                    order.append(task)
    return order

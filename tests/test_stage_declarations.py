"""A stage's declaration is the one source of its task: doit's task_dep and the signature's dep:* entries are both
made from its deps() list, and a stage cannot slip a dependency into its signature by another way."""
from __future__ import annotations

from pathlib import Path

import pytest

from tasks.cli import creators
from tasks.settings import PROJECT_DIR
from tasks.stages import STAGES, Stage
from tasks.stages.stage import Dep


@pytest.fixture
def load(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """The doit task dicts of every stage for the given command-line variables, made in this process."""
    def tasks(**variables: str) -> list[dict]:
        monkeypatch.setattr(creators, "variables", lambda: {"build": str(tmp_path / "build"), **variables})
        for cached in (creators.project, creators.engine, creators.context, creators.code_graph,
                       creators.code_version):
            cached.cache_clear()
        creators.SIGNATURES.clear()
        return [task for stage in STAGES for task in creators.stage_tasks(stage)]
    yield tasks
    for cached in (creators.project, creators.engine, creators.context, creators.code_graph):
        cached.cache_clear()


def declared(task: dict) -> list[Dep]:
    """What the task's stage declares (deps() of the stage, for this task)."""
    name = task["basename"] if task.get("name") is None else f"{task['basename']}:{task['name']}"
    stage_class = next(stage for stage in STAGES if stage.name == task["basename"])
    stage = stage_class(creators.context())
    if isinstance(stage, Stage):
        return stage.deps()
    return next(stage.deps(item) for item in stage.items() if f"{stage.name}:{item}" == name)


@pytest.mark.parametrize("variables", [
    {"root": str(PROJECT_DIR / "demo"), "config": "config/aarch64/demo.toml", "toolchain": "host"},
    {"toolchain": "host"},  # the default config (its sources are not fetched here: they hash as absent)
], ids=["demo", "default-config"])
def test_task_dep_and_signature_deps_come_from_one_list(load, variables: dict) -> None:
    tracked = 0
    for task in load(**variables):
        if task.get("name") is None and "task_dep" not in task:
            continue  # a recipe stage's group
        deps = declared(task)
        assert task["task_dep"] == [dep.task for dep in deps]
        if task.get("actions") is None:
            continue  # a stage that only gathers its dependencies in this build
        check = task["uptodate"][0]
        signed = {name.removeprefix("dep:") for name in check.signature().components if name.startswith("dep:")}
        assert signed == {dep.task for dep in deps if not dep.order_only}, check.task
        assert signed <= set(task["task_dep"])
        tracked += 1
    assert tracked >= 10


def test_an_input_named_like_a_declared_component_is_refused(load, monkeypatch: pytest.MonkeyPatch) -> None:
    qcow2 = next(stage for stage in STAGES if stage.name == "qcow2")
    monkeypatch.setattr(qcow2, "inputs", lambda self: {"dep:cook:hello": "a dependency the declaration does not name"})
    task = next(task for task in load(root=str(PROJECT_DIR / "demo"), config="config/aarch64/demo.toml",
                                      toolchain="host") if task["basename"] == "qcow2")
    with pytest.raises(TypeError, match="input 'dep:cook:hello' is made from the declaration"):
        task["uptodate"][0].signature()

"""Code versions from the import graph (tasks.engine.codeversion): what a stage's ``code`` component covers."""
from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from tasks.engine import codeversion
from tasks.engine.codeversion import CodeGraph
from tasks.settings import PROJECT_DIR
from tasks.stages import STAGES

FILES = {
    "__init__.py": '"""the package"""\n',
    "stage_a.py": "from .helpers.only_a import thing\nfrom .shared import common\n",
    "stage_b.py": ("from __future__ import annotations\nfrom typing import TYPE_CHECKING\n"
                   "from .helpers import only_b\n"
                   "if TYPE_CHECKING:\n    from .stage_a import thing\n"
                   "def run():\n    from .late import later\n    import tasks.absolute\n"),
    "shared.py": "common = 1\n",
    "late.py": "later = 1\n",
    "absolute.py": "import os\n",
    "helpers/__init__.py": "from .only_a import thing  # re-exported\nsetting = 1\n",
    "helpers/only_a.py": "thing = 1\n",
    "helpers/only_b.py": "from . import setting\n",
    "templates/a.j2": "{{ x }}\n",
}


@pytest.fixture
def package(tmp_path: Path) -> Path:
    root = tmp_path / "tasks"
    for rel, text in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def closure(graph: CodeGraph, module: str) -> set[str]:
    return {path.relative_to(graph.package_dir).as_posix() for path in graph.closure(graph.package_dir / module)}


def test_the_closure_follows_import_statements_transitively(package: Path) -> None:
    graph = CodeGraph(package)
    # `from .helpers.only_a import thing` names the module, not the package that holds it
    assert closure(graph, "stage_a.py") == {"stage_a.py", "helpers/only_a.py", "shared.py"}
    # function-level and absolute imports count; TYPE_CHECKING imports never run and do not; taking a name from a
    # package (`from . import setting`) counts its __init__, and with it what that imports
    assert closure(graph, "stage_b.py") == {"stage_b.py", "helpers/only_b.py", "helpers/__init__.py",
                                            "helpers/only_a.py", "late.py", "absolute.py"}


def test_a_version_changes_with_the_bytes_of_its_closure_and_data_only(package: Path) -> None:
    data = [package / "templates"]
    before = {module: CodeGraph(package).version(package / module, data) for module in ("stage_a.py", "stage_b.py")}
    (package / "late.py").write_text("later = 1  # a comment counts: the bytes are hashed\n")
    after = {module: CodeGraph(package).version(package / module, data) for module in ("stage_a.py", "stage_b.py")}
    assert after["stage_a.py"] == before["stage_a.py"] and after["stage_b.py"] != before["stage_b.py"]
    (package / "templates/a.j2").write_text("{{ y }}\n")
    assert CodeGraph(package).version(package / "stage_a.py", data) != after["stage_a.py"]
    assert CodeGraph(package).version(package / "stage_a.py") == CodeGraph(package).version(package / "stage_a.py")


def test_the_cache_answers_by_stat_and_sees_an_edit(package: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "code-graph.marshal"
    first = CodeGraph(package, cache=cache).version(package / "stage_b.py")
    assert cache.is_file()

    def no_parsing(*args, **kwargs):
        raise AssertionError("a file with an unchanged stat was parsed again")
    monkeypatch.setattr(codeversion.ast, "parse", no_parsing)
    assert CodeGraph(package, cache=cache).version(package / "stage_b.py") == first
    monkeypatch.undo()
    (package / "late.py").write_text("later = 2\n")
    assert CodeGraph(package, cache=cache).version(package / "stage_b.py") != first


def test_the_stages_of_this_project_cover_their_own_helpers_and_not_each_others() -> None:
    graph = CodeGraph(PROJECT_DIR / "tasks")
    modules = {stage.name: Path(inspect.getfile(stage)).relative_to(graph.package_dir).as_posix() for stage in STAGES}
    closures = {name: closure(graph, module) for name, module in modules.items()}
    assert "image/installer.py" in closures["image"] and "image/qcow2.py" in closures["qcow2"]
    assert "cookbook/cook.py" in closures["cook"] and "cookbook/fetch.py" in closures["fetch"]
    for name, files in closures.items():
        others = files & set(modules.values()) - {modules[name]}
        assert not others, f"stage {name} imports other stages: {others}"
    assert "cookbook/cook.py" not in closures["image"] and "image/installer.py" not in closures["cook"]

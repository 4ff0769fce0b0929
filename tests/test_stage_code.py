"""A code version per stage, through the real CLI on the demo: an edit of the build system's own code re-runs the
stages whose code it is, and what depends on their outputs only when those outputs changed (early cutoff).

The edits are made to a copy of the project (``tasks/``, ``dodo.py``, ``pyproject.toml``), which doit runs from
its own directory, as a user runs it from a checkout.
"""
from __future__ import annotations

import inspect
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tasks.engine.codeversion import CodeGraph
from tasks.settings import PROJECT_DIR
from tasks.stages import STAGES

pytestmark = pytest.mark.slow

EPOCH = "1700000000"
COOKS = {"cook:base-initfs", "cook:bootloader", "cook:hello", "cook:kernel"}


class Checkout:
    """A copy of the project with the demo tree, built with ``doit qcow2`` from its own directory."""

    def __init__(self, root: Path):
        self.root = root
        for name in ("dodo.py", "pyproject.toml"):
            shutil.copy(PROJECT_DIR / name, root / name)
        shutil.copytree(PROJECT_DIR / "tasks", root / "tasks", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copytree(PROJECT_DIR / "demo", root / "demo", ignore=shutil.ignore_patterns("build"))
        shutil.copytree(PROJECT_DIR / "tools", root / "tools", ignore=shutil.ignore_patterns("target"))

    def build(self) -> set[str]:
        """The tasks whose actions ran."""
        command = [str(Path(sys.executable).parent / "doit"), "qcow2", "root=demo", "config=config/aarch64/demo.toml",
                   "toolchain=host"]
        result = subprocess.run(command, cwd=self.root, capture_output=True, text=True, timeout=300,
                                env={**os.environ, "PYTHONPATH": str(self.root), "SOURCE_DATE_EPOCH": EPOCH})
        assert result.returncode == 0, result.stdout + result.stderr
        return {line[3:] for line in result.stdout.splitlines() if line.startswith(".  ")}

    def edit(self, rel: str, line: str = "# an edit that changes nothing it does\n") -> None:
        path = self.root / "tasks" / rel
        path.write_text(path.read_text() + line)

    def records(self) -> dict[str, tuple[str, dict[str, str]]]:
        """task → (output hash, signature components) as the store holds them."""
        db = sqlite3.connect(self.root / "demo/build/engine/state.sqlite")
        try:
            rows = db.execute("SELECT task, output_hash, components FROM records").fetchall()
        finally:
            db.close()
        return {task: (output, json.loads(components)) for task, output, components in rows}


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Checkout:
    checkout = Checkout(tmp_path_factory.mktemp("checkout"))
    assert "qcow2" in checkout.build()
    assert checkout.build() == set()
    return checkout


def reran_only_by_cutoff(before: dict, after: dict, edited: set[str], ran: set[str]) -> None:
    """Besides the ``edited`` tasks, a task ran exactly when an output it depends on changed."""
    assert edited <= ran
    for task in set(after) - edited:
        changed = [name for name, value in after[task][1].items()
                   if name.startswith("dep:") and before[task][1].get(name) != value]
        assert (task in ran) == bool(changed), (task, changed, sorted(ran))


def test_an_edit_of_the_image_stage_reruns_the_image(checkout: Checkout) -> None:
    before = checkout.records()
    checkout.edit("stages/image.py")
    ran = checkout.build()
    after = checkout.records()
    image_changed = after["image"][0] != before["image"][0]
    assert ran == ({"image", "qcow2"} if image_changed else {"image"})


def test_an_edit_of_the_cook_stage_reruns_the_cooks_and_dependents_only_by_their_outputs(checkout) -> None:
    before = checkout.records()
    checkout.edit("stages/cook.py")
    ran = checkout.build()
    reran_only_by_cutoff(before, checkout.records(), COOKS, ran)
    assert not ran & {"pkg:hello", "pkg:kernel"}, "the demo's cargo and copy builds are reproducible"


def test_an_edit_of_a_helper_that_one_stage_imports_reruns_that_stage_only(checkout: Checkout) -> None:
    graph = CodeGraph(checkout.root / "tasks")
    importers = [stage.name for stage in STAGES
                 if checkout.root / "tasks/image/qcow2.py" in graph.closure(
                     checkout.root / "tasks" / Path(inspect.getfile(stage)).relative_to(PROJECT_DIR / "tasks"))]
    assert importers == ["qcow2"]
    checkout.edit("image/qcow2.py")
    assert checkout.build() == {"qcow2"}


def test_an_edit_of_the_cookbook_prelude_template_reruns_the_cooks(checkout: Checkout) -> None:
    before = checkout.records()
    checkout.edit("templates/cookbook_prelude.sh.j2", "# an edit of the build script's prelude\n")
    ran = checkout.build()
    reran_only_by_cutoff(before, checkout.records(), COOKS, ran)
    assert checkout.build() == set()

"""A build script that writes outside its stage (issue 12, item 3): into another recipe's stage, or into its own
source. Real doit runs on the bash recipes of tests/trees.py, plus the script that misbehaves."""
from __future__ import annotations

import os
import subprocess

import pytest

from tasks.engine import Engine, Signature
from tests.conftest import PROJECT
from tests.test_incremental import doit_command, executed, stage
from tests.trees import bash_recipes_tree

INTRUDER = '''[build]
template = "custom"
dependencies = ["lib"]
script = """
mkdir -p "$COOKBOOK_STAGE/usr/share/intruder"
echo mine > "$COOKBOOK_STAGE/usr/share/intruder/x"
echo planted > "$COOKBOOK_STAGE/../../lib/stage/usr/share/lib/data.txt"
"""
'''
EDITS_ITS_SOURCE = '''[build]
template = "custom"
script = """
mkdir -p "$COOKBOOK_STAGE/usr/share/{name}"
cp "$COOKBOOK_SOURCE/in.txt" "$COOKBOOK_STAGE/usr/share/{name}/"
{edit}
"""
'''


def doit(root, *args):
    result = subprocess.run(doit_command(root, *args), cwd=PROJECT, capture_output=True, text=True,
                            env=os.environ, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def add_recipe(root, name, text, source=None):
    (root / "recipes" / name).mkdir(parents=True)
    (root / "recipes" / name / "recipe.toml").write_text(text)
    for file, content in (source or {}).items():
        (root / "recipes" / name / "source").mkdir(exist_ok=True)
        (root / "recipes" / name / "source" / file).write_text(content)
    config = root / "config/c.toml"
    config.write_text(config.read_text() + f"{name} = {{}}\n")


@pytest.fixture
def tree(tmp_path):
    return bash_recipes_tree(tmp_path / "tree")


def test_a_script_that_writes_into_another_recipes_stage_makes_that_recipe_stale_with_a_warning(tree):
    doit(tree, "pkg")
    data = stage(tree, "lib") / "usr/share/lib/data.txt"
    add_recipe(tree, "intruder", INTRUDER)
    assert executed(doit(tree, "cook:intruder").stdout) == {"cook:intruder"}
    assert data.read_text() == "planted\n"  # what the state recorded for cook:lib is no longer there
    explained = doit(tree, "explain", "cook:lib").stdout
    assert f"output {stage(tree, 'lib')} no longer holds what the task recorded" in explained
    again = doit(tree, "pkg")
    assert f"warning: {stage(tree, 'lib')}: changed since cook:lib recorded it" in again.stderr
    # lib comes out as it was recorded: nothing downstream of it (app, the intruder, lib's package) runs again
    assert executed(again.stdout) == {"cook:lib", "pkg:intruder"}
    assert data.read_text() == "lib data\n"
    assert executed(doit(tree, "pkg").stdout) == set()


def test_a_dependent_names_what_its_dependencys_outputs_hold_now(tmp_path):
    """Written between a dependency's record and its dependent's check (in one build, by a task in between): the
    dependent's signature names the content it reads, not the stale record, so it is built again once the
    dependency is restored."""
    engine = Engine(tmp_path / "build")
    output = tmp_path / "build" / "lib.out"
    output.parent.mkdir(parents=True)
    with engine.publisher.publish("lib", Signature({"source": "1"})) as staging:
        staging.file(output).write_text("good\n")
    recorded = engine.state.output_hash("lib")
    assert engine.output_hash("lib") == recorded and engine.changed_outputs("lib") == []
    output.write_text("planted\n")
    warnings: list[str] = []
    fresh = Engine(tmp_path / "build", warn=warnings.append)
    assert fresh.output_hash("lib") not in (None, recorded)
    assert fresh.changed_outputs("lib") == [str(output)]
    assert not fresh.is_current("lib", Signature({"source": "1"}))
    assert warnings == [f"{output}: changed since lib recorded it (another task's script or a hand wrote it); "
                        "lib runs again"]


EVERY_TIME = "warning: cook:selfish: its build changes its own inputs (source) every time it runs"


@pytest.mark.parametrize("edit, said", [
    ('date +%s%N >> "$COOKBOOK_SOURCE/log.txt"', True),  # a new line each time: run once more, then accepted
    ('echo generated > "$COOKBOOK_SOURCE/generated.txt"', False),  # the same each time: the second run agrees
])
def test_a_source_edited_by_its_own_build_is_reported_and_not_rebuilt_forever(tree, edit, said):
    add_recipe(tree, "selfish", EDITS_ITS_SOURCE.format(name="selfish", edit=edit), {"in.txt": "in\n"})
    first = doit(tree, "cook:selfish")
    assert "warning: cook:selfish: its inputs (source) changed while it ran; it runs again next time" in first.stderr
    second = doit(tree, "cook:selfish")
    assert "cook:selfish" in executed(second.stdout)  # it may have been a hand's edit during the run
    assert (EVERY_TIME in second.stderr) is said and "changed while it ran" not in second.stderr
    for _ in range(2):
        quiet = doit(tree, "cook:selfish")
        assert executed(quiet.stdout) == set() and "warning" not in quiet.stderr
    explained = doit(tree, "explain", "cook:selfish").stdout
    assert "cook:selfish is up to date" in explained
    # A hand's edit of the source is still seen
    (tree / "recipes/selfish/source/in.txt").write_text("edited\n")
    assert "cook:selfish" in executed(doit(tree, "cook:selfish").stdout)
    assert (stage(tree, "selfish") / "usr/share/selfish/in.txt").read_text() == "edited\n"

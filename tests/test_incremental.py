"""Only stale artifacts are rebuilt, and every rebuilt one is stamped (issue 3's must-shows, on the real CLI).

The recipes are small bash builds for the host triple (no Redox toolchain here); the engine does not care what a
build runs, only what goes in and what comes out.
"""
from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tasks.engine import read_stamp, verify_stamp
from tasks.settings import host_triple
from tests.conftest import PROJECT
from tests.trees import bash_recipes_tree

ALL = {"toolchain", "cook:lib", "cook:app", "cook:other", "pkg:lib", "pkg:app", "pkg:other"}


@pytest.fixture
def tree(tmp_path):
    return bash_recipes_tree(tmp_path / "tree")


def doit_command(root: Path, *args: str) -> list[str]:
    return [str(Path(sys.executable).parent / "doit"), "-f", str(PROJECT / "dodo.py"), *args, f"root={root}",
            "config=config/c.toml", f"target={host_triple()}"]


def build(root: Path, *args: str, env: dict | None = None) -> set[str]:
    """Run ``doit pkg`` (or ``args``) and return the tasks whose actions ran."""
    result = subprocess.run(doit_command(root, *(args or ("pkg",))), cwd=PROJECT, capture_output=True, text=True,
                            env={**os.environ, **(env or {})}, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return executed(result.stdout)


def executed(output: str) -> set[str]:
    return {line[3:] for line in output.splitlines() if line.startswith(".  ")} - {"explain"}


def artifact_files(root: Path) -> dict[str, float]:
    """Every file under build/ with its mtime (directories excluded: SQLite's WAL files come and go)."""
    return {str(path): path.stat().st_mtime_ns for path in (root / "build").rglob("*") if path.is_file()}


def stage(root: Path, recipe: str) -> Path:
    return root / "build" / host_triple() / "recipes" / recipe / "stage"


def test_first_build_then_noop_runs_nothing_and_writes_nothing(tree):
    assert build(tree) == ALL
    before = artifact_files(tree)
    time.sleep(0.05)
    assert build(tree) == set()
    assert artifact_files(tree) == before


def test_touching_every_source_file_runs_nothing(tree):
    build(tree)
    for path in (tree / "recipes").rglob("*"):
        if path.is_file():
            os.utime(path)
    assert build(tree) == set()


def test_one_byte_edit_rebuilds_exactly_that_recipe_and_its_dependents(tree):
    build(tree)
    data = tree / "recipes/lib/source/data.txt"
    data.write_text(data.read_text().replace("lib", "Lib"))
    assert build(tree) == {"cook:lib", "pkg:lib", "cook:app", "pkg:app"}
    assert (stage(tree, "app") / "usr/share/app/out.txt").read_text() == "Lib data\napp\n"


def test_early_cutoff_stops_after_an_unchanged_output(tree):
    build(tree)
    (tree / "recipes/lib/source/notes.txt").write_text("edited, but the build ignores this file\n")
    assert build(tree) == {"cook:lib"}  # its stage is byte-identical: nothing downstream runs


def test_env_allow_list_and_toolchain_rerun_exactly_their_users(tree, tmp_path):
    build(tree)
    # RUSTFLAGS is on the cook allow-list: every cook re-runs; only "other" puts it in its output.
    assert build(tree, env={"RUSTFLAGS": "-C opt-level=1"}) == {"cook:lib", "cook:app", "cook:other", "pkg:other"}
    # A variable off the allow-list changes nothing.
    assert build(tree, env={"RUSTFLAGS": "-C opt-level=1", "UNRELATED": "1"}) == set()
    # A different toolchain (here: the host compiler's `rustc -vV`) re-runs every build that uses it.
    fake = tmp_path / "rustc"
    fake.write_text('#!/bin/sh\nrustc "$@"\necho "patched: yes"\n')
    fake.chmod(0o755)
    assert build(tree, env={"RUSTFLAGS": "-C opt-level=1", "RUSTC": str(fake)}) == {"toolchain", "cook:lib",
                                                                                     "cook:app", "cook:other"}


def test_recipe_comment_or_key_order_does_not_count(tree):
    build(tree)
    recipe = tree / "recipes/other/recipe.toml"
    recipe.write_text("# a comment\n" + recipe.read_text().replace('[build]\ntemplate = "custom"\n',
                                                                   '[build]\ntemplate = "custom" # custom\n'))
    assert build(tree) == set()


def test_a_file_beside_the_recipe_its_script_reads_counts_for_it_and_for_recipes_building_its_source(tree):
    """programs.txt beside base's recipe is read by base's script and by base-initfs's (which builds base's source
    with same_as): an edit of it re-runs both cooks, an edit beside another recipe neither (issue 18)."""
    (tree / "recipes/lib/list.txt").write_text("first\n")
    (tree / "recipes/lib/source/app.txt").write_text("app, from lib's source\n")
    (tree / "recipes/app/recipe.toml").write_text((tree / "recipes/app/recipe.toml").read_text().replace(
        '[build]', '[source]\nsame_as = "../lib"\n\n[build]', 1))
    assert build(tree) >= ALL
    (tree / "recipes/lib/list.txt").write_text("second\n")
    assert build(tree) >= {"cook:lib", "cook:app"}
    (tree / "recipes/other/notes.txt").write_text("a note\n")
    assert build(tree) == {"cook:other"}  # its output is the same: nothing after it runs


def test_stamp_changes_only_when_the_artifact_is_rebuilt(tree):
    build(tree)
    app_stamp = read_stamp(stage(tree, "app"))
    other_stamp = read_stamp(stage(tree, "other"))
    assert app_stamp is not None and verify_stamp(stage(tree, "app"))
    assert app_stamp.task == "cook:app" and "main" in app_stamp.git
    (tree / "recipes/other/source/other.txt").write_text("changed\n")
    assert build(tree) == {"cook:other", "pkg:other"}
    assert read_stamp(stage(tree, "app")) == app_stamp
    assert read_stamp(stage(tree, "other")) != other_stamp and verify_stamp(stage(tree, "other"))


def test_explain_names_the_changed_input(tree):
    build(tree)
    (tree / "recipes/lib/source/data.txt").write_text("new\n")
    result = subprocess.run(doit_command(tree, "explain", "cook:lib", "cook:other"), cwd=PROJECT,
                            capture_output=True, text=True)
    assert f"cook:lib is stale:\n  cook:lib ← source: {tree}/recipes/lib/source/data.txt changed\n" in result.stdout
    assert "cook:other is up to date" in result.stdout


def test_explain_follows_dependencies_down_to_the_file_and_is_up_to_date_only_when_its_dependencies_are(tree):
    """Issue 13: `pkg:app ← cook:app ← cook:lib ← source: …/data.txt changed`, and a task whose own inputs match
    while a dependency is stale does not claim to be up to date."""
    build(tree)
    (tree / "recipes/lib/source/data.txt").write_text("new\n")
    (tree / "recipes/lib/source/added.txt").write_text("more\n")
    result = subprocess.run(doit_command(tree, "explain", "pkg:app", "pkg:other"), cwd=PROJECT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:3] == [
        "pkg:app is up to date itself, but a task it depends on is stale (it runs again if that task's output "
        "changes):",
        f"  pkg:app ← cook:app ← cook:lib ← source: {tree}/recipes/lib/source/added.txt added",
        f"  pkg:app ← cook:app ← cook:lib ← source: {tree}/recipes/lib/source/data.txt changed"]
    assert "pkg:other is up to date\n" in result.stdout and ".  explain" not in result.stdout
    subprocess.run(doit_command(tree, "cook:lib"), cwd=PROJECT, capture_output=True, check=True)
    after = subprocess.run(doit_command(tree, "explain", "cook:app"), cwd=PROJECT, capture_output=True, text=True)
    assert after.stdout == "cook:app is stale:\n  cook:app ← cook:lib was built again since cook:app ran (its output " \
                           "changed)\n"


def recorded_tasks(root: Path) -> set[str]:
    database = root / "build/engine/state.sqlite"
    if not database.exists():
        return set()
    with sqlite3.connect(database) as db:
        return {row[0] for row in db.execute("SELECT task FROM records")}


@pytest.mark.slow
def test_kill_9_at_random_points_loses_only_the_running_task(tree):
    rng = random.Random(20261122)
    for trial in range(20):
        (tree / "recipes/lib/source/data.txt").write_text(f"trial {trial}\n")
        (tree / "recipes/other/source/other.txt").write_text(f"other {trial}\n")
        process = subprocess.Popen(doit_command(tree, "pkg"), cwd=PROJECT, env={**os.environ, "SLOW": "0.3"},
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(rng.uniform(0.3, 3.0))
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        for stamp in (tree / "build").rglob("*.stamp.json"):
            artifact = stamp.with_name(stamp.name.removesuffix(".stamp.json"))
            assert verify_stamp(artifact), f"trial {trial}: {artifact} does not match its stamp"
        finished = recorded_tasks(tree)
        rerun = build(tree)
        # Work recorded before the kill is not redone, unless its inputs changed in this trial and it was
        # recorded for the previous trial's inputs (then it is stale, not finished).
        current_before = {task for task in finished if task not in rerun}
        assert rerun | current_before >= ALL - {task for task in ALL if task in finished and task not in rerun}
        assert not list((tree / "build").rglob("*.partial")), f"trial {trial}: partial left as an artifact"
        assert build(tree) == set()
        assert (stage(tree, "app") / "usr/share/app/out.txt").read_text() == f"trial {trial}\napp\n"


@pytest.mark.slow
def test_a_second_build_waits_for_the_lock_and_finds_the_work_done(tree):
    first = subprocess.Popen(doit_command(tree, "pkg"), cwd=PROJECT, env={**os.environ, "SLOW": "1"},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)  # the first build holds the lock once its first task runs
    second = subprocess.run(doit_command(tree, "pkg"), cwd=PROJECT, capture_output=True, text=True, timeout=300)
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0 and second.returncode == 0, err + second.stderr
    assert "waiting for build lock held by pid" in second.stdout + second.stderr
    assert executed(out) == ALL
    # Tasks the second build saw as stale before it had the lock were current once it had it: each recipe was
    # built exactly once (one command per cook log).
    for recipe in ("lib", "app", "other"):
        assert (tree / f"build/logs/cook-{recipe}.log").read_text().count("$ bash -ex") == 1
    assert build(tree) == set()
    for stamp in (tree / "build").rglob("*.stamp.json"):
        assert verify_stamp(stamp.with_name(stamp.name.removesuffix(".stamp.json")))


def test_parallel_build_with_doit_n(tree):
    # doit -n forks workers after its up-to-date checks: they share the lock its main process took.
    assert build(tree, "-n", "2", "pkg") == ALL
    assert build(tree, "-n", "2", "pkg") == set()
    for stamp in (tree / "build").rglob("*.stamp.json"):
        assert verify_stamp(stamp.with_name(stamp.name.removesuffix(".stamp.json")))

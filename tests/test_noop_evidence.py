"""The no-op answered from evidence (tasks.engine.evidence, tasks.cli.loader): fast, and never blind to a change.

The module tests observe real directories, git work trees, commands and a real state database; the CLI tests run
real doit processes on the small bash recipes of tests/trees.py (test_incremental's, which, run from the project
root, exercise the same loader in every one of its scenarios).
"""
from __future__ import annotations

import ast
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tasks.engine import Signature, StateStore
from tasks.engine import observe as observe_module
from tasks.engine.evidence import Evidence, Spec
from tasks.engine.observe import Observer, TooManyRacyFiles
from tests.conftest import PROJECT
from tests.test_incremental import ALL, build, doit_command, executed, stage
from tests.trees import bash_recipes_tree

ANSWERED = "nothing changed since the last run"


@pytest.fixture
def tree(tmp_path):
    return bash_recipes_tree(tmp_path / "tree")


@pytest.fixture
def trusted(monkeypatch):
    """Files written by the test count as old enough to be compared by stat (no racy window)."""
    monkeypatch.setattr(observe_module, "RACY_WINDOW_NS", -10_000_000_000)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def evidence_of(spec: Spec) -> Evidence:
    return Evidence(spec, Observer().observe(spec), tasks=1)


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
                        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"})


@pytest.fixture
def zone(tmp_path):
    """A recipes/ directory: a plain source, a git work-tree source with one dirty file, a symlinked source."""
    recipes = tmp_path / "recipes"
    write(recipes / "plain/recipe.toml", "[build]\ntemplate = \"custom\"\n")
    write(recipes / "plain/source/a.txt", "a\n")
    write(recipes / "plain/source/sub/b.txt", "b\n")
    write(recipes / "gitty/recipe.toml", "[build]\ntemplate = \"custom\"\n")
    source = recipes / "gitty/source"
    write(source / "clean.txt", "clean\n")
    write(source / "dirty.txt", "v1\n")
    write(source / ".gitignore", "ignored/\n")
    git(source, "init", "-q")
    git(source, "add", ".")
    git(source, "commit", "-q", "-m", "one")
    write(source / "dirty.txt", "v2\n")
    git(write(source / "nested/inner.txt", "inner\n").parent, "init", "-q")  # an untracked repository inside
    elsewhere = write(tmp_path / "checkout/main.rs", "fn main() {}\n").parent
    write(recipes / "linked/recipe.toml", "[build]\ntemplate = \"custom\"\n")
    (recipes / "linked/source").symlink_to(elsewhere)
    return recipes


CHANGES = {
    "edit a plain file": lambda r: write(r / "plain/source/a.txt", "A\n"),
    "add a file": lambda r: write(r / "plain/source/sub/new.txt", "new\n"),
    "remove a file": lambda r: (r / "plain/source/sub/b.txt").unlink(),
    "chmod a file": lambda r: (r / "plain/source/a.txt").chmod(0o755),
    "edit a recipe": lambda r: write(r / "plain/recipe.toml", "[build]\ntemplate = \"cargo\"\n"),
    "add a recipe": lambda r: write(r / "another/recipe.toml", "[build]\ntemplate = \"custom\"\n"),
    "edit a clean file of a git source": lambda r: write(r / "gitty/source/clean.txt", "changed\n"),
    "edit a dirty file of a git source again": lambda r: write(r / "gitty/source/dirty.txt", "v3\n"),
    "add an untracked file to a git source": lambda r: write(r / "gitty/source/untracked.txt", "u\n"),
    "commit in a git source": lambda r: git(r / "gitty/source", "commit", "-qam", "two"),
    "edit in an untracked repository inside a git source": lambda r: write(r / "gitty/source/nested/inner.txt", "x\n"),
    "edit a symlinked source": lambda r: write(r.parent / "checkout/main.rs", "fn main() { panic!() }\n"),
}


def test_evidence_holds_while_nothing_changes(zone, trusted):
    spec = Spec(zones=[str(zone)])
    evidence = evidence_of(spec)
    assert evidence.changes() == []
    seen = evidence.seen
    assert seen[bytes(zone / "plain/source/a.txt")] == observe_module.stat_print(os.lstat(zone / "plain/source/a.txt"))
    # The git source is known by its status and its dirty file, not by a walk of its clean files.
    assert f"\0git\0{zone / 'gitty/source'}" in seen and bytes(zone / "gitty/source/dirty.txt") in seen
    assert bytes(zone / "gitty/source/clean.txt") not in seen
    assert bytes(zone.parent / "checkout/main.rs") in seen  # a linked source: by its real path


@pytest.mark.parametrize("change", CHANGES.keys())
def test_every_kind_of_change_is_seen(zone, trusted, change):
    evidence = evidence_of(Spec(zones=[str(zone)]))
    CHANGES[change](zone)
    assert evidence.changes() != []


@pytest.mark.parametrize("change", CHANGES.keys())
def test_every_kind_of_change_is_seen_by_an_observer_that_knows_the_listings(zone, monkeypatch, change):
    """A directory whose stat is unchanged is not listed again (Observer._list): its entries come from the previous
    listing. Every change is still seen (a short racy window, waited out, so that the listings are trusted)."""
    monkeypatch.setattr(observe_module, "RACY_WINDOW_NS", 50_000_000)
    time.sleep(0.1)
    spec = Spec(indexes=[str(zone)], zones=[str(zone)])
    first = Observer()
    evidence = Evidence(spec, first.observe(spec), tasks=1, listings=first.listings)
    assert bytes(zone / "plain/source") in evidence.listings  # trusted, so kept
    listed, scandir = [], os.scandir
    monkeypatch.setattr(os, "scandir", lambda path: listed.append(path) or scandir(path))
    again = Observer(listings=evidence.listings)
    assert again.observe(spec) == evidence.seen and again.listings == evidence.listings
    assert bytes(zone / "plain/source") not in listed and bytes(zone) not in listed  # known, not listed again
    CHANGES[change](zone)
    assert evidence.changes() != []


def test_the_recipe_index_sees_recipes_come_and_go_and_nothing_inside_them(zone, trusted):
    spec = Spec(indexes=[str(zone)])
    seen = evidence_of(spec).seen
    assert bytes(zone / "plain/recipe.toml") in seen and bytes(zone / "plain/source/a.txt") not in seen
    write(zone / "plain/source/new.txt", "inside a recipe: the graph's recipes are observed whole, by the build\n")
    write(zone / "README.md", "not a recipe\n")
    assert evidence_of(spec).seen == seen
    for change in (lambda: write(zone / "wip/newcomer/recipe.toml", "[build]\ntemplate = \"custom\"\n"),
                   lambda: (zone / "empty-category").mkdir(),
                   lambda: write(zone / "plain/recipe.toml", "[build]\ntemplate = \"cargo\"\n"),
                   lambda: (zone / "linked/recipe.toml").unlink()):
        evidence = evidence_of(spec)
        change()
        assert evidence.changes() != []


def test_a_symlinked_file_counts_by_its_target(tmp_path, trusted):
    patch = write(tmp_path / "patches/fix.patch", "--- a\n+++ b\n")
    (write(tmp_path / "recipe/recipe.toml", "").parent / "fix.patch").symlink_to(patch)
    evidence = evidence_of(Spec(zones=[str(tmp_path / "recipe")]))
    patch.write_text("--- a\n+++ c\n")
    assert evidence.changes() == [f"{tmp_path / 'recipe/fix.patch'} target"]


def test_two_links_to_one_source_are_observed_alike_whichever_is_met_first(tmp_path, trusted):
    """base-initfs/source and bootstrap/source both lead to base's source (same_as): the zones' order differs
    between the run that leaves evidence and the next one, which must still find nothing changed (the real tree's
    second no-op said 2,090 files of base had changed)."""
    recipes = tmp_path / "recipes"
    write(recipes / "base/source/src/main.rs", "fn main() {}\n")
    for name in ("base-initfs", "bootstrap"):
        write(recipes / name / "recipe.toml", '[source]\nsame_as = "../base"\n')
        (recipes / name / "source").symlink_to("../base/source")
    zones = [str(recipes / name) for name in ("base", "base-initfs", "bootstrap")]
    evidence = evidence_of(Spec(zones=zones))
    assert Evidence(Spec(zones=zones[::-1]), evidence.seen, tasks=1).changes() == []
    write(recipes / "base/source/src/main.rs", "fn main() { edited() }\n")
    assert Evidence(Spec(zones=zones[::-1]), evidence.seen, tasks=1).changes() == [
        str(recipes / "base/source/src/main.rs")]


def test_ignored_and_generated_files_do_not_count(zone, trusted):
    code = write(zone.parent / "code/module.py", "x = 1\n").parent
    evidence = evidence_of(Spec(zones=[str(zone)], code_zones=[str(code)]))
    write(zone / "gitty/source/ignored/build.o", "object\n")  # git ignores it, so does the engine's tree hash
    write(zone / "plain/source/target/CACHEDIR.TAG", "Signature: 8a477f597d28d172789f06886806bc55\n")  # cargo's
    write(zone / "plain/source/target/debug/app", "binary\n")
    write(code / "__pycache__/module.cpython-311.pyc", "bytecode\n")
    assert evidence.changes() == []


def test_a_recently_written_file_is_compared_by_content(tmp_path):
    path = write(tmp_path / "zone/fresh.txt", "one\n")
    evidence = evidence_of(Spec(zones=[str(tmp_path / "zone")]))
    assert evidence.seen[bytes(path)][0] == "content"  # its timestamp tick may not be over: its stat proves nothing
    os.utime(path)  # a new stat, the same content
    assert evidence.changes() == []
    path.write_text("two\n")  # same size
    assert evidence.changes() == [str(path)]


def test_too_many_recent_files_leave_no_evidence(tmp_path, monkeypatch):
    monkeypatch.setattr(observe_module, "RACY_READS", 3)
    for number in range(5):
        write(tmp_path / f"zone/{number}.txt", "x\n")
    with pytest.raises(TooManyRacyFiles):
        Observer().observe(Spec(zones=[str(tmp_path / "zone")]))


def test_files_environment_commands_outputs_and_state_are_observed(tmp_path, trusted, monkeypatch):
    single = write(tmp_path / "key.toml", "key\n")
    output = write(tmp_path / "out/stage/file", "built\n")
    script = write(tmp_path / "tool", "#!/bin/sh\ncat \"$(dirname \"$0\")/version\"\n")
    script.chmod(0o755)
    write(tmp_path / "version", "1.0\n")
    state = StateStore(tmp_path / "state.sqlite")
    state.record("cook:x", Signature({"a": "1"}), "hash", [output])
    monkeypatch.setenv("RUSTFLAGS", "-O")
    spec = Spec(files=[str(single), str(tmp_path / "missing.toml")], env=["RUSTFLAGS"], probes=[[str(script)]],
                outputs=[str(output)], state=str(state.path))
    checks = {
        "file": lambda: single.write_text("other key\n"),
        "missing file": lambda: write(tmp_path / "missing.toml", "now here\n"),
        "env": lambda: monkeypatch.setenv("RUSTFLAGS", "-C opt-level=1"),
        "probe": lambda: write(tmp_path / "version", "2.0\n"),
        "output": lambda: output.unlink(),
        "state": lambda: state.record("cook:y", Signature({"b": "2"}), "hash", []),
    }
    for name, change in checks.items():
        evidence = evidence_of(spec)
        assert evidence.changes() == [], name
        change()
        assert evidence.changes() != [], name


def test_a_command_a_signature_reads_is_taken_from_the_probe_observed_a_moment_ago(tmp_path):
    """The host compiler's version (``rustc -vV``) is a probe of the evidence and an input of the host toolchain's
    fingerprint: the run after an edit runs it once (observe.probed), and a failed probe is not taken."""
    counter = tmp_path / "runs"
    tool = write(tmp_path / "tool", f"#!/bin/sh\necho run >> {counter}\necho version 1\n")
    tool.chmod(0o755)
    failing = [sys.executable, "-c", "raise SystemExit(3)"]
    Observer().observe(Spec(probes=[[str(tool)], failing]))
    assert observe_module.probed([str(tool)]) == "version 1\n" and counter.read_text() == "run\n"
    assert observe_module.probed(failing) is None and observe_module.probed(["never-run"]) is None


def test_the_entry_points_answer_imports_only_light_modules(tree):
    """A no-op's cost is its imports as much as its stats (issue 21): the answer before doit imports neither doit
    nor the build's libraries nor the standard library's heavier modules."""
    build(tree)
    script = ("import sys\nfrom tasks.cli.invocation import answer_before_doit\n"
              "assert answer_before_doit(sys.argv[1:])\nprint(sorted(sys.modules))")
    result = subprocess.run([sys.executable, "-c", script, *doit_command(tree, "pkg")[1:]], cwd=PROJECT,
                            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(PROJECT)},
                            timeout=120)
    assert result.returncode == 0 and ANSWERED in result.stdout, result.stdout + result.stderr
    imported = set(ast.literal_eval(result.stdout.splitlines()[-1]))
    heavy = {"doit", "pydantic", "jinja2", "sh", "dataclasses", "typing", "json", "concurrent.futures", "inspect",
             "tomllib", "difflib", "tasks.engine.evidence", "tasks.engine.treehash"}
    assert imported & heavy == set()


# --- through doit --------------------------------------------------------------------------------------------


def run(root: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(doit_command(root, *args), cwd=PROJECT, capture_output=True, text=True,
                            env={**os.environ, **(env or {})}, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_a_repeated_run_is_answered_from_evidence_and_writes_nothing(tree):
    assert build(tree) == ALL
    files = {path: path.stat().st_mtime_ns for path in (tree / "build").rglob("*") if path.is_file()}
    again = run(tree, "pkg")
    assert ANSWERED in again.stdout and executed(again.stdout) == set()
    assert again.stdout.count("\n") == 1  # the one line says it all: no "-- pkg" after it (issue 20, item 8)
    assert {path: path.stat().st_mtime_ns for path in (tree / "build").rglob("*") if path.is_file()} == files


def test_evidence_answers_only_the_invocation_it_was_left_by(tree):
    build(tree)
    other_target = run(tree, "pkg:app")
    assert ANSWERED not in other_target.stdout and executed(other_target.stdout) == set()
    assert ANSWERED in run(tree, "pkg:app").stdout
    assert ANSWERED not in run(tree, "list").stdout  # other commands load dodo.py as always
    everything = run(tree, "-a", "pkg")  # --always-execute is never answered from evidence
    assert executed(everything.stdout) == ALL


def test_another_invocations_build_in_between_is_seen(tree):
    """The state's generation: `doit cook:other` with RUSTFLAGS recorded another signature for cook:other, so
    `doit pkg` without it must run it again, although no file of the tree changed and its own evidence says so."""
    build(tree)
    assert ANSWERED in run(tree, "pkg").stdout
    assert build(tree, "cook:other", env={"RUSTFLAGS": "-C opt-level=1"}) == {"cook:other"}
    again = run(tree, "pkg")
    assert executed(again.stdout) == {"cook:other"}  # back to its first output: pkg:other stays current
    # the other build's state and the output it rebuilt (its stage: written since this invocation's evidence)
    assert ("checking every task: the build state (another command built, cleaned or forgot tasks) and 1 more "
            "changed since") in again.stdout
    assert ANSWERED in run(tree, "pkg").stdout


def test_a_deleted_output_and_a_new_recipe_are_seen(tree):
    build(tree)
    run(tree, "pkg")
    shutil.rmtree(stage(tree, "other"))
    rebuilt = run(tree, "pkg")
    assert executed(rebuilt.stdout) == {"cook:other"}  # its stage comes out as before: its package stays current
    assert f"checking 3 of 8 tasks: {stage(tree, 'other')} changed since the last run" in rebuilt.stdout
    # A recipe of the same name earlier in sorted order takes over "lib" (with a warning). Its script differs by a
    # line, its stage does not: its cook and its package (which records the recipe) run, nothing after them.
    write(tree / "recipes/a/lib/recipe.toml", (tree / "recipes/lib/recipe.toml").read_text().replace(
        "sleep", "true\nsleep"))
    (tree / "recipes/a/lib/source").symlink_to(tree / "recipes/lib/source")
    assert build(tree) == {"cook:lib", "pkg:lib"}


@pytest.mark.slow
def test_whenever_evidence_answers_the_long_way_agrees(tree):
    """Random edits, seeded: each run answered from evidence is checked against the long way (the evidence removed:
    it must find nothing to do), and each run that took the long way must leave evidence that answers the next."""
    rng = random.Random(20261122)
    env: dict[str, str] = {}
    sources = [tree / "recipes/lib/source/data.txt", tree / "recipes/lib/source/notes.txt",
               tree / "recipes/app/source/app.txt", tree / "recipes/other/source/other.txt"]
    operations = {
        "edit": lambda: (path := rng.choice(sources)).write_text(path.read_text() + "x\n"),
        "touch": lambda: os.utime(rng.choice(sources)),
        "same content": lambda: (path := rng.choice(sources)).write_text(path.read_text()),
        "chmod": lambda: (path := rng.choice(sources)).chmod(path.stat().st_mode ^ 0o100),
        "new file": lambda: write(tree / f"recipes/other/source/new{rng.randrange(1000)}.txt", "new\n"),
        "comment": lambda: (path := tree / "recipes/app/recipe.toml").write_text(path.read_text() + "# note\n"),
        "new recipe": lambda: write(tree / f"recipes/extra/e{rng.randrange(1000)}/recipe.toml", "[build]\n"
                                    "template = \"custom\"\nscript = \"true\"\n"),
        "env": lambda: env.update(RUSTFLAGS=rng.choice(["", "-O", "-C opt-level=1"])),
        "output gone": lambda: shutil.rmtree(stage(tree, rng.choice(["lib", "app", "other"])), ignore_errors=True),
        "other target": lambda: run(tree, rng.choice(["cook:lib", "pkg:app", "cook:other"]), env=env),
        "nothing": lambda: None,
    }
    build(tree)
    steps = sorted(operations) * 3  # each kind of change three times, in a seeded order
    rng.shuffle(steps)
    for step, name in enumerate(steps):
        operations[name]()
        first = run(tree, "pkg", env=env)
        if ANSWERED in first.stdout:
            for path in (tree / "build/cache/evidence").iterdir():
                path.unlink()
            assert executed(run(tree, "pkg", env=env).stdout) == set(), f"step {step}: {name} was not seen"
        else:
            assert ANSWERED in run(tree, "pkg", env=env).stdout, f"step {step}: {name} left no evidence"


EDITOR = '''[build]
template = "custom"
dependencies = ["lib"]
script = """
mkdir -p "$COOKBOOK_STAGE/usr/share/editor"
cp "$COOKBOOK_SOURCE/editor.txt" "$COOKBOOK_STAGE/usr/share/editor/"
if [ -n "$EDIT_LIB_WHILE_BUILDING" ]; then
    echo "edited during the build" >> "$COOKBOOK_ROOT/recipes/lib/source/data.txt"
fi
"""
'''


def test_an_edit_made_while_the_build_runs_is_seen_next_time(tree):
    """The inputs are observed before any task reads them: a source edited after its task was found current (here by
    another recipe's build script, so the moment is certain) makes the evidence that run leaves not hold."""
    write(tree / "recipes/editor/recipe.toml", EDITOR)
    write(tree / "recipes/editor/source/editor.txt", "one\n")
    write(tree / "config/c.toml", '[packages]\napp = {}\nother = {}\neditor = {}\n')
    build(tree)
    write(tree / "recipes/editor/source/editor.txt", "two\n")  # so that the editor's script runs, after cook:lib
    assert build(tree, env={"EDIT_LIB_WHILE_BUILDING": "1"}) == {"cook:editor", "pkg:editor"}
    after = run(tree, "pkg")
    assert ANSWERED not in after.stdout
    assert {"cook:lib", "pkg:lib"} <= executed(after.stdout)

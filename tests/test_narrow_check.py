"""The check after an edit (tasks.engine.narrow): only what the edit reaches is loaded and judged, and it rebuilds
exactly what the full check rebuilds.

Two copies of one tree are built alike; each case applies the same change to both, then builds one the narrowed way
(the default) and the other with ``REDOX_CHECK=full`` (every task loaded and checked, as before), and compares what
ran, what each run said it did, and what the next run finds (nothing to do: the evidence either left holds). The
builds are real doit processes on small bash recipes for the host; the build system's code is a copy, so that one
case can edit it.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tasks.engine.evidence import Evidence, Plan, Spec
from tasks.engine.narrow import NotNarrow, edit_of, reached
from tasks.settings import host_triple
from tests.conftest import PROJECT
from tests.test_incremental import executed
from tests.trees import bash_recipes_tree, make_tree

NARROWED, FULL, ANSWERED = "narrowed", "full", "nothing changed since"

DOCS = '''[source]
same_as = "../lib"
[build]
template = "custom"
script = """
mkdir -p "$COOKBOOK_STAGE/usr/share/docs"
cp "$COOKBOOK_SOURCE/notes.txt" "$COOKBOOK_STAGE/usr/share/docs/"
"""
'''
LINKED = '''[build]
template = "custom"
dependencies = ["app"]
script = """
mkdir -p "$COOKBOOK_STAGE/usr/share/linked"
cat "$COOKBOOK_SOURCE/main.txt" "$COOKBOOK_SYSROOT/usr/share/app/out.txt" > "$COOKBOOK_STAGE/usr/share/linked/out"
"""
'''
PLAIN = '''[build]
template = "custom"
script = """
mkdir -p "$COOKBOOK_STAGE/usr/share/{name}"
echo {name} > "$COOKBOOK_STAGE/usr/share/{name}/file"
"""
'''


def make(root: Path) -> Path:
    """lib; app (needs lib); other; docs (lib's source, by same_as); linked (a source outside the tree, needs app);
    and a few that nothing touches."""
    bash_recipes_tree(root)
    make_tree(root, {"docs": DOCS, "linked": LINKED, **{f"quiet/q{n}": PLAIN.format(name=f"q{n}") for n in range(4)}})
    checkout = root.parent / f"{root.name}-checkout"
    checkout.mkdir()
    (checkout / "main.txt").write_text("linked source\n")
    (root / "recipes/linked/source").symlink_to(checkout)
    (root / "config/c.toml").write_text("[packages]\n" + "".join(
        f"{name} = {{}}\n" for name in ("app", "other", "docs", "linked", "q0", "q1", "q2", "q3")))
    return root


@pytest.fixture(scope="module")
def code(tmp_path_factory) -> Path:
    """A copy of the build system, so that a case can edit its code."""
    copy = tmp_path_factory.mktemp("code")
    shutil.copytree(PROJECT / "tasks", copy / "tasks", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("dodo.py", "pyproject.toml"):
        shutil.copy(PROJECT / name, copy / name)
    return copy


ENVIRONMENT: dict[str, str] = {}  # what the environment case sets for every later run


def doit(code: Path, root: Path, *args: str, full: bool = False) -> subprocess.CompletedProcess:
    env = {**os.environ, **ENVIRONMENT, "PYTHONPATH": str(code), "REDOX_CHECK": "full" if full else ""}
    result = subprocess.run([str(Path(sys.executable).parent / "doit"), "-f", str(code / "dodo.py"), *args,
                             f"root={root}", "config=config/c.toml", f"target={host_triple()}"],
                            cwd=code, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def mode_of(output: str) -> str:
    """How the run checked: its first line says."""
    line = output.splitlines()[0]
    if line.startswith(ANSWERED):
        return ANSWERED
    if line.startswith("checking every task: "):
        return FULL
    assert re.match(r"checking [\d,]+ of [\d,]+ tasks: ", line), line
    return NARROWED


def counts(output: str) -> tuple[int, int]:
    """How many tasks ran, and how many the run found (or knew) up to date."""
    if output.startswith(ANSWERED):
        return 0, int(re.search(r": ([\d,]+) tasks up to date", output)[1].replace(",", ""))
    ran, current = re.fullmatch(r"([\d,]+) tasks? run, ([\d,]+) up to date", output.splitlines()[-1]).groups()
    return int(ran.replace(",", "")), int(current.replace(",", ""))


def stage_dir(root: Path, recipe: str) -> Path:
    return root / "build" / host_triple() / "recipes" / recipe / "stage"


def package(root: Path, recipe: str) -> Path:
    return root / "build" / "cookbook" / "repo" / host_triple() / f"{recipe}.pkgar"


def append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


Change = Callable[[Path, Path], None]  # (the tree, the build system's code)
CASES: dict[str, tuple[Change, str]] = {
    # an edit inside a recipe's files reaches its tasks and what needs them; early cutoff stops the rest
    "a source file": (lambda root, code: append(root / "recipes/lib/source/data.txt", "more\n"), NARROWED),
    "a source file no build reads": (lambda root, code: append(root / "recipes/lib/source/notes.txt", "x\n"),
                                     NARROWED),
    "a file beside a recipe": (lambda root, code: (root / "recipes/other/extra.txt").write_text("x\n"), NARROWED),
    "a source outside the tree": (lambda root, code: append(root.parent / f"{root.name}-checkout/main.txt", "y\n"),
                                  NARROWED),
    # (its stat was recorded, or its content when it was written shortly before: either way nothing to run)
    "a file touched, not changed": (lambda root, code: os.utime(root / "recipes/app/source/app.txt"),
                                    f"{NARROWED}|{ANSWERED}"),
    "a deleted output": (lambda root, code: shutil.rmtree(stage_dir(root, "other")), NARROWED),
    "an output written by hand": (lambda root, code: package(root, "app").write_bytes(b"by hand"), NARROWED),
    # these may change any task
    "a recipe": (lambda root, code: append(root / "recipes/app/recipe.toml", "# a note\n"), FULL),
    "a config": (lambda root, code: (config := root / "config/c.toml").write_text(
        config.read_text().replace("q2 = {}\n", "")), FULL),
    "a new recipe": (lambda root, code: (root / "recipes/quiet/q9").mkdir() or (
        root / "recipes/quiet/q9/recipe.toml").write_text(PLAIN.format(name="q9")), FULL),
    "the build system's code": (lambda root, code: append(code / "tasks/stages/pkg.py", "# an edit\n"), FULL),
    "the environment": (lambda root, code: ENVIRONMENT.update(RUSTFLAGS="-C opt-level=1"), FULL),  # other's output
}


@pytest.mark.slow
def test_the_narrowed_check_rebuilds_exactly_what_the_full_check_rebuilds(tmp_path, code):
    ENVIRONMENT.clear()
    narrowed, full = make(tmp_path / "narrowed"), make(tmp_path / "full")
    for root in (narrowed, full):
        doit(code, root, "pkg")
        doit(code, root, "pkg")  # docs/source, the link its fetch made, is new to the first build's evidence
        assert ANSWERED in doit(code, root, "pkg").stdout
    for case, (change, mode) in CASES.items():
        change(narrowed, code)
        if case not in ("the build system's code", "the environment"):  # one copy of the code, one environment
            change(full, code)
        first = doit(code, narrowed, "pkg")
        assert mode_of(first.stdout) in mode.split("|"), f"{case}: {first.stdout}"
        checked = doit(code, full, "pkg", full=True)
        assert mode_of(checked.stdout) in (FULL, ANSWERED), case
        assert executed(first.stdout) == executed(checked.stdout), case
        assert counts(first.stdout) == counts(checked.stdout), case
        for root in (narrowed, full):
            assert ANSWERED in doit(code, root, "pkg").stdout, f"{case}: no evidence left"
        linked = "usr/share/linked/out"  # at the end of the chain: lib, app, linked
        assert (stage_dir(narrowed, "linked") / linked).read_text() == (stage_dir(full, "linked") / linked).read_text()
    ENVIRONMENT.clear()


def test_a_source_edit_loads_only_its_tasks_and_what_needs_them(tmp_path, code):
    root = make(tmp_path / "tree")
    doit(code, root, "pkg")
    doit(code, root, "pkg")
    append(root / "recipes/lib/source/data.txt", "more\n")
    first = doit(code, root, "pkg")
    # lib's cook and package; docs builds from lib's source (same_as): its cook, which comes out the same, and its
    # package, judged after it; app and linked read lib's stage: their cooks and packages; and the group pkg. Not
    # other and the quiet ones.
    assert first.stdout.splitlines()[0].startswith("checking 9 of ")
    assert executed(first.stdout) == {"cook:lib", "pkg:lib", "cook:docs", "cook:app", "pkg:app", "cook:linked",
                                      "pkg:linked"}
    assert first.stdout.splitlines()[-1] == "7 tasks run, 15 up to date"  # as the full check counts them
    # a file lib's build does not read: lib's cook comes out the same (nothing after it runs); docs' does not
    append(root / "recipes/lib/source/notes.txt", "more\n")
    assert executed(doit(code, root, "pkg").stdout) == {"cook:lib", "cook:docs", "pkg:docs"}


# --- the plan, without doit ------------------------------------------------------------------------------------------

PLAN = Plan(deps={"pkg": ["pkg:a", "pkg:b"], "pkg:a": ["cook:a"], "pkg:b": ["cook:b"], "cook:a": ["toolchain"],
                  "cook:b": ["cook:a", "toolchain"], "toolchain": []},
            readers={"a": ["cook:a", "pkg:a"], "b": ["cook:b", "pkg:b"]},
            zones={b"/t/recipes/a": ["a"], b"/t/recipes/b": ["b"], b"/elsewhere/b-source": ["b"]},
            pipeline=["toolchain"], owners=["cook:a", "cook:b", "pkg:a", "pkg:b"])


def evidence(changed_outputs: tuple[str, ...] = ()) -> Evidence:
    outputs = ["/o/cook-a", "/o/cook-b", "/o/a.pkgar", "/o/b.pkgar"]
    seen = {"\0outputs": tuple(outputs)}
    latest = {"\0outputs": tuple("gone" if path in changed_outputs else path for path in outputs)}
    return Evidence(Spec(outputs=outputs), seen, tasks=6, plan=PLAN, latest=latest)


@pytest.mark.parametrize("key, recipes", [
    (b"/t/recipes/a/source/main.rs", {"a"}),
    (b"/t/recipes/b/fix.patch\0target", {"b"}),
    ("\0git\0/elsewhere/b-source", {"b"}),
    (b"/elsewhere/b-source/src/lib.rs", {"b"}),
])
def test_a_changed_file_is_owned_by_its_recipe(key, recipes):
    assert edit_of(evidence(), [key]).recipes == recipes


@pytest.mark.parametrize("key", [b"/t/recipes/a/recipe.toml", b"/t/config/desktop.toml", b"/t/recipes/new",
                                 "\0env\0RUSTFLAGS", "\0probe\0rustc\0-vV", "\0generation"])
def test_a_change_that_may_reach_any_task_is_not_narrowed(key):
    with pytest.raises(NotNarrow):
        edit_of(evidence(), [key])


def test_a_changed_output_is_owned_by_the_task_that_wrote_it():
    edit = edit_of(evidence(changed_outputs=("/o/b.pkgar",)), ["\0outputs"])
    assert edit.outputs == {"pkg:b"} and edit.candidates(PLAN) == {"pkg:b", "toolchain"}


def test_what_is_loaded_stops_where_the_candidates_are_current():
    everything_stale = reached(PLAN, ["pkg"], {"cook:a", "pkg:a", "toolchain"}, lambda task: task == "toolchain")
    assert everything_stale == ["cook:a", "pkg:a", "cook:b", "pkg:b", "pkg"]
    assert reached(PLAN, ["pkg"], {"cook:a", "pkg:a", "toolchain"}, lambda task: True) == []
    assert reached(PLAN, ["pkg:a"], {"cook:a", "pkg:a", "toolchain"}, lambda task: task != "pkg:a") == ["pkg:a"]

"""doit clean, forget and unfetch through the real CLI (issue 13): outputs and records gone, nothing else; the next
run rebuilds exactly what was cleaned or forgotten; a fetched source goes only when it is as it was fetched."""
from __future__ import annotations

import io
import os
import subprocess
import tarfile

import blake3
import pytest

from tests.conftest import PROJECT
from tests.test_incremental import ALL, build, doit_command, executed, stage
from tests.trees import bash_recipes_tree


def doit(root, *args):
    return subprocess.run(doit_command(root, *args), cwd=PROJECT, capture_output=True, text=True, env=os.environ,
                          timeout=300)


@pytest.fixture
def tree(tmp_path):
    root = bash_recipes_tree(tmp_path / "tree")
    assert build(root) == ALL
    return root


def records(root) -> set[str]:
    from tasks.engine import StateStore
    state = StateStore(root / "build/engine/state.sqlite")
    try:
        return set(state.tasks())
    finally:
        state.close()


def test_clean_removes_a_tasks_outputs_and_record_and_the_next_run_rebuilds_exactly_it(tree):
    result = doit(tree, "clean", "cook:lib")
    assert result.returncode == 0, result.stderr
    assert f"  cook:lib: removed {stage(tree, 'lib').parent}" in result.stdout
    assert not stage(tree, "lib").exists() and "cook:lib" not in records(tree)
    assert (tree / "recipes/lib/source/data.txt").exists()  # the source stays
    assert build(tree) == {"cook:lib"}  # its stage comes out as before: nothing downstream runs


def test_clean_of_a_group_and_of_everything_keeps_sources_and_says_what_it_removed(tree):
    result = doit(tree, "clean", "pkg")
    assert result.returncode == 0, result.stderr
    assert not list((tree / "build/cookbook/repo").rglob("*.pkgar")) and stage(tree, "lib").exists()
    assert {"pkg:lib", "pkg:app", "pkg:other"}.isdisjoint(records(tree))
    assert build(tree) == {"pkg:lib", "pkg:app", "pkg:other"}
    sources = sorted(path for path in (tree / "recipes").rglob("*"))
    dry = doit(tree, "clean", "--dry-run")
    assert dry.returncode == 0 and dry.stdout.startswith("clean: would remove the outputs of ")
    assert records(tree) >= ALL and stage(tree, "app").exists()  # a dry run removes nothing
    everything = doit(tree, "clean")
    assert everything.returncode == 0 and everything.stdout.startswith("clean: removing the outputs of ")
    assert records(tree) == set() and not stage(tree, "app").exists()
    assert sorted(path for path in (tree / "recipes").rglob("*")) == sources
    assert build(tree) == ALL


def test_forget_removes_nothing_and_the_task_runs_again(tree):
    before = stage(tree, "other").stat().st_mtime_ns
    result = doit(tree, "forget", "cook:other")
    assert result.returncode == 0 and result.stdout == "forgot cook:other: it runs again next time\n"
    assert stage(tree, "other").stat().st_mtime_ns == before
    assert build(tree) == {"cook:other"}


def test_a_misspelt_task_gets_did_you_mean(tree):
    for command in ("clean", "forget"):
        result = doit(tree, command, "cook:othr")
        assert result.returncode != 0
        assert "no task 'cook:othr' with a build record (did you mean 'cook:other'?)" in result.stderr
    run = doit(tree, "imag")
    assert run.returncode != 0 and "no task 'imag' (did you mean 'image'?)" in run.stderr
    assert "Traceback" not in run.stderr


def tar_recipe(tmp_path, root) -> None:
    archive = tmp_path / "hello.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("hello-1.0/hello.txt")
        info.size = 6
        tar.addfile(info, io.BytesIO(b"hello\n"))
    (root / "recipes/fetched").mkdir()
    (root / "recipes/fetched/recipe.toml").write_text(
        f'[source]\ntar = "{archive.as_uri()}"\nblake3 = "{blake3.blake3(archive.read_bytes()).hexdigest()}"\n'
        '[build]\ntemplate = "custom"\nscript = "mkdir -p $COOKBOOK_STAGE/x"\n')
    config = root / "config/c.toml"
    config.write_text(config.read_text() + "fetched = {}\n")


def test_unfetch_removes_a_fetched_source_and_never_a_local_or_edited_one(tree, tmp_path):
    tar_recipe(tmp_path, tree)
    assert "fetch:fetched" in build(tree)
    source = tree / "recipes/fetched/source"
    (source / "hello.txt").write_text("edited\n")
    refused = doit(tree, "unfetch", "fetched")
    assert refused.returncode == 0 and "was edited since it was fetched: left as it is (--force removes it)" in \
        refused.stdout and (source / "hello.txt").read_text() == "edited\n"
    forced = doit(tree, "unfetch", "--force", "fetched")  # options before the names, as doit parses them
    assert "fetched: removed" in forced.stdout and not source.exists()
    assert build(tree) == {"fetch:fetched"}  # the same content again: nothing it feeds runs
    assert (source / "hello.txt").read_text() == "hello\n"
    gone = doit(tree, "unfetch", "fetched")
    assert "fetched: removed" in gone.stdout and not source.exists()
    local = doit(tree, "unfetch", "lib")
    assert local.returncode != 0 and "no recipe 'lib' with a source in this config" in local.stderr
    assert (tree / "recipes/lib/source/data.txt").exists()


def test_list_status_of_a_group_says_whether_every_task_in_it_is_current(tree):
    def status() -> dict[str, str]:
        result = doit(tree, "list", "--status")
        assert result.returncode == 0, result.stderr
        return {line.split()[1]: line.split()[0] for line in result.stdout.splitlines()}
    assert {status()[group] for group in ("cook", "pkg")} == {"U"}
    (tree / "recipes/lib/source/data.txt").write_text("changed\n")
    assert status()["cook"] == "R" and status()["pkg"] == "U"  # pkg:lib runs only if cook:lib's output changes


def test_graph_draws_the_tasks_and_marks_the_stale_ones(tree):
    (tree / "recipes/lib/source/data.txt").write_text("changed\n")
    dot = doit(tree, "graph", "--format=dot", "pkg:app")
    assert dot.returncode == 0, dot.stderr
    assert '"cook:lib" [fillcolor="#ffb366"];' in dot.stdout  # stale
    assert '"pkg:app" [fillcolor="#d9f2d9"];' in dot.stdout and '"cook:app" -> "cook:lib";' in dot.stdout
    assert '"cook:lib" -> "toolchain" [style=dashed];' in dot.stdout and "pkg:other" not in dot.stdout
    picture = doit(tree, "graph", "pkg")
    assert picture.returncode == 0 and picture.stdout == f"graph of 7 tasks: {tree}/build/graph.svg\n"
    svg = (tree / "build/graph.svg").read_text()
    assert svg.startswith("<?xml") and "cook:other" in svg and "#ffb366" in svg


def test_share_copies_a_recipes_programs_into_share_with_their_modes_set_on_the_host(tree):
    (tree / "recipes/tool").mkdir()
    (tree / "recipes/tool/recipe.toml").write_text(
        '[build]\ntemplate = "custom"\nscript = """\nmkdir -p "$COOKBOOK_STAGE/usr/bin"\n'
        'printf \'#!/bin/sh\\necho shared\\n\' > "$COOKBOOK_STAGE/usr/bin/tool"\n"""\n')
    config = tree / "config/c.toml"
    config.write_text(config.read_text() + "tool = {}\n")
    result = doit(tree, "share:tool")
    assert result.returncode == 0, result.stderr
    shared = tree / "share/tool"
    assert shared.read_text() == "#!/bin/sh\necho shared\n" and shared.stat().st_mode & 0o777 == 0o755
    assert "share:tool" not in executed(doit(tree, "pkg").stdout)  # only when asked for


def _tool_recipe(tree, script: str) -> None:
    (tree / "recipes/tool").mkdir()
    (tree / "recipes/tool/recipe.toml").write_text(
        f'[build]\ntemplate = "custom"\nscript = """\nmkdir -p "$COOKBOOK_STAGE/usr/bin"\n{script}\n"""\n')
    config = tree / "config/c.toml"
    config.write_text(config.read_text() + "tool = {}\n")


def test_share_copies_no_host_file_a_stage_links_to(tree, tmp_path):
    """A recipe's stage with bin/ entries linking out (/etc/shadow, a file beside the tree): share: copied the host
    file into share/, mode 0755 (issue 19, item 2); a link inside the stage still shares its program."""
    secret = tmp_path / "secret"
    secret.write_text("host secret\n")
    _tool_recipe(tree, f'echo program > "$COOKBOOK_STAGE/usr/bin/tool"\nln -s tool "$COOKBOOK_STAGE/usr/bin/alias"\n'
                       f'ln -s /etc/shadow "$COOKBOOK_STAGE/usr/bin/shadow"\n'
                       f'ln -s ../../../../../../../../../..{secret} "$COOKBOOK_STAGE/usr/bin/secret"')
    result = doit(tree, "share:tool")
    assert result.returncode == 0, result.stderr
    assert sorted(path.name for path in (tree / "share").iterdir()) == ["alias", "tool"]
    assert (tree / "share/alias").read_text() == "program\n"


def test_share_never_writes_through_a_symlinked_share_directory(tree, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tree / "share").symlink_to(elsewhere)
    _tool_recipe(tree, 'echo program > "$COOKBOOK_STAGE/usr/bin/tool"')
    result = doit(tree, "share:tool")
    assert result.returncode != 0 and "Traceback" not in result.stdout + result.stderr
    assert f"{tree}/share: not a directory of the tree (a symlink or a file): nothing is written through it" in \
        result.stdout + result.stderr
    assert list(elsewhere.iterdir()) == []

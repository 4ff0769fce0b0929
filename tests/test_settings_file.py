"""Settings that stick (settings.toml, `doit settings`) and doit from any directory of the project (`rdoit`),
through the real CLI (issue 13)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tasks.settings import host_triple
from tests.conftest import PROJECT
from tests.trees import bash_recipes_tree

DOIT = Path(sys.executable).parent / "doit"
RDOIT = Path(sys.executable).parent / "rdoit"


@pytest.fixture
def tree(tmp_path):
    return bash_recipes_tree(tmp_path / "tree")


@pytest.fixture
def settings_file(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "project-settings" / "settings.toml"
    path.parent.mkdir()
    monkeypatch.setenv("REDOX_BUILD_SETTINGS", str(path))
    return path


def doit(*args: str, program: Path = DOIT, cwd: Path = PROJECT):
    return subprocess.run([str(program), *args], cwd=cwd, capture_output=True, text=True, env=os.environ,
                          timeout=300)


def test_settings_written_once_select_the_tree_and_the_command_line_overrides_them(tree, settings_file):
    written = doit("settings", f"root={tree}", "config=config/c.toml", f"target={host_triple()}")
    assert written.returncode == 0, written.stderr
    assert written.stdout == (f"wrote {settings_file}: root={tree}, config=config/c.toml, "
                              f"target={host_triple()}\n")
    shown = {line.split()[0]: line for line in doit("settings").stdout.splitlines()}
    assert shown["root"] == f"root             {tree}  ({settings_file})"
    assert shown["toolchain"].endswith("(default)") and shown["build"].startswith(f"build            {tree}/build")
    built = doit("pkg")  # no variables: the file's
    assert built.returncode == 0, built.stderr
    assert ".  cook:lib" in built.stdout and (tree / "build/cookbook/repo").is_dir()
    again = doit("pkg", f"build={tree}/other-build")  # the command line wins, for this run only
    assert again.returncode == 0 and ".  cook:lib" in again.stdout and (tree / "other-build").is_dir()
    assert "build            " + str(tree) + "/build" in doit("settings").stdout
    removed = doit("settings", "target=")
    assert removed.stdout == f"wrote {settings_file}: target removed\n" and "target" not in settings_file.read_text()


def test_a_bad_setting_is_refused_before_anything_is_written(settings_file):
    settings_file.write_text('# mine\ntoolchain = "host"\n')
    refused = doit("settings", "toolchain=bogus")
    assert refused.returncode == 3 and "toolchain: Input should be 'pinned' or 'host' (got 'bogus')" in refused.stderr
    assert settings_file.read_text() == '# mine\ntoolchain = "host"\n'
    settings_file.write_text('confg = "x.toml"\n')
    listed = doit("list")
    assert listed.returncode != 0 and "Traceback" not in listed.stderr
    assert f"{settings_file}: confg: not a setting (did you mean config?)" in listed.stderr


def test_rdoit_works_from_any_subdirectory_with_paths_as_typed_there(tree, settings_file):
    here = PROJECT / "tasks" / "cli"
    built = doit("pkg", f"root={os.path.relpath(tree, here)}", "config=config/c.toml", f"target={host_triple()}",
                 program=RDOIT, cwd=here)
    assert built.returncode == 0, built.stderr
    assert ".  cook:lib" in built.stdout and (tree / "build/cookbook/repo").is_dir()
    noop = doit("pkg", f"root={tree}", "config=config/c.toml", f"target={host_triple()}", program=RDOIT,
                cwd=tree / "recipes/lib/source")
    assert noop.returncode == 0 and "nothing changed since the last run" in noop.stdout  # the fast no-op too
    usage = doit("help", program=RDOIT, cwd=tree)
    assert "doit boot " in usage.stdout and "Stages, in pipeline order" in usage.stdout  # the project's commands

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


# (value, the one error line): each refused when saved, the file as it was (issue 19, item 8)
UNSAVABLE = {
    "root missing": ("root={outside}/missing", "root: '{outside}/missing': no such directory"),
    "root without the config": ("root={outside}", "root: no config file at {outside}/config/aarch64/desktop.toml "
                                                  "(give config=FILE with root= when the tree's config is another)"),
    "config climbing to a host file": ("config=../../../../../../../../etc/passwd",
                                       "config: /etc/passwd: line 1, column {column}: invalid TOML: expected '=' "
                                       "after a key in a key/value pair"),
    "config missing": ("config=config/nope.toml", "config: 'config/nope.toml': no config file at "
                                                 "{project}/config/nope.toml"),
    "firmware missing": ("firmware={outside}/QEMU_EFI.fd", "firmware: '{outside}/QEMU_EFI.fd': no such file"),
    "bootloader a directory": ("bootloader={outside}", "bootloader: '{outside}': not a file"),
    "overlay a file": ("overlay={outside}/file", "overlay: '{outside}/file': not a directory"),
    "build under a file": ("build={outside}/file/build", "build: '{outside}/file/build': cannot be created: "
                                                         "{outside}/file is not a writable directory"),
    "rust directory missing": ("rust={outside}/rust", "rust: '{outside}/rust': no such directory"),
    "prebuilt missing": ("prebuilt={outside}/repo", "prebuilt: '{outside}/repo': no such directory"),
}


@pytest.mark.parametrize("case", UNSAVABLE)
def test_a_value_that_cannot_serve_is_refused_when_saved(case, settings_file, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "file").write_text("x")
    settings_file.write_text('# mine\nbackups = 3\n')
    column = next(i for i, char in enumerate(Path("/etc/passwd").read_text()) if char in ":\n") + 1
    fill = {"outside": outside, "project": PROJECT, "column": column}
    value, expected = UNSAVABLE[case]
    refused = doit("settings", value.format(**fill))
    assert refused.returncode == 3 and "Traceback" not in refused.stderr
    assert refused.stderr.splitlines() == [f"ERROR: {expected.format(**fill)}"]
    assert settings_file.read_text() == '# mine\nbackups = 3\n'


def test_a_saved_value_that_fails_later_is_named_with_the_settings_file(settings_file, tmp_path):
    """The value was good when saved; the directory went away, or the file was edited by hand."""
    settings_file.write_text(f'root = "{tmp_path}/gone"\n')
    listed = doit("list")
    assert listed.returncode != 0 and "Traceback" not in listed.stderr
    assert listed.stderr.splitlines()[-1] == (f"ERROR: {settings_file}: root: '{tmp_path}/gone': no such directory "
                                              "(saved by `doit settings`; `doit settings root=` removes it)")
    assert doit("list", f"root={PROJECT}").returncode == 0  # the command line overrides it
    bad_config = tmp_path / "bad.toml"
    bad_config.write_text("[packages\n")
    settings_file.write_text(f'config = "{bad_config}"\n')
    listed = doit("list")
    assert listed.returncode != 0 and listed.stderr.splitlines()[-1] == (
        f"ERROR: {bad_config}: line 1, column 10: invalid TOML: expected ']' at the end of a table declaration "
        f"(config= from {settings_file}, saved by `doit settings`)")


def test_a_build_directory_that_cannot_be_made_is_one_line(tmp_path):
    (tmp_path / "file").write_text("x")
    listed = doit("list", f"build={tmp_path}/file/build")
    assert listed.returncode != 0 and "Traceback" not in listed.stderr
    assert listed.stderr.splitlines()[-1] == (f"ERROR: build={tmp_path}/file/build: cannot create the build "
                                              f"directory: Not a directory")


@pytest.mark.parametrize("program", [RDOIT, DOIT], ids=["rdoit", "doit without a dodo.py there"])
def test_rdoit_works_from_any_subdirectory_with_paths_as_typed_there(tree, settings_file, program):
    """`doit` where there is no dodo.py is rdoit: stock doit said "Could not find dodo file" (issue 20, item 8)."""
    here = PROJECT / "tasks" / "cli"
    built = doit("pkg", f"root={os.path.relpath(tree, here)}", "config=config/c.toml", f"target={host_triple()}",
                 program=program, cwd=here)
    assert built.returncode == 0, built.stderr
    assert ".  cook:lib" in built.stdout and (tree / "build/cookbook/repo").is_dir()
    noop = doit("pkg", f"root={tree}", "config=config/c.toml", f"target={host_triple()}", program=program,
                cwd=tree / "recipes/lib/source")
    assert noop.returncode == 0 and "nothing changed since the last run" in noop.stdout  # the fast no-op too
    usage = doit("help", program=program, cwd=tree)
    assert "doit boot " in usage.stdout and "Stages, in pipeline order" in usage.stdout  # the project's commands

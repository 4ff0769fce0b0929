"""The doit command line on this repository's own tree and on the upstream corpus."""
from __future__ import annotations

import shutil

STAGES = ["toolchain", "relibc", "base", "initfs", "image", "qcow2"]


def test_list_shows_the_stages_with_docs(doit):
    result = doit("list")
    assert result.returncode == 0, result.stderr
    names = {line.split()[0]: line for line in result.stdout.splitlines()}
    for stage in STAGES + ["fetch", "cook", "pkg"]:
        assert stage in names and len(names[stage].split()) > 2, result.stdout
    assert not any(":" in name for name in names)


def test_list_all_has_every_recipe_subtask_of_the_default_config(doit):
    result = doit("list", "--all")
    assert result.returncode == 0, result.stderr
    names = {line.split()[0] for line in result.stdout.splitlines()}
    for recipe in ["relibc", "kernel", "base", "base-initfs", "redoxfs", "ion", "userutils", "uutils"]:
        assert {f"cook:{recipe}", f"pkg:{recipe}"} <= names, recipe
    assert {"fetch:base", "fetch:base-initfs"} <= names  # base-initfs links base's source (same_as)
    assert "cook:bootloader" in names and "fetch:bootloader" not in names  # prebuilt: nothing to fetch


def test_info_shows_a_tasks_inputs(doit):
    result = doit("info", "cook:base-initfs")
    assert result.returncode == 0 and result.stderr == ""
    deps = next(line for line in result.stdout.splitlines() if line.startswith("  depends on: "))
    assert "fetch:base-initfs (order only)" in deps and "cook:redoxfs" in deps
    assert "  status: stale" in result.stdout  # here: the pinned toolchain is not installed, and it says so
    fetch = doit("info", "fetch:base-initfs")
    assert "  depends on: fetch:base\n" in fetch.stdout and "recipes/core/base-initfs/recipe.toml" in fetch.stdout
    inputs = [line.split(" = ")[0].strip() for line in fetch.stdout.splitlines() if " = " in line]
    assert inputs == ["code", "dep:fetch:base", "patches", "source-table"]


def test_list_is_in_pipeline_order_and_help_explains_stages_and_variables(doit):
    listed = [line.split()[0] for line in doit("list").stdout.splitlines()]
    assert listed == ["toolchain", "host-tools", "relibc", "base", "initfs", "image", "qcow2", "fetch", "download",
                      "cook", "pkg", "share"]
    usage = doit("help").stdout
    assert usage.startswith("doit: builds the pure-Rust aarch64 Redox image") and "pydoit.org" not in usage
    assert "(not used here)" not in usage and "doit dumpdb" not in usage  # doit's commands this build does not use
    assert "  doit list              list the tasks of the selected config" in usage
    assert "Stages, in pipeline order" in usage and "  qcow2       Convert the disk image to qcow2" in usage
    assert "config=FILE" in usage and "[default: config/aarch64/desktop.toml]" in " ".join(usage.split())
    stage = doit("help", "initfs")
    assert stage.returncode == 0 and stage.stdout.startswith("initfs  Pack the initfs")
    assert "`doit explain initfs` says why it would run" in stage.stdout
    assert "``" not in stage.stdout and "published as package `initfs`" in " ".join(stage.stdout.split())
    recipe_stage = doit("help", "cook").stdout
    assert "One task per recipe of the config: cook:<recipe>" in recipe_stage and "RUSTFLAGS" in recipe_stage


def test_doits_commands_for_its_own_database_say_why_they_are_not_used(doit):
    for command in ("dumpdb", "ignore", "reset-dep", "strace"):
        result = doit(command)
        assert result.returncode == 3 and "Traceback" not in result.stderr
        assert result.stderr.startswith(f"ERROR: doit {command} is not used by this build: "), result.stderr


def test_list_on_a_copy_of_the_upstream_tree(corpus, tmp_path, doit):
    tree = tmp_path / "redox"
    shutil.copytree(corpus / "recipes", tree / "recipes", symlinks=True)
    shutil.copytree(corpus / "config", tree / "config")
    result = doit("list", "--all", f"root={tree}", "config=config/x86_64/desktop.toml")
    assert result.returncode == 0, result.stderr
    names = {line.split()[0] for line in result.stdout.splitlines()}
    assert {"cook:kernel", "cook:relibc", "pkg:netsurf", "fetch:cosmic-term"} <= names
    assert "cook:orbterm" not in names  # "ignore" in desktop.toml


def test_other_config_by_variable(corpus, doit):
    result = doit("list", "--all", f"root={corpus}", "config=config/minimal.toml")
    assert result.returncode == 0, result.stderr
    assert "pkg:ion" in result.stdout and "pkg:netsurf" not in result.stdout


def test_a_bare_doit_builds_the_image(tmp_path, doit):
    """Like upstream's bare `make`: here the image stops at the initfs, which this tree cannot make (it names why)."""
    from tasks.settings import host_triple
    from tests.trees import bash_recipes_tree
    tree = bash_recipes_tree(tmp_path / "tree")
    result = doit(f"root={tree}", "config=config/c.toml", f"target={host_triple()}")
    assert result.returncode != 0
    assert ".  initfs" in result.stdout and "the initfs needs recipe 'base-initfs'" in result.stdout + result.stderr


def test_help_names_every_variable_with_its_default(doit):
    from tasks.variables import SETTINGS
    result = doit("help")
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())  # the help is wrapped
    for setting in SETTINGS:
        assert f"  {setting.name}={setting.metavar}" in result.stdout
        assert setting.default is None or f"[default: {setting.default}]" in text, setting.name


def test_an_empty_argument_is_one_line_not_a_traceback(doit):
    """doit itself read the first character of every argument (issue 19, item 8)."""
    for args in (["list", ""], ["run", "", "list"]):
        result = doit(*args)
        assert result.returncode == 3 and "Traceback" not in result.stderr, result.stderr
        assert result.stderr.endswith('an empty argument ("") names nothing\n'), result.stderr

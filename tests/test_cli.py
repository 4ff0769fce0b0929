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
    assert result.stderr == ""  # exit status 1 only says the task is not up to date
    assert "- fetch:base-initfs" in result.stdout and "- cook:redoxfs" in result.stdout
    fetch = doit("info", "fetch:base-initfs")
    assert "- fetch:base" in fetch.stdout and "recipes/core/base-initfs/recipe.toml" in fetch.stdout
    assert "content signature of fetch:base-initfs [code, dep:fetch:base, patches, source-table]" in fetch.stdout


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

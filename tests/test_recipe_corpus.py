"""Every upstream recipe parses and validates, or is rejected with a one-line error naming file, place and reason."""
from __future__ import annotations

import re

from tasks.errors import InputError
from tasks.model.index import discover
from tasks.model.recipe import (
    GitSource,
    PathSource,
    SameAsSource,
    TarSource,
    load_recipe,
)

SYNTAX = re.compile(r"^recipes/wip/\S+/recipe\.toml: (line \d+, column \d+|end of file): invalid TOML: .+$")
GO = re.compile(r"^recipes/wip/\S+/recipe\.toml: build\.template: unknown template 'go' "
                r"\(expected one of: none, remote, cargo, configure, cmake, meson, python, custom\)$")


def test_every_corpus_recipe_parses_or_fails_precisely(corpus, monkeypatch):
    monkeypatch.chdir(corpus)
    dirs, duplicates = discover(corpus / "recipes")
    assert len(dirs) == 3467 and duplicates == []
    failures = {}
    loaded = {}
    for name, directory in dirs.items():
        try:
            loaded[name] = load_recipe(directory)
        except InputError as error:
            failures[name] = str(error)
    syntax = [message for message in failures.values() if SYNTAX.match(message)]
    go = [message for message in failures.values() if GO.match(message)]
    assert len(syntax) == 9, failures
    assert len(go) == 12, failures
    assert len(failures) == 21
    assert len(loaded) == 3467 - 21
    assert all("\n" not in message for message in failures.values())


def test_known_syntax_errors_carry_line_and_column(corpus, monkeypatch):
    monkeypatch.chdir(corpus)
    error = _error(corpus / "recipes/wip/libs/other/libcamera")
    assert error == "recipes/wip/libs/other/libcamera/recipe.toml: line 11, column 5: invalid TOML: unclosed array"


def test_source_variants_and_templates_are_typed(corpus):
    recipes = {name: load_recipe(path) for name, path in discover(corpus / "recipes")[0].items()
               if name in ("relibc", "ion", "dejavu", "uutils-grep", "base", "bash")}
    assert isinstance(recipes["relibc"].source, GitSource)
    assert isinstance(recipes["dejavu"].source, TarSource) and recipes["dejavu"].source.blake3
    assert recipes["ion"].template == "cargo"
    assert recipes["base"].build.dependencies == ["redoxfs"]
    same_as = [load_recipe(path) for name, path in discover(corpus / "recipes")[0].items()
               if (path / "recipe.toml").read_text().find("same_as") >= 0]
    assert same_as and all(isinstance(recipe.source, SameAsSource) for recipe in same_as
                           if "[source]" in recipe.path.read_text())
    assert not isinstance(recipes["bash"].source, PathSource)


def test_every_template_with_its_keys(tmp_path):
    cases = {
        "none": "",
        "remote": "",
        "cargo": 'cargopath = "x"\ncargoflags = ["--features", "a"]\ncargopackages = ["p"]\n'
                 'cargoexamples = ["e"]\nclearlocked = true\ncargopackagesprefixed = true',
        "configure": 'configureflags = ["--disable-x"]',
        "cmake": 'cmakeflags = ["-DX=1"]',
        "meson": 'mesonflags = ["-Dx=true"]',
        "python": 'pyprojectpath = "sub"\npipflags = ["--no-deps"]\nlegacysetup = true',
        "custom": 'script = "echo hi"',
    }
    for template, keys in cases.items():
        directory = tmp_path / template
        directory.mkdir()
        (directory / "recipe.toml").write_text(f'[build]\ntemplate = "{template}"\n{keys}\n')
        recipe = load_recipe(directory)
        assert recipe.template == template and recipe.warnings == ()


def test_empty_recipe_is_a_meta_package(tmp_path):
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "recipe.toml").write_text("")
    recipe = load_recipe(tmp_path / "meta")
    assert recipe.template == "none" and recipe.source is None and recipe.build.dependencies == []


def test_unknown_keys_warn_with_file_and_key(tmp_path):
    (tmp_path / "typo").mkdir()
    (tmp_path / "typo" / "recipe.toml").write_text('[build]\ntemplate = "cargo"\ndependancies = ["x"]\n'
                                                    '[package]\nversoin = "1"\n')
    recipe = load_recipe(tmp_path / "typo")
    assert recipe.warnings == ("build.dependancies: unknown key (ignored; did you mean dependencies?)",
                               "package.versoin: unknown key (ignored; did you mean version?)")


def _error(directory) -> str:
    try:
        load_recipe(directory)
    except InputError as error:
        return str(error)
    raise AssertionError(f"{directory} loaded")

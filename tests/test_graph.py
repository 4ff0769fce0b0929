"""The build graph: closure of a config, edges of every kind, cycles and missing recipes."""
from __future__ import annotations

import pytest

from tasks.errors import GraphError, InputError
from tasks.model.config import load_config
from tasks.model.graph import Node, Origin, graph_for_config, graph_for_packages
from tasks.model.index import RecipeIndex
from tests.trees import cargo, make_tree


def graph_of(root, config="c.toml"):
    return graph_for_config(RecipeIndex(root / "recipes"), load_config(root / "config" / config))


def test_whole_corpus_graph_has_no_cycle_and_reports_real_gaps(corpus, monkeypatch):
    monkeypatch.chdir(corpus)
    index = RecipeIndex(corpus / "recipes")
    graph = graph_for_packages(index, index.names(), Origin(corpus / "recipes", "all"), strict=False)
    cycles = [problem for problem in graph.problems if "cycle" in str(problem)]
    assert cycles == []
    missing = sorted(str(p) for p in graph.problems if isinstance(p, GraphError))
    # Real gaps in upstream wip recipes: dependencies on recipes that do not exist.
    assert any(message.startswith("recipes/wip/term/asciiquarium/recipe.toml: package.dependencies[0]: no recipe "
                                  "named 'perl' under recipes") for message in missing)  # a "did you mean" may follow
    assert all(": no recipe named " in message or "optional package" in message for message in missing)
    assert len(graph.steps) > 3200
    order = list(graph.steps)
    for node, step in graph.steps.items():  # dependencies come first
        assert all(order.index(dep) < order.index(node) for dep in step.build_deps if dep in graph.steps)


def test_every_corpus_config_builds_a_graph(corpus):
    index = RecipeIndex(corpus / "recipes")
    for path in sorted((corpus / "config").rglob("*.toml")):
        graph = graph_for_config(index, load_config(path))
        assert graph.problems == [] and graph.steps, path


def test_edges_of_every_kind(tmp_path):
    root = make_tree(tmp_path, {
        "core/app": cargo("lib", "host:gen", runtime=("data",)) + '[[optional-packages]]\nname = "doc"\n'
                                                                   'dependencies = [".extra", "docs"]\n'
                                                                   'files = ["usr/share/doc/*"]\n'
                                                                   '[[optional-packages]]\nname = "extra"\n',
        "core/lib": cargo(),
        "core/gen": cargo("genlib", "target:lib", "gen"),
        "core/genlib": cargo(),
        "core/data": "",
        "core/docs": "",
        "core/shared": '[source]\nsame_as = "../app"\n[build]\ntemplate = "custom"\nscript = "true"\n',
        "core/prebuilt": cargo("lib"),
    }, {"c.toml": '[packages]\n"app.doc" = {}\nshared = {}\nprebuilt = "binary"\napp = {}\n'})
    graph = graph_of(root)
    steps = graph.steps
    assert steps[Node("app")].build_deps == [Node("lib"), Node("gen", host=True)]
    # host: recipes depend on host builds; target: dependencies and self references are dropped
    assert steps[Node("gen", host=True)].build_deps == [Node("genlib", host=True)]
    assert Node("genlib", host=True) in steps and Node("genlib") not in steps
    assert steps[Node("app")].runtime_deps == [Node("data"), Node("docs")]
    assert steps[Node("shared")].source_from == "app"
    assert steps[Node("prebuilt")].template == "remote" and steps[Node("prebuilt")].build_deps == []
    assert Node("lib") in steps  # needed by app, not by the prebuilt package
    image = {str(step.node) for step in graph.image_steps()}
    assert image == {"app", "data", "docs", "shared", "prebuilt"}  # build-only deps are not installed
    assert set(graph.sources) == {"app", "lib", "gen", "genlib", "shared"}


def test_ignore_rule_removes_package(tmp_path):
    root = make_tree(tmp_path, {"a": cargo(), "b": cargo()}, {"c.toml": '[packages]\na = {}\nb = "ignore"\n'})
    assert set(graph_of(root).steps) == {Node("a")}


def test_cycle_is_reported_with_its_full_path(tmp_path):
    root = make_tree(tmp_path, {"a": cargo("b"), "b": cargo("c"), "c": cargo("a")},
                     {"c.toml": '[packages]\na = {}\n'})
    with pytest.raises(GraphError) as caught:
        graph_of(root)
    assert caught.value.reason == "dependency cycle: a -> b -> c -> a"
    assert caught.value.key == "build.dependencies[0]"


def test_a_runtime_cycle_in_the_image_is_refused_naming_where_it_starts(tmp_path):
    """The installer follows a package's dependencies without remembering where it has been: it overflowed its
    stack (issue 19, item 8)."""
    root = make_tree(tmp_path, {"a": cargo(runtime=("c", "b")), "b": cargo(runtime=("a",)), "c": cargo()},
                     {"c.toml": '[packages]\na = {}\n'})
    with pytest.raises(GraphError) as caught:
        graph_of(root)
    assert caught.value.reason == "runtime dependency cycle: a -> b -> a (the installer would follow it forever)"
    assert caught.value.path == root / "recipes/a/recipe.toml" and caught.value.key == "package.dependencies[1]"


def test_a_runtime_cycle_among_build_dependencies_only_is_no_concern_of_the_installer(tmp_path):
    root = make_tree(tmp_path, {"a": cargo("b"), "b": cargo(runtime=("c",)), "c": cargo(runtime=("b",))},
                     {"c.toml": '[packages]\na = {}\n'})
    assert set(graph_of(root).steps) == {Node("a"), Node("b"), Node("c")}


def test_missing_recipe_names_who_asked(tmp_path):
    root = make_tree(tmp_path, {"a": cargo("nope")}, {"c.toml": '[packages]\na = {}\n'})
    with pytest.raises(GraphError) as caught:
        graph_of(root)
    assert caught.value.path == root / "recipes/a/recipe.toml"
    assert caught.value.key == "build.dependencies[0]"
    root = make_tree(tmp_path / "2", {"a": cargo()}, {"c.toml": '[packages]\nmissing = {}\n'})
    with pytest.raises(GraphError) as caught:
        graph_of(root)
    assert caught.value.path == (root / "config/c.toml").resolve() and caught.value.key == "packages.missing"


def test_unbuildable_recipe_fails_only_when_built(tmp_path):
    root = make_tree(tmp_path, {"a": '[build]\ntemplate = "custom"\n'},
                     {"c.toml": '[packages]\na = {}\n', "bin.toml": '[packages]\na = "binary"\n'})
    with pytest.raises(InputError, match="build.script: missing required key for template 'custom'"):
        graph_of(root)
    assert graph_of(root, "bin.toml").steps[Node("a")].template == "remote"


def test_duplicate_recipe_names_warn_and_choose_deterministically(tmp_path):
    root = make_tree(tmp_path, {"core/x": cargo(), "wip/x": cargo()})
    index = RecipeIndex(root / "recipes")
    assert index.dirs["x"] == root / "recipes/core/x"
    assert len(index.warnings) == 1 and "core/x" in index.warnings[0] and "wip/x" in index.warnings[0]

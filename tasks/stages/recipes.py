"""Per-recipe tasks: ``fetch:<recipe>``, ``cook:<recipe>`` (``cook:host:<recipe>`` for host builds),
``pkg:<recipe>``."""
from __future__ import annotations

from ..errors import display_path
from ..graph import Node, Step
from ..model.recipe import SOURCE_KEYS
from .common import builder, inputs, project, tracked


def fetch_name(recipe: str) -> str:
    return f"fetch:{recipe}"


def cook_name(node: Node) -> str:
    return f"cook:{node}"


def pkg_name(recipe: str) -> str:
    return f"pkg:{recipe}"


def task_fetch():
    """Fetch recipe sources (git, tar with blake3, path, same_as), then patches and scripts"""
    yield {"basename": "fetch", "name": None, "doc": task_fetch.__doc__, "uptodate": [True]}
    graph = project().graph
    for name, recipe in graph.sources.items():
        kind = next((key for key in SOURCE_KEYS if hasattr(recipe.source, key)), "no")
        yield {
            "basename": "fetch",
            "name": name,
            "doc": f"fetch the {kind} source of {name} ({display_path(recipe.path)})",
            "task_dep": [fetch_name(graph.same_as[name])] if name in graph.same_as else [],
            **tracked(fetch_name(name), "fetch", (name,), lambda name=name: inputs().fetch(name)),
        }


def task_cook():
    """Build recipes into their stage with the cookbook environment (cook:<recipe>, cook:host:<recipe>)"""
    yield {"basename": "cook", "name": None, "doc": task_cook.__doc__, "uptodate": [True]}
    for node, step in project().graph.steps.items():
        yield {
            "basename": "cook",
            "name": str(node),
            "doc": f"build {node} (template {step.template}, rule {step.rule}; {display_path(step.recipe.path)})",
            "task_dep": cook_dependencies(step),
            **tracked(cook_name(node), "cook", (node,), lambda node=node: inputs().cook(node),
                      lambda node=node: inputs().cook_outputs(node),
                      lambda step=step: inputs().stamp_context([step.recipe])),
        }


def cook_dependencies(step: Step) -> list[str]:
    deps = [cook_name(dep) for dep in step.build_deps]
    if step.recipe.name in project().graph.sources:
        deps.insert(0, fetch_name(step.recipe.name))
    if not step.node.host and step.builds_from_source:
        deps.append("toolchain")
    if builder().needs_sysroot(step.node):  # the same rule as its signature's dep:relibc
        deps.append("relibc")
    return deps


def task_pkg():
    """Package recipe stages as signed pkgar files in the local repository (pkg:<recipe>)"""
    yield {"basename": "pkg", "name": None, "doc": task_pkg.__doc__, "uptodate": [True]}
    for node, step in project().graph.steps.items():
        if node.host:
            continue  # host builds are tools for other builds, never published
        yield {
            "basename": "pkg",
            "name": node.recipe,
            "doc": f"package {node.recipe} into repo/",
            "task_dep": [cook_name(node)],
            **tracked(pkg_name(node.recipe), "package", (node,), lambda node=node: inputs().pkg(node),
                      lambda node=node: inputs().pkg_outputs(node),
                      lambda step=step: inputs().stamp_context([step.recipe])),
        }

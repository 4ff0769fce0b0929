"""The build graph: from an installer config (or any set of packages) to every recipe needed to build it.

Edges: build dependencies and dev-dependencies (cook order; their stages form the sysroot), runtime package
dependencies (installed alongside), ``same_as`` sources (fetch order), ``host:`` recipes (their own dependencies
rewritten to ``host:``, as upstream does) and optional packages (``recipe.opt``). Config rules change a recipe:
``binary`` takes the package prebuilt, ``ignore`` leaves it out, ``local`` keeps its source as it is.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import BuildError, GraphError, InputError
from ..hashing import hash_value
from .config import Config
from .index import RecipeIndex
from .names import PackageRef, parse_package_name
from .recipe import Package, Recipe, RecipeFile, SameAsSource


@dataclass(frozen=True, order=True)
class Node:
    """One recipe built for one triple: the target, or the host (``host:``)."""

    recipe: str
    host: bool = False

    def __str__(self) -> str:
        return f"host:{self.recipe}" if self.host else self.recipe


@dataclass(frozen=True)
class Origin:
    """Who asked for a package: a file and the key in it (for error messages)."""

    path: Path
    key: str


@dataclass
class Step:
    node: Node
    recipe: Recipe
    rule: str
    build_deps: list[Node] = field(default_factory=list)
    runtime_deps: list[Node] = field(default_factory=list)
    source_from: str | None = None
    in_image: bool = False
    build_dep_keys: dict[Node, str] = field(default_factory=dict, repr=False)
    runtime_dep_keys: dict[Node, str] = field(default_factory=dict, repr=False)

    @property
    def template(self) -> str:
        return {"binary": "remote", "ignore": "none"}.get(self.rule, self.recipe.template)

    @property
    def builds_from_source(self) -> bool:
        return self.template not in ("none", "remote")


@dataclass
class Graph:
    steps: dict[Node, Step]
    """Every recipe to build, in dependency order (dependencies first)."""
    sources: dict[str, Recipe]
    """Every recipe whose source is fetched: the steps' own, plus ``same_as`` targets."""
    same_as: dict[str, str] = field(default_factory=dict)
    """Recipe → the recipe whose source it uses (``same_as``), for every such recipe in :attr:`sources`."""
    problems: list[BuildError] = field(default_factory=list)

    def image_steps(self) -> list[Step]:
        return [step for step in self.steps.values() if step.in_image]


# What a package taken prebuilt without a recipe says of itself: (version, depends); raises when none has it.
PrebuiltLookup = Callable[[str], tuple[str, list[str]]]


def graph_for_config(index: RecipeIndex, config: Config, prebuilt: PrebuiltLookup | None = None) -> Graph:
    """``prebuilt``: where a config package with rule ``binary`` and no recipe comes from (the package server)."""
    roots = [(name, Origin(config.package_origin.get(name, config.path), f"packages.{name}"))
             for name in config.wanted_packages]
    return GraphBuilder(index, config.rule, prebuilt=prebuilt).build(roots)


def graph_for_packages(index: RecipeIndex, names: list[str], origin: Origin, strict: bool = True) -> Graph:
    """The graph of arbitrary packages (every recipe of a tree, for checks and benchmarks)."""
    return GraphBuilder(index, lambda name: "source", strict=strict).build([(name, origin) for name in names])


class GraphBuilder:
    def __init__(self, index: RecipeIndex, rule_of, strict: bool = True, prebuilt: PrebuiltLookup | None = None):
        self.index = index
        self.rule_of = rule_of
        self.strict = strict
        self.prebuilt = prebuilt
        self.taken_prebuilt: set[str] = set()  # named by a prebuilt package's metadata: prebuilt too, lacking a recipe
        self.steps: dict[Node, Step] = {}
        self.sources: dict[str, Recipe] = {}
        self.same_as: dict[str, str] = {}
        self.problems: list[BuildError] = []
        self.failed: set[Node] = set()

    def build(self, roots: list[tuple[str, Origin]]) -> Graph:
        queue: deque[tuple[PackageRef, Origin, bool]] = deque()
        for name, origin in roots:
            if (ref := self._parse(name, origin)) is not None:
                queue.append((ref, origin, True))
        # A package's runtime dependencies are followed once, or twice when it is first reached as a build
        # dependency and later as part of the image (this walk terminates on a runtime cycle; the installer does not,
        # so one among the image's packages is refused below).
        expanded: dict[PackageRef, bool] = {}
        while queue:
            ref, origin, in_image = queue.popleft()
            node = Node(ref.recipe, ref.host)
            if node in self.failed or expanded.get(ref, False) >= in_image and ref in expanded:
                continue
            step = self.steps.get(node)
            if step is None:
                step = self._visit(node, ref, origin)
                if step is None:
                    continue
                queue.extend((dep_ref, dep_origin, False) for dep_ref, dep_origin in self._build_dep_refs(step))
            expanded[ref] = in_image
            step.in_image = step.in_image or in_image
            queue.extend((dep_ref, dep_origin, in_image) for dep_ref, dep_origin in self._runtime_dep_refs(step, ref))
        ordered = dependencies_first(self.steps, self._report_cycle)
        image = {node: step for node, step in ordered.items() if step.in_image}
        dependencies_first(image, self._report_runtime_cycle, edges=lambda step: step.runtime_deps)
        return Graph(ordered, self.sources, self.same_as, self.problems)

    # --- visiting one node -------------------------------------------------------------------------------------

    def _visit(self, node: Node, ref: PackageRef, origin: Origin) -> Step | None:
        rule = self.rule_of(str(ref)) if str(ref) != node.recipe else self.rule_of(node.recipe)
        try:
            recipe = self.index.load(node.recipe)
        except InputError as error:
            return self._fail(node, error)
        except GraphError as error:
            if not node.host and self.prebuilt is not None and (rule == "binary" or node.recipe in self.taken_prebuilt):
                return self._visit_prebuilt(node, origin)
            return self._fail(node, GraphError(error.reason, path=origin.path, key=origin.key))
        step = Step(node, recipe, rule)
        if step.builds_from_source and (error := recipe.build_error()) is not None:
            return self._fail(node, error)
        self.steps[node] = step
        if step.rule not in ("binary", "ignore") and recipe.source is not None:
            self._add_source(step)
        return step

    def _visit_prebuilt(self, node: Node, origin: Origin) -> Step | None:
        """A package without a recipe, taken as the package server has it (upstream's installer does the same): its
        version and dependencies from its metadata; what it depends on is taken prebuilt too where no recipe is."""
        assert self.prebuilt is not None
        try:
            version, depends = self.prebuilt(node.recipe)
        except BuildError as error:
            return self._fail(node, GraphError(f"no recipe named {node.recipe!r}, and taken prebuilt: {error}",
                                               path=origin.path, key=origin.key))
        self.taken_prebuilt.update(parse_package_name(name).recipe for name in depends)
        recipe = Recipe(node.recipe, self.index.recipes_dir / node.recipe,
                        RecipeFile(package=Package(version=version, dependencies=depends)),
                        digest=hash_value(["prebuilt", version, depends]))
        step = self.steps[node] = Step(node, recipe, "binary")
        return step

    def _fail(self, node: Node, error: BuildError) -> None:
        if self.strict:
            raise error
        self.failed.add(node)
        self.problems.append(error)
        return None

    def _add_source(self, step: Step) -> None:
        recipe = step.recipe
        self.sources[recipe.name] = recipe
        seen = {recipe.name}
        while isinstance(recipe.source, SameAsSource):
            target = (recipe.dir / recipe.source.same_as).resolve()
            name = self.index.name_of_dir(target)
            if name is None:
                self._fail(step.node, InputError(f"no recipe at {recipe.source.same_as!r}", path=recipe.path,
                                                 key="source.same_as"))
                return
            if step.source_from is None:
                step.source_from = name
            self.same_as[recipe.name] = name
            if name in seen:
                self._fail(step.node, GraphError(f"same_as cycle: {' -> '.join([*seen, name])}",
                                                 path=recipe.path, key="source.same_as"))
                return
            seen.add(name)
            try:
                recipe = self.index.load(name)
            except BuildError as error:
                self._fail(step.node, error)
                return
            self.sources[name] = recipe

    # --- edges ---------------------------------------------------------------------------------------------------

    def _build_dep_refs(self, step: Step) -> list[tuple[PackageRef, Origin]]:
        # A recipe of template "none" (a meta-package) still has its build dependencies built and checked; one that
        # a rule takes prebuilt or ignores does not.
        if not step.builds_from_source and step.recipe.template != "none":
            return []
        build = step.recipe.build
        refs = []
        for key, names in (("build.dependencies", build.dependencies),
                           ("build.dev-dependencies", build.dev_dependencies)):
            for index, name in enumerate(names):
                origin = Origin(step.recipe.path, f"{key}[{index}]")
                ref = self._dependency(step.node, name)
                if ref is not None:
                    dep = Node(ref.recipe, ref.host)
                    if dep not in step.build_deps:
                        step.build_deps.append(dep)
                        step.build_dep_keys[dep] = origin.key
                    refs.append((ref, origin))
        return refs

    def _runtime_dep_refs(self, step: Step, ref: PackageRef) -> list[tuple[PackageRef, Origin]]:
        """Runtime dependencies of the package ``ref`` (the recipe's own, or one of its optional packages)."""
        recipe = step.recipe
        if step.rule == "ignore":
            return []  # an ignored package is never installed, so neither is what it would pull in
        if ref.optional is None:
            names = [(f"package.dependencies[{i}]", name) for i, name in enumerate(recipe.file.package.dependencies)]
        else:
            optional = next((opt for opt in recipe.file.optional_packages if opt.name == ref.optional), None)
            if optional is None:
                self._fail(step.node, GraphError(f"recipe {recipe.name!r} has no optional package {ref.optional!r}",
                                                 path=recipe.path, key="optional-packages"))
                return []
            index = recipe.file.optional_packages.index(optional)
            names = [(f"optional-packages[{index}].dependencies[{i}]",
                      f"{recipe.name}{name}" if name.startswith(".") else name)
                     for i, name in enumerate(optional.dependencies)]
        refs = []
        for key, name in names:
            dep_ref = self._dependency(step.node, name)
            if dep_ref is not None:
                dep = Node(dep_ref.recipe, dep_ref.host)
                if dep != step.node and dep not in step.runtime_deps:
                    step.runtime_deps.append(dep)
                    step.runtime_dep_keys[dep] = key
                refs.append((dep_ref, Origin(recipe.path, key)))
        return refs

    def _dependency(self, node: Node, name: str) -> PackageRef | None:
        """A dependency of ``node`` as a package reference; ``host:`` recipes depend on ``host:`` builds."""
        ref = parse_package_name(name)
        if node.host:
            if name.startswith("target:") or ref.recipe == node.recipe:
                return None
            return PackageRef(ref.recipe, True, ref.optional)
        return ref

    def _parse(self, name: str, origin: Origin) -> PackageRef | None:
        try:
            return parse_package_name(name)
        except ValueError as error:
            self._fail(Node(name), InputError(str(error), path=origin.path, key=origin.key))
            return None

    def _report_cycle(self, cycle: list[Node]) -> None:
        first = self.steps[cycle[0]]
        self._fail(cycle[0], GraphError(f"dependency cycle: {' -> '.join(str(node) for node in cycle)}",
                                        path=first.recipe.path, key=first.build_dep_keys[cycle[1]]))

    def _report_runtime_cycle(self, cycle: list[Node]) -> None:
        first = self.steps[cycle[0]]
        self._fail(cycle[0], GraphError(f"runtime dependency cycle: {' -> '.join(str(node) for node in cycle)} (the "
                                        f"installer would follow it forever)",
                                        path=first.recipe.path, key=first.runtime_dep_keys[cycle[1]]))


def dependencies_first(steps: dict[Node, Step], cycle: Callable[[list[Node]], None],
                       edges: Callable[[Step], list[Node]] = lambda step: step.build_deps) -> dict[Node, Step]:
    """The steps with their dependencies (``edges``: the build dependencies) first (depth-first post-order,
    deterministic); ``cycle`` is told of each cycle found (its nodes, the first one again at the end)."""
    done: dict[Node, Step] = {}
    active: list[Node] = []
    on_path: set[Node] = set()
    for root in sorted(steps):
        if root in done:
            continue
        stack: list[tuple[Node, int]] = [(root, 0)]
        active.append(root)
        on_path.add(root)
        while stack:
            node, position = stack[-1]
            deps = [dep for dep in edges(steps[node]) if dep in steps]
            if position < len(deps):
                stack[-1] = (node, position + 1)
                dep = deps[position]
                if dep in on_path:
                    cycle(active[active.index(dep):] + [dep])
                    continue
                if dep not in done:
                    stack.append((dep, 0))
                    active.append(dep)
                    on_path.add(dep)
                continue
            stack.pop()
            active.pop()
            on_path.discard(node)
            done[node] = steps[node]
    return done

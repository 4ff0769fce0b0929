"""What a stage declares, and what it is given.

A stage is one module holding one class: :class:`Stage` for a single task (``image``), :class:`RecipeStage` for
one task per recipe (``cook:<recipe>``, under the group ``cook``). The class says everything about it, in one place:

* ``deps()``: the tasks that run first. Each enters the signature as ``dep:<task>``, by the *output* hash its task
  recorded, so a dependency rebuilt byte-identically changes nothing here (early cutoff) — unless it is
  ``order_only``: it must run first, but what this stage reads of it is among its own inputs (the toolchain's
  fingerprint, a fetched source's tree hash). doit's ``task_dep`` and the signature's ``dep:*`` entries are both made
  from this one list.
* ``inputs()``: the signature's other components, each a hash. ``code`` (the stage's :attr:`data` files and its
  module with every module it imports, see :mod:`tasks.engine.codeversion`), ``env:<NAME>`` for each of :attr:`env`
  and ``dep:*`` are added from the declaration; an input of the same name is refused.
* ``outputs()``: what it writes; hashed, stamped and recorded after ``run()``.
* ``run()``: the action. ``needed()`` false makes the stage a plain group of its dependencies in this build.
* ``stamp_sources()``: the recipes whose sources the JSON stamp beside each output names (None: no stamp).
* ``cached``: its outputs are what its signature fully determines, so a shared cache (``cache=``,
  :mod:`tasks.cache`) may hold them for other machines; ``place()`` puts one taken from there where it belongs.
* ``recipes()``: the recipes whose directories its inputs read (a recipe stage's: the item's own by default; a
  single-task stage's: None, any, unless it says), so that an edit inside a recipe judges only the tasks that read it.

The declarations know nothing of doit: :mod:`tasks.cli.creators` makes doit's task creators from them, in the order
of :data:`tasks.stages.STAGES`.
"""
from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Generic, TypeVar

from ..atomic import move_into_place

if TYPE_CHECKING:
    from ..engine.treehash import TreeHasher
    from ..layout import Layout
    from ..model.graph import Graph
    from ..model.project import Project
    from ..model.recipe import Recipe
    from ..settings import Settings

NONE = "(none)"  # a component whose input is absent: no source yet, a dependency never built
T = TypeVar("T")
Item = TypeVar("Item", bound=Hashable)


def task_name(stage: str, item: object = None) -> str:
    """``image``, or a recipe stage's ``cook:hello`` / ``cook:host:hello``."""
    return stage if item is None else f"{stage}:{item}"


@dataclass(frozen=True)
class Dep:
    task: str
    order_only: bool = False
    """Runs first, but is no part of the signature: what the stage reads of it is among its own inputs."""


@dataclass
class Context:
    """What every stage of one build is given: the project, where things go, the tree hasher."""

    project: Project
    layout: Layout
    trees: TreeHasher
    _made: dict = field(default_factory=dict, repr=False)

    @property
    def settings(self) -> Settings:
        return self.project.settings

    @property
    def graph(self) -> Graph:
        return self.project.graph

    def shared(self, make: Callable[..., T], *args: Hashable) -> T:
        """``make(*args)``, made once per build: what several stages use (the toolchain, the tree's revision)."""
        key = (make, *args)
        if key not in self._made:
            self._made[key] = make(*args)
        return self._made[key]


class _Declaration:
    name: ClassVar[str]
    data: ClassVar[tuple[str, ...]] = ()
    """Files and directories under ``tasks/`` that the stage reads and no import names (templates)."""
    env: ClassVar[tuple[str, ...]] = ()
    """Environment variables the stage's output depends on (an explicit allow-list)."""
    cached: ClassVar[bool] = False
    """Its outputs may come from the shared cache: the signature determines them, nothing of this host does."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.settings = ctx.settings
        self.layout = ctx.layout
        self.graph = ctx.graph

    def place(self, unpacked: Path, final: Path) -> None:
        """Put an output taken from the shared cache in place, as the task's own run would."""
        move_into_place(unpacked, final)

    def with_sources(self, names: list[str]) -> list[str]:
        """``names`` and the recipes whose sources they build from (``same_as``)."""
        return [*names, *(source for name in names if (source := self.graph.same_as.get(name)) is not None)]

    @classmethod
    def summary(cls) -> str:
        """The first line of the class's docstring: what ``doit list`` says of the stage."""
        return (cls.__doc__ or "").strip().splitlines()[0]


class Stage(_Declaration):
    """A stage with one task, named after the stage."""

    def needed(self) -> bool:
        return True

    def deps(self) -> list[Dep]:
        return []

    def inputs(self) -> dict[str, str]:
        return {}

    def outputs(self) -> list[Path]:
        return []

    def possible_outputs(self) -> list[Path]:
        """Every output the task may write, where :meth:`outputs` names those that exist (a package's ``.pkgar``):
        an output taken from the shared cache must be one of them."""
        return self.outputs()

    def work_dirs(self) -> list[Path]:
        """Where the task works besides its outputs (build trees, caches of its own): ``doit clean`` removes them
        with the outputs."""
        return []

    def stamp_sources(self) -> list[Recipe] | None:
        return None

    def recipes(self) -> list[str] | None:
        """The recipes whose directories the task's inputs read (see :meth:`RecipeStage.recipes`); None: it may read
        any recipe's, and is judged after every edit inside recipes."""
        return None

    def run(self) -> None:
        raise NotImplementedError(f"stage {self.name} has no action")


class RecipeStage(_Declaration, Generic[Item]):
    """A stage with one task per item (a recipe's name or its graph node), ``<stage>:<item>``, under a group."""

    def items(self) -> Iterable[Item]:
        raise NotImplementedError

    def describe(self, item: Item) -> str:
        raise NotImplementedError

    def deps(self, item: Item) -> list[Dep]:
        return []

    def inputs(self, item: Item) -> dict[str, str]:
        return {}

    def outputs(self, item: Item) -> list[Path]:
        return []

    def possible_outputs(self, item: Item) -> list[Path]:
        """As :meth:`Stage.possible_outputs`, per item."""
        return self.outputs(item)

    def work_dirs(self, item: Item) -> list[Path]:
        """As :meth:`Stage.work_dirs`, per item."""
        return []

    def stamp_sources(self, item: Item) -> list[Recipe] | None:
        return None

    def recipes(self, item: Item) -> list[str]:
        """The recipes whose directories the task's inputs may read: the item's own, and the one whose source it
        builds (``same_as``). After an edit of their files the task is judged again (:mod:`tasks.engine.narrow`)."""
        return self.with_sources([getattr(item, "recipe", str(item))])

    def run(self, item: Item) -> None:
        raise NotImplementedError(f"stage {self.name} has no action")

"""doit's tasks, made from the stage declarations (:data:`tasks.stages.STAGES`) for the project of one invocation.

Each stage becomes one task creator, ``task_<stage>``: one task, or a group with one task per recipe. The only
judge of a task is the content-hashed engine: stale unless its store holds the task recorded with this exact
signature (and its outputs exist); after the action the outputs are hashed, stamped and recorded at once, so
``kill -9`` loses at most the task that was running. A signature is the stage's own inputs plus what its
declaration says once: its code version, its environment variables, and its dependencies' recorded output hashes
(the same list doit's ``task_dep`` is made from).
"""
from __future__ import annotations

import atexit
import functools
import gc
import inspect
import os
import shlex
import sys
import time
from collections.abc import Callable, Container, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from doit.exceptions import InvalidCommand, InvalidDodoFile, TaskFailed
from doit.task import Task

from ..engine import Engine, Record, Signature, StampContext, StateStore, env_components, stamp_path
from ..engine.codeversion import CodeGraph
from ..engine.evidence import Plan, Spec
from ..engine.narrow import reached
from ..errors import BuildError, LockError, display_path
from ..formats.pkgkeys import public_key_digest
from ..layout import Layout
from ..logs import start_run_log
from ..model.project import Project
from ..model.recipe import Recipe
from ..revision import TreeRevision
from ..settings import PROJECT_DIR, Settings
from ..stages import STAGES, RecipeStage, Stage
from ..stages.stage import NONE, Context, Dep, task_name
from ..toolchain.selected import SelectedToolchain
from ..variables import settings_file
from .loader import saved_not_given, variables

if TYPE_CHECKING:
    from ..cache.tasks import TaskCache

TASKS_DIR = PROJECT_DIR / "tasks"
# Variables signatures read through a path or a command (the no-op evidence compares them), besides the stages' own.
READ_ENV = ("RUSTC", "SOURCE_DATE_EPOCH", "HOME", "RUSTUP_HOME", "RUSTUP_TOOLCHAIN", "CARGO_HOME", "XDG_CACHE_HOME",
            "REDOX_HOST_TOOLS")

# --- the project of this invocation ------------------------------------------------------------------------------


def settings() -> Settings:
    return Settings.from_vars(variables())


@functools.cache
def project() -> Project:
    """The project of this doit invocation. A user error stops doit with one line and exit status 3."""
    # The recipes and the graph live as long as the process: the collector, which would walk all of them again and
    # again while they are loaded and while the tasks are made, leaves them be (a 3,000-recipe load: -1 s).
    gc.disable()
    chosen = None
    try:
        chosen = settings()
        loaded = (KEPT_PROJECT and Project.restore(*KEPT_PROJECT, chosen)) or Project.load(chosen)
    except BuildError as error:
        if chosen is not None and error.path == chosen.config_file.resolve() and \
                (saved := saved_not_given("config", "root")):
            # the config was chosen long ago: say where
            raise InvalidDodoFile(f"{error} ({' and '.join(f'{name}=' for name in saved)} from {settings_file()}, "
                                  f"saved by `doit settings`)") from None
        raise InvalidDodoFile(str(error)) from None
    finally:
        gc.freeze()
        gc.enable()
    for warning in loaded.warnings:
        print(f"warning: {_relative(warning)}", file=sys.stderr)
    return loaded


@functools.cache
def engine() -> Engine:
    built = Engine(settings().build)
    # Closed when doit is done, not left to the interpreter's teardown: the state's last connection then
    # checkpoints its write-ahead log, and the next run (a no-op only reads) finds the database as it was left.
    atexit.register(built.end_build)
    return built


@functools.cache
def context() -> Context:
    return Context(project(), Layout(settings()), engine().trees)


def state() -> StateStore:
    return engine().state


# --- tasks from stages ---------------------------------------------------------------------------------------------

SIGNATURES: dict[str, Callable[[], Signature]] = {}
"""Every tracked task's signature function, for ``doit explain`` and the no-op evidence."""
PLANNED: dict[str, Planned] = {}
"""Every tracked task, for the commands that work on tasks (``clean``, ``forget``, ``explain``)."""


@dataclass(frozen=True)
class Planned:
    """One task of a stage, with the stage's methods bound to its item."""

    name: str
    subtask: str | None  # doit's name of a recipe stage's task inside its group (``hello`` of ``cook:hello``)
    doc: str
    deps: list[Dep]
    inputs: Callable[[], dict[str, str]]
    outputs: Callable[[], list[Path]]
    work_dirs: Callable[[], list[Path]]
    stamp_sources: Callable[[], list[Recipe] | None]
    run: Callable[[], None]
    recipes: Callable[[], list[str] | None]  # whose directories it reads (None: any)
    cached: bool  # its outputs may come from the shared cache
    possible_outputs: Callable[[], list[Path]]  # where an output taken from the cache may go
    place: Callable[[Path, Path], None]  # puts it there


def planned(stage: Stage | RecipeStage, only: Container[str] | None = None) -> Iterator[Planned]:
    """The stage's tasks (those named in ``only``, if given)."""
    if isinstance(stage, RecipeStage):
        for item in stage.items():
            name = task_name(stage.name, item)
            if only is None or name in only:
                yield Planned(name, str(item), stage.describe(item), stage.deps(item), partial(stage.inputs, item),
                              partial(stage.outputs, item), partial(stage.work_dirs, item),
                              partial(stage.stamp_sources, item), partial(stage.run, item),
                              partial(stage.recipes, item), stage.cached,
                              partial(stage.possible_outputs, item), stage.place)
    elif only is None or stage.name in only:
        yield Planned(stage.name, None, stage.summary(), stage.deps(), stage.inputs, stage.outputs,
                      stage.work_dirs, stage.stamp_sources, stage.run, stage.recipes, stage.cached,
                      stage.possible_outputs, stage.place)


def signature(stage: Stage | RecipeStage, task: Planned) -> Signature:
    own = task.inputs()
    if clash := sorted(name for name in own if name == "code" or name.startswith(("dep:", "env:"))):
        raise TypeError(f"stage {stage.name}: input {clash[0]!r} is made from the declaration (deps, env, data)")
    outputs = {f"dep:{dep.task}": engine().output_hash(dep.task) or NONE for dep in task.deps if not dep.order_only}
    return Signature({**own, **env_components(stage.env), "code": code_version(type(stage)), **outputs})


@functools.cache
def code_version(stage: type[Stage] | type[RecipeStage]) -> str:
    return code_graph().version(Path(inspect.getfile(stage)), [TASKS_DIR / path for path in stage.data])


@functools.cache
def code_graph() -> CodeGraph:
    return CodeGraph(TASKS_DIR, cache=settings().build / "cache" / "code-graph.marshal")


def stage_of(stage_class: type[Stage] | type[RecipeStage]) -> Stage | RecipeStage:
    """The stage's one instance in this build (made with, and kept by, its context)."""
    return context().shared(_new_stage, stage_class)


def _new_stage(stage_class: type[Stage] | type[RecipeStage]) -> Stage | RecipeStage:
    return stage_class(context())


def stage_tasks(stage_class: type[Stage] | type[RecipeStage]) -> Iterator[dict]:
    """doit's dicts for one stage: a task, or the group and one task per item (those of :data:`ONLY`, if set)."""
    stage = stage_of(stage_class)
    members: list[EngineCheck] = []
    if isinstance(stage, RecipeStage):
        yield {"basename": stage.name, "name": None, "doc": stage.summary(), "uptodate": [GroupCheck(members)]}
    for task in planned(stage, ONLY):
        fields = {"basename": stage.name, "doc": task.doc,
                  "task_dep": [dep.task for dep in task.deps if ONLY is None or dep.task in ONLY]}
        if task.subtask is not None:
            fields["name"] = task.subtask
        if isinstance(stage, Stage) and not stage.needed():
            yield {**fields, "actions": None, "uptodate": [True]}
        else:
            made = tracked(task, partial(signature, stage, task))
            members.append(made["uptodate"][0])
            yield {**fields, **made}


def tracked(task: Planned, signature_now: Callable[[], Signature]) -> dict:
    """doit's fields for a task judged by the engine (see the module's docstring)."""
    SIGNATURES[task.name] = signature_now
    PLANNED[task.name] = task
    check = EngineCheck(task.name, signature_now)

    def run() -> TaskFailed | None:
        try:
            # The build lock (and recovery of a killed build's last publication), taken once the first task runs.
            # Another build may have finished this task while we waited for the lock: check again under it.
            engine().ensure_started()
            before = signature_now()  # before reading inputs: an edit during the build re-runs it next time
            if engine().is_current(task.name, before):
                return None
            previous = state().get(task.name)
            start_run_log(context().layout.log(task.name), _log_header(task.name, before))
            aside = _set_stamps_aside(task.outputs())
            started = time.monotonic()
            try:
                restored = task.cached and _from_cache(task, before)
                if not restored:
                    task.run()
            except BaseException:
                _restore_stamps(aside)
                raise
            duration = time.monotonic() - started
            left, accept = (None, False) if restored else _inputs_left(task.name, before, signature_now(), previous)
            engine().publisher.adopt(task.name, before, task.outputs(), _stamp_context(task.stamp_sources()),
                                     left=left, accept_left=accept, duration=None if restored else duration)
            for _, set_aside in aside:
                set_aside.unlink(missing_ok=True)
            if task.cached and not restored and left is None:
                _to_cache(task.name, before)
        except BuildError as error:
            return TaskFailed(str(error))
        return None
    run.__name__ = task.name.replace(":", "_").replace("-", "_")
    return {"actions": [run], "uptodate": [check]}


# --- the shared cache (tasks.cache) --------------------------------------------------------------------------------


@functools.cache
def task_cache() -> TaskCache | None:
    """The shared cache of ``cache=``, made in the process that runs the first task asking for it (never before
    ``doit -n`` forks its workers); None without the setting."""
    chosen = settings()
    if chosen.cache is None:
        return None
    from ..cache.store import Store
    from ..cache.tasks import Keys, TaskCache
    from ..formats.pkgkeys import ensure_keys
    keys = Keys.pinned(chosen.cache_keys_dir, signer=partial(ensure_keys, context().layout.key_dir))
    return TaskCache(Store(chosen.cache), chosen.build, keys, upload=chosen.cache_upload == "yes",
                     warn=engine().warn)


def _from_cache(task: Planned, signature: Signature) -> bool:
    """The task's outputs put in place from the shared cache, when it holds them for this signature."""
    cache = task_cache()
    if cache is None or not cache.restore(task.name, signature.digest, task.possible_outputs(), task.place):
        return False
    print(f"{task.name}: taken from the cache ({cache.store.url})")
    return True


def _to_cache(task: str, signature: Signature) -> None:
    """What the task just recorded, uploaded for other machines (``cache_upload=yes``)."""
    cache, record = task_cache(), state().get(task)
    if cache is not None and record is not None:
        cache.upload(task, signature.digest, dict(signature.components), record.output_hash,
                     [Path(output) for output in record.outputs], list(record.digests))


def _log_header(task: str, signature: Signature) -> list[str]:
    when = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    return [f"{task}, run at {when} by `doit {shlex.join(sys.argv[1:])}`",
            f"signature {signature.digest} ({', '.join(sorted(signature.components))})"]


def recorded_duration(task: str) -> float | None:
    """How long the task took when it last ran (the progress display's estimate)."""
    return state().duration(task)


def task_log(task: str) -> Path:
    return context().layout.log(task)


def record_changed_output(task: str, signature: Signature | None = None) -> bool:
    """An operation changed the task's artifact on purpose (restore, inject): record what it holds now, under the
    signature it was built with (or ``signature``: inject makes the image what a build with the new overlay makes),
    and stamp it, so that what depends on it is stale and nothing reports the change as a foreign write. False when
    the task has no record (an image built elsewhere)."""
    record = state().get(task)
    if record is None:
        return False
    engine().ensure_started()
    engine().publisher.adopt(task, signature or Signature(record.components),
                             [Path(output) for output in record.outputs],
                             _stamp_context(PLANNED[task].stamp_sources() if task in PLANNED else []))
    return True


def _inputs_left(task: str, before: Signature, after: Signature, previous: Record | None
                 ) -> tuple[Signature | None, bool]:
    """Did the run change its own inputs? Then it runs again next time (the change may be a hand's, made while it
    ran), unless it started from exactly what the previous run left and changed them again: its build does that
    every time, so what it leaves is accepted as current (said once, instead of a rebuild on every run)."""
    if after.digest == before.digest:
        return None, False
    changed = ", ".join(sorted(name for name in after.components.keys() | before.components.keys()
                               if after.components.get(name) != before.components.get(name)))
    if previous is not None and previous.left == before.digest:
        engine().warn(f"{task}: its build changes its own inputs ({changed}) every time it runs; what it leaves is "
                      f"taken as current (`doit forget {task}` builds it again)")
        return after, True
    engine().warn(f"{task}: its inputs ({changed}) changed while it ran; it runs again next time")
    return after, False


def _stamp_context(recipes: list[Recipe] | None) -> StampContext | None:
    if recipes is None:
        return None
    sources = {recipe.name: recipe.source_dir for recipe in recipes if recipe.source_dir.is_dir()}
    return StampContext(main_repo=settings().root, sources=sources, toolchain=_toolchain().fingerprint)


def _toolchain() -> SelectedToolchain:
    ctx = context()
    return ctx.shared(SelectedToolchain, ctx.layout)


def _lock_early() -> None:
    """Take the build lock, if free, as soon as a task turns out stale. A no-op build only reads (SQLite WAL
    readers never block the writer) and so writes nothing; a build that will run holds the lock in doit's main
    process, where these checks run, before ``doit -n`` forks its workers: they inherit it instead of queueing
    behind each other. Held by another build: the action waits for it (and says so)."""
    try:
        engine().ensure_started(wait=False)
    except LockError:
        pass


class EngineCheck:
    """doit's ``uptodate`` for a tracked task; ``doit info`` shows its repr: the inputs the engine compares."""

    # doit asks inspect.signature which arguments to pass, per task and run; this answers at once (none).
    __signature__ = inspect.Signature()

    def __init__(self, task: str, signature_now: Callable[[], Signature]):
        self.task = task
        self.signature = signature_now

    def __call__(self) -> bool:
        # An input that cannot be read (a missing toolchain) makes the task stale: its action reports why.
        try:
            current = engine().is_current(self.task, self.signature())
        except BuildError:
            current = False
        if not current:
            _lock_early()
        return current

    def __repr__(self) -> str:
        try:
            names = ", ".join(sorted(self.signature().components))
        except BuildError as error:
            names = f"(cannot be read: {error})"
        return f"content signature of {self.task} [{names}]; `doit explain {self.task}` says what changed"


LISTING = False
"""Set for ``doit list``: its ``--status`` asks a group whether it is current before any task ran."""


class GroupCheck:
    """A group's ``uptodate``: doit runs a group after its members, which it checked by then, so a build asks
    nothing here; ``doit list --status`` asks before anything ran, and then a group is current when every member
    is."""

    __signature__ = inspect.Signature()

    def __init__(self, members: list[EngineCheck]):
        self.members = members

    def __call__(self) -> bool:
        return not LISTING or all(member() for member in self.members)


def signature_of(task: str) -> Signature:
    if task not in SIGNATURES:
        raise InvalidCommand(f"no task {task!r} with recorded inputs (see doit list --all)")
    return SIGNATURES[task]()


def task_creators() -> dict[str, Callable]:
    """``task_<name>`` for every stage (see :func:`in_order`)."""
    makers = {stage.name: partial(stage_tasks, stage) for stage in STAGES}
    ORDER[:] = list(makers)
    return {f"task_{name.replace('-', '_')}": _creator(make) for name, make in makers.items()}


ORDER: list[str] = []


def in_order(tasks: list[Task]) -> list[Task]:
    """The tasks in the order of :func:`task_creators` (each group's tasks after it), which ``doit list`` shows.
    doit itself would order the creators by the line they are defined on, which is one line for all of them."""
    position = {name: index for index, name in enumerate(ORDER)}
    return sorted(tasks, key=lambda task: position.get(task.name.split(":", 1)[0], len(position)))


def _creator(make: Callable) -> Callable:
    def creator():
        return make()
    return creator


# --- the check after an edit (tasks.engine.narrow) -----------------------------------------------------------------

ONLY: set[str] | None = None
"""The tasks this run loads when the check after an edit narrowed it (the others are current); None: every task."""
KEPT_PROJECT: tuple[Path, str] | None = None
"""The project kept by the run that left the evidence, and its digest: what the check after an edit takes instead of
loading the recipes and the graph, which it knows unchanged."""


def narrow(plan: Plan, targets: list[str], candidates: set[str], kept_project: Path) -> list[str]:
    """Judge the candidates an edit may reach; load those found stale, what runs after them, and the targets
    (:data:`ONLY`). The other tasks' outputs are taken as recorded, as the no-op takes them. Returns the tasks
    loaded besides the targets, dependencies first."""
    global ONLY, KEPT_PROJECT
    if plan.project is not None:
        KEPT_PROJECT = (kept_project, plan.project)
    engine().trust(set(plan.owners) - candidates)
    tasks = {task.name: (stage, task) for stage_class in STAGES
             if not isinstance(stage := stage_of(stage_class), Stage) or stage.needed()
             for task in planned(stage, candidates)}

    def current(name: str) -> bool:
        if name not in tasks:  # a group, or a stage this build does not need: nothing of its own to judge
            return True
        stage, task = tasks[name]
        return EngineCheck(name, partial(signature, stage, task))()

    loaded = reached(plan, targets, candidates, current)
    ONLY = {*loaded, *targets}
    return loaded


def plan(task_deps: dict[str, list[str]], outputs: dict[str, list[str]]) -> Plan:
    """What the evidence keeps for the check after an edit: ``task_deps`` is doit's, of every task; ``outputs``, each
    tracked task's recorded outputs, in the order the evidence observes them."""
    readers: dict[str, list[str]] = {}
    anything: list[str] = []
    for name, task in PLANNED.items():
        if (recipes := task.recipes()) is None:
            anything.append(name)
        for recipe in recipes or ():
            readers.setdefault(recipe, []).append(name)
    zones: dict[bytes, list[str]] = {}
    for recipe in context().project.index.loaded():
        zones.setdefault(os.fsencode(recipe.dir), []).append(recipe.name)
        if recipe.source_dir.is_symlink():  # observed by its real path
            zones.setdefault(os.fsencode(os.path.realpath(recipe.source_dir)), []).append(recipe.name)
    owners = [task for task, paths in outputs.items() for _ in paths]
    return Plan(deps=task_deps, readers=readers, zones=zones, owners=owners, pipeline=anything)


# --- what the no-op evidence observes ------------------------------------------------------------------------------


def evidence_spec() -> Spec:
    """What the signatures read besides the recipe files, ``config/`` and this project's code (which the no-op
    evidence observes anyway): the directories of the recipes in the graph (sources, patches), config files
    included from elsewhere, the package key, the toolchain, the prebuilt packages, the initfs archiver,
    environment variables and the commands signatures read. Call it once the graph is loaded."""
    ctx = context()
    settings, toolchain = ctx.settings, _toolchain()
    ctx.shared(public_key_digest, ctx.layout.key_dir)  # made now if missing: observed as the signatures will find it
    given = [path for path in (settings.initfs_archiver, settings.bootloader) if path is not None]  # input files
    files = [*ctx.project.config.sources, ctx.layout.public_key, *toolchain.files(), *given]
    zones = [*ctx.project.index.loaded_dirs(), settings.prebuilt_dir, settings.overlay_dir]  # sources, patches…
    env = [*dict.fromkeys(name for stage in STAGES for name in stage.env), *READ_ENV]
    probes = [*ctx.shared(TreeRevision, settings.root).probes(), *toolchain.probes()]
    return Spec(zones=[str(path) for path in zones], files=[str(path) for path in files], env=env, probes=probes)


def _set_stamps_aside(paths: list[Path]) -> list[tuple[Path, Path]]:
    """Before a run: the outputs' stamps renamed to ``<stamp>.aside``, so that an artifact the run replaces never
    carries its predecessor's stamp, not even after a kill -9; returns (artifact, aside file) pairs."""
    aside = []
    for path in paths:
        stamp = stamp_path(path)
        if stamp.exists():
            os.replace(stamp, stamp.with_name(stamp.name + ".aside"))
            aside.append((path, stamp.with_name(stamp.name + ".aside")))
    return aside


def _restore_stamps(aside: list[tuple[Path, Path]]) -> None:
    """After a failed run: each stamp back whose artifact is still the one it describes (the previous good
    artifact keeps its stamp); one whose artifact the run replaced in place is dropped."""
    from ..engine.publish import verify_stamp
    for artifact, set_aside in aside:
        os.replace(set_aside, stamp_path(artifact))
        if not verify_stamp(artifact):
            stamp_path(artifact).unlink()


def _relative(message: str) -> str:
    path, sep, rest = message.partition(": ")
    return f"{display_path(path)}{sep}{rest}" if sep and path.startswith("/") else message

"""doit's task loader and reporter for this project: a no-op answered from evidence, everything else from dodo.py.

Checking every task of a 3,000-recipe image means parsing the recipes, building the graph, and asking doit about
9,000 tasks — seconds, where ninja takes milliseconds. The answer is the same as last time when nothing it rested
on changed, so a run that ends with every task current leaves evidence (:mod:`tasks.engine.evidence`), and the
loader, before it imports dodo.py, observes that evidence again: when it holds, doit is given just the requested
targets, up to date. Otherwise (or for ``-a``, or any command but ``run``) the tasks come from dodo.py as always,
and the reporter writes fresh evidence when the run ends well. ``pyproject.toml`` selects both
(``[tool.doit] loader``, ``DOIT_CONFIG["reporter"]``); a doit run elsewhere simply always takes the long way.

Imports only doit and the standard-library evidence module: this is the whole cost of a no-op.
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from doit import get_var
from doit.cmd_base import DodoTaskLoader
from doit.doit_cmd import DoitMain
from doit.exceptions import InvalidDodoFile
from doit.reporter import ConsoleReporter
from doit.task import Task

from ..engine.evidence import GENERATION, OUTPUTS, Evidence, Listings, Observation, Spec, described, plan_path
from ..engine.narrow import Edit, NotNarrow, edit_of
from ..engine.observe import Observer, TooManyRacyFiles
from ..errors import BuildError, display_path
from ..variables import SettingsFileError, build_dir, root_dir, saved_settings
from . import interrupt
from .invocation import DEFAULT_TASKS, Invocation, VariableError, answered, observed, resolve_variables
from .invocation import tasks_text as _tasks
from .progress import write_line

interrupt.install()  # the earliest this project's code runs in a doit process: Ctrl-C from here on is one line

EVIDENCE_KEPT = 16  # invocations remembered per build directory
FROM_EVIDENCE = "up to date (evidence of the last run)"  # a task of a no-op, which its one line already reports
CHECK_VARIABLE = "REDOX_CHECK"  # `full`: every task is checked after an edit, as before the narrowed check
KNOWN_CURRENT = 0  # tasks a narrowed run knows current from the evidence, without loading them


def variables() -> dict[str, str]:
    """The settings of this doit invocation (:func:`.invocation.resolve_variables` of doit's command-line
    variables)."""
    from doit import doit_cmd
    given = {name: value for name in doit_cmd._CMDLINE_VARS or {} if (value := get_var(name)) is not None}
    try:
        return resolve_variables(given)
    except VariableError as error:
        raise InvalidDodoFile(str(error)) from None


def saved_not_given(*names: str) -> list[str]:
    """Of ``names``, the settings this run takes from the settings file (not overridden on the command line)."""
    try:
        saved = saved_settings()
    except SettingsFileError:
        return []
    return [name for name in names if saved.get(name) and get_var(name) is None]


def doit_config(build: Path, root: Path) -> dict:
    if not root.is_dir():  # checked before anything is made under it
        raise InvalidDodoFile(f"root={root}: no such directory (the tree holding recipes/ and config/)")
    try:
        build.mkdir(parents=True, exist_ok=True)  # doit opens its database before any task runs
    except OSError as error:
        raise InvalidDodoFile(f"build={build}: cannot create the build directory: {error.strerror}") from None
    logs = build / "logs"  # what builds printed: the owner's only (docs/safety.md)
    logs.mkdir(mode=0o700, exist_ok=True)
    logs.chmod(0o700)
    return {
        # Our engine's store (build/engine/) is the only judge of staleness: tasks have no file_dep or targets,
        # so doit's own database holds nothing we read. sqlite3 writes only when a task ran (json rewrites its
        # whole file on every run, so a no-op would write), and survives concurrent readers; dbm would resolve to
        # dbm.dumb where gdbm is missing (slow, corrupts under concurrent use).
        "dep_file": str(build / "doit-state.sqlite"),
        "backend": "sqlite3",
        "verbosity": 2,
        "failure_verbosity": 2,
        "sort": "definition",
        "default_tasks": DEFAULT_TASKS,
        "reporter": Reporter,
    }


@dataclass
class Recording:
    """Evidence being gathered by a run that takes the long way (see :class:`Reporter`)."""

    invocation: Invocation
    spec: Spec
    seen: Observation
    previous: Evidence | None = None  # the evidence this run could not use
    generation: int = 0
    checked: set[str] = field(default_factory=set)
    executed: set[str] = field(default_factory=set)
    finished: set[str] = field(default_factory=set)  # found current, or run with success
    spoiled: bool = False
    narrowed: bool = False  # the check after an edit: the previous evidence's spec, plan and count go on
    task_deps: dict[str, list[str]] = field(default_factory=dict)  # doit's task_dep of every task loaded
    listings: Listings = field(default_factory=dict)  # of the directories observed, for the next observation


RECORDING: Recording | None = None

# doit reads the first character of every command-line argument to tell a NAME=VALUE variable: an empty argument
# (`doit inject SRC ""`, `doit list ""`) ended in an IndexError traceback. doit makes this loader before it reads the
# arguments, so an empty one is passed through as the positional argument it is, for the command to judge.
_EMPTY = "\0"  # no '=': doit keeps it as it is
_doit_process_args = DoitMain.process_args


def _process_args(self: DoitMain, cmd_args: list[str]) -> list[str]:
    return ["" if arg == _EMPTY else arg for arg in _doit_process_args(self, [arg or _EMPTY for arg in cmd_args])]


DoitMain.process_args = _process_args


class Loader(DodoTaskLoader):
    """``[tool.doit] loader``: like doit's own, but a repeated run with nothing changed skips dodo.py."""

    def setup(self, opt_values):
        self._options = opt_values  # dodo.py is imported when tasks are needed, and only then

    def load_doit_config(self):
        return doit_config(build_dir(variables()), root_dir(variables()))

    def load_tasks(self, cmd, pos_args):
        global RECORDING
        if "" in (pos_args or ()):
            from doit.exceptions import InvalidCommand
            raise InvalidCommand(f"`{cmd.get_name()}`: an empty argument (\"\") names nothing")
        invocation = self._invocation(cmd, pos_args)
        edit = evidence = None
        if invocation is not None:
            started = time.perf_counter()
            if (before := observed(invocation)) is not None:  # the entry point observed it a moment ago
                evidence, changes = before.evidence(), before.changed
            else:
                evidence = Evidence.load(invocation.evidence_path)
                changes = None if evidence is None else evidence.changed_or_why(exclude=[invocation.build])
            if changes == []:
                answered(invocation, evidence.tasks, len(evidence.seen), started)
                return [Task(name, None, doc=FROM_EVIDENCE, uptodate=[True]) for name in invocation.targets]
            edit = _edit(evidence, changes) if changes else None
            if changes and edit is None:
                print(f"checking every task: {_describe(described(changes))}")
            RECORDING = _start_recording(invocation, evidence) if edit is None else _narrow_recording(invocation,
                                                                                                    evidence)
        super().setup(self._options)
        from . import creators
        creators.LISTING = cmd.get_name() == "list"
        if edit is not None:
            _narrow(creators, invocation, evidence, edit)
        tasks = creators.in_order(super().load_tasks(cmd, pos_args))
        if cmd.get_name() == "run":
            _check_targets(pos_args, tasks)
        if RECORDING is not None and not RECORDING.narrowed:
            _add_build_inputs(RECORDING)
        return tasks

    def _invocation(self, cmd, pos_args: list[str]) -> Invocation | None:
        """The run this is, when evidence may answer it: ``doit run`` (or ``doit TARGET…``) with plain targets."""
        options = self._options
        targets = list(pos_args) or DEFAULT_TASKS
        if (cmd.get_name() != "run" or options.get("always") or options.get("seek_file")
                or any(arg.startswith("-") or "*" in arg for arg in targets)):
            return None
        dodo = Path(options["dodoFile"]).absolute()
        os.chdir(options["cwdPath"] or dodo.parent)  # where doit's own loader would run the tasks (and rustc -vV)
        return Invocation(targets, variables(), bool(options.get("single")), dodo)


def _shown(task: Task) -> bool:
    """A task the progress shows: one with actions (a group has none)."""
    return bool(task.actions) and not task.name.startswith("_")


def _check_targets(targets: list[str], tasks: list[Task]) -> None:
    """An unknown task is an error naming the nearest one (doit's own says only "Invalid parameter")."""
    from doit.exceptions import InvalidCommand

    from ..model.tomlfile import did_you_mean
    names = {task.name for task in tasks}
    for target in targets:
        if not target.startswith("-") and "*" not in target and target not in names:
            raise InvalidCommand(f"no task {target!r}{did_you_mean(target, names)}; `doit list` shows the stages, "
                                 "`doit list --all` every task")


def _edit(evidence: Evidence, changes: list[bytes | str] | str) -> Edit | None:
    """The changes as an edit the check can be narrowed to; None: they take the full check (or ``REDOX_CHECK=full``
    asks for it)."""
    if isinstance(changes, str) or os.environ.get(CHECK_VARIABLE) == "full":
        return None
    try:
        return edit_of(evidence, changes)
    except NotNarrow:
        return None


def _narrow(creators, invocation: Invocation, evidence: Evidence, edit: Edit) -> None:
    """Load only what the edit reaches (:func:`tasks.cli.creators.narrow`), and say so."""
    global KNOWN_CURRENT
    assert evidence.plan is not None
    loaded = creators.narrow(evidence.plan, invocation.targets, edit.candidates(evidence.plan),
                             kept_project(invocation.evidence_path))
    KNOWN_CURRENT = max(0, evidence.tasks - len(creators.ONLY))
    print(f"checking {len(loaded):,} of {_tasks(evidence.tasks)}: {_describe(edit.described)}")


def _describe(changes: list[str]) -> str:
    """The first change in words (the state's generation: a build of something else), and how many more."""
    if changes[0].startswith("cannot observe"):
        return changes[0]
    words = {"generation": "the build state (another command built, cleaned or forgot tasks)",
             "outputs": "an output (missing, or written since)"}
    first = words.get(changes[0]) or display_path(changes[0])
    more = "" if len(changes) == 1 else f" and {len(changes) - 1} more"
    return f"{first}{more} changed since the last run"


def _narrow_recording(invocation: Invocation, evidence: Evidence) -> Recording:
    """A narrowed run keeps the evidence's spec and plan (the edit changed neither), and what it just observed."""
    assert evidence.latest is not None
    spec = replace(evidence.spec, outputs=list(evidence.spec.outputs))
    return Recording(invocation, spec, evidence.inputs_seen(spec) or {}, evidence,
                     generation=evidence.latest[GENERATION] or 0, narrowed=True, listings=evidence.latest_listings)


def _start_recording(invocation: Invocation, previous: Evidence | None) -> Recording | None:
    """Observe the input directories now, before any task reads them."""
    spec = invocation.input_spec()
    seen: Observation = {}
    observer = Observer(exclude=[invocation.build], listings=_known_listings(previous))
    try:
        observer.singles(spec, seen)
        observer.directories(spec, seen)
    except (OSError, TooManyRacyFiles):
        return None
    return Recording(invocation, spec, seen, previous, listings=observer.listings)


def _known_listings(previous: Evidence | None) -> Listings:
    if previous is None:
        return {}
    return previous.latest_listings or previous.listings


def _add_build_inputs(recording: Recording) -> None:
    """What the tasks' signatures read besides the input directories, observed before any task is checked — or,
    when the inputs are those of the previous evidence, the observation its check just made (earlier still)."""
    from .creators import evidence_spec, state
    observer = Observer(exclude=[recording.invocation.build], listings=_known_listings(recording.previous))
    try:
        extra = evidence_spec()
        spec = recording.spec.merged(extra)
        if recording.previous is not None and (seen := recording.previous.inputs_seen(spec)) is not None:
            recording.seen, recording.listings = seen, recording.previous.latest_listings
        else:
            observer.directories(extra, recording.seen)
            observer.singles(extra, recording.seen)
            recording.listings.update(observer.listings)
        recording.generation = state().generation()
    except (BuildError, OSError, TooManyRacyFiles):  # no evidence then; the tasks say what is wrong, if anything
        recording.spoiled = True
        return
    recording.spec = spec
    recording.spec.state = str(state().path)


class Reporter(ConsoleReporter):
    """The build's progress (:mod:`.progress`: a live display on a terminal, a line per task start and end
    elsewhere); an up-to-date task is listed only when it was asked for by name (the thousands it needs are
    counted at the end, as make and ninja stay quiet about them); a failure is shown once, where it happens; and
    the run's evidence is left when every task ended current."""

    def initialize(self, tasks, selected_tasks):
        super().initialize(tasks, selected_tasks)
        self._asked_for = set(selected_tasks or ())
        self._up_to_date = self._ran = 0
        self._current_work = 0  # up-to-date tasks with actions: the part of the total that needed nothing
        self._settled = 0  # tasks with actions found up to date before the progress display was made
        self._failed: list[str] = []
        self._not_run = 0  # left out by `--continue` because a task they need failed
        self._started = time.time()  # the shared cache's hits since then were this run's
        self._progress = None
        self._total = _count_work(tasks, selected_tasks or DEFAULT_TASKS)
        if RECORDING is not None:
            RECORDING.task_deps = {name: list(task.task_dep) for name, task in tasks.items()}

    @property
    def progress(self):
        """Made when first needed: a no-op that only counts up-to-date tasks imports nothing for it."""
        if self._progress is None:
            from . import progress
            if progress.on_terminal(self.outstream):
                from .creators import recorded_duration, task_log
                self._progress = progress.Live(self.outstream, self._total, self._settled, recorded_duration,
                                               task_log)
            else:
                self._progress = progress.Lines(self.outstream)
        return self._progress

    def get_status(self, task):
        if RECORDING is not None:
            RECORDING.checked.add(task.name)

    def execute_task(self, task):
        if RECORDING is not None:
            RECORDING.executed.add(task.name)
        if _shown(task):
            self.progress.start(task.name)

    def skip_uptodate(self, task):
        if RECORDING is not None:
            RECORDING.finished.add(task.name)
        self._up_to_date += 1
        if task.actions:
            self._current_work += 1
            if self._progress is not None:
                self._progress.checked()
            else:
                self._settled += 1
        if task.name in self._asked_for and task.doc != FROM_EVIDENCE:
            self.write(f"-- {task.name}\n")

    def add_success(self, task):
        if RECORDING is not None:
            RECORDING.finished.add(task.name)
        if _shown(task):
            self._ran += 1
            self.progress.succeed(task.name)

    def add_failure(self, task, fail):
        from doit.exceptions import UnmetDependency
        self._spoil()
        if not fail.report:  # doit's own choice: nothing to say
            return
        if isinstance(fail, UnmetDependency):  # never started: the tasks its message names failed
            if not _shown(task):
                return
            self._not_run += 1
            self.progress.not_run(task.name, ", ".join(fail.message.split()))
        else:
            self._failed.append(task.name)
            self.progress.fail(task.name, _failure_text(fail))

    def skip_ignore(self, task):
        self._spoil()  # `doit ignore`d: not current, only skipped
        super().skip_ignore(task)

    def runtime_error(self, msg):
        self._spoil()
        super().runtime_error(msg)

    def _from_cache(self) -> str:
        """`` (3 from the cache)`` when the shared cache served tasks of this run (doit -n's workers too)."""
        if not self._ran:
            return ""
        from ..cache.events import events_file, hits_since
        from .creators import settings
        chosen = settings()
        hits = hits_since(events_file(chosen.build), self._started) if chosen.cache is not None else 0
        return f" ({hits:,} from the cache)" if hits else ""

    def write(self, text):
        if self._progress is not None:
            self._progress.write(text.rstrip("\n"))
        else:
            write_line(self.outstream, text.rstrip("\n"))

    def complete_run(self):
        if self._progress is not None:
            self._progress.close()
        if self._failed:
            not_run = f"{self._not_run:,} not run (a task they need failed), " if self._not_run else ""
            left = self._total - self._ran - len(self._failed) - self._not_run - self._current_work
            not_started = f"{left:,} not started (the build stopped at the failure; --continue builds what does " \
                          f"not need it), " if left > 0 else ""
            write_line(self.outstream, f"{_tasks(len(self._failed))} failed ({', '.join(self._failed)}), {not_run}"
                                       f"{not_started}{self._ran:,} run, {self._up_to_date:,} up to date")
        elif (from_cache := self._from_cache()) or self._up_to_date + KNOWN_CURRENT > len(self._asked_for):
            write_line(self.outstream, f"{_tasks(self._ran)} run{from_cache}, "
                                       f"{self._up_to_date + KNOWN_CURRENT:,} up to date")
        for message in self.runtime_errors:
            write_line(self.outstream, f"ERROR: {message.rstrip()}")
        if RECORDING is not None and not RECORDING.spoiled:
            try:
                _leave_evidence(RECORDING)
            except OSError as error:  # evidence only saves time: a run does not fail for want of it
                print(f"warning: no evidence kept for the next no-op: {error}", file=sys.stderr)

    @staticmethod
    def _spoil() -> None:
        if RECORDING is not None:
            RECORDING.spoiled = True


def _count_work(tasks: dict[str, Task], selected: list[str]) -> int:
    """How many tasks with actions the run may visit: the selected ones and everything they depend on."""
    seen: set[str] = set()
    pending = [name for name in selected if name in tasks]
    while pending:
        name = pending.pop()
        if name not in seen:
            seen.add(name)
            task = tasks[name]
            pending.extend(dep for dep in (*task.task_dep, *task.setup_tasks) if dep in tasks)
    return sum(1 for name in seen if tasks[name].actions)


def _failure_text(fail) -> str:
    """A task's failure: our errors say it all in their message; anything else is a bug, shown with its traceback."""
    from doit.exceptions import TaskFailed
    if isinstance(fail, TaskFailed):
        return fail.message.rstrip()
    return f"internal error (a bug of this build system, please report it):\n{fail.get_msg().rstrip()}"


def _leave_evidence(recording: Recording) -> None:
    """Keep the evidence when the run's only writes to the state were the tasks it ran, each recorded once, and
    every output is there."""
    from .creators import SIGNATURES, context, evidence_spec, plan, state
    if recording.checked - recording.finished:  # the run stopped before it got to them
        return
    if not recording.spec.covers(evidence_spec()):  # the tasks read a recipe or file that was not observed
        return
    if recording.executed - SIGNATURES.keys():  # a task the engine does not judge is never known current
        return
    spec, previous, path = recording.spec, recording.previous, recording.invocation.evidence_path
    if recording.narrowed:  # what the run wrote is observed again, the rest is as observed when it began
        made, tasks, digest = previous.plan, previous.tasks, previous.plan_digest
        written = {index for index, owner in enumerate(made.owners) if owner in recording.executed}
        Observer().outcome(spec, recording.seen, previous.latest[OUTPUTS], written)
    else:  # every task was checked: the plan is made from them
        outputs = {task: state().outputs([task]) for task in sorted(recording.checked & SIGNATURES.keys())}
        spec.outputs = [output for paths in outputs.values() for output in paths]
        made, tasks, digest = plan(recording.task_deps, outputs), len(recording.checked), None
        Observer().outcome(spec, recording.seen)
    if None in recording.seen[OUTPUTS] or recording.seen[GENERATION] != recording.generation + len(recording.executed):
        return
    if made.project is None:  # kept once, by the full check that made the plan
        made.project = context().project.save(kept_project(path))
    Evidence(spec, recording.seen, tasks, made, recording.listings, plan_digest=digest).save(path)
    _forget_old_evidence(path.parent)


def kept_project(evidence: Path) -> Path:
    """Where the project loaded by the run that left ``evidence`` is kept."""
    return evidence.parent.parent / "projects" / f"{evidence.stem}.pickle"


def _forget_old_evidence(directory: Path) -> None:
    """Keep the evidence of the most recent invocations only (and their projects)."""
    files = sorted(directory.iterdir(), key=lambda path: path.stat().st_mtime_ns if path.exists() else 0,
                   reverse=True)
    for path in files[EVIDENCE_KEPT:]:
        for kept in (path, kept_project(path), plan_path(path)):
            kept.unlink(missing_ok=True)

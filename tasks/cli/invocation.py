"""One ``doit run`` as the no-op evidence knows it, and its answer — before doit is imported.

A no-op is a question asked over and over (``doit image`` after ``doit image``), and its answer costs only the stats
the evidence compares (:mod:`tasks.engine.evidence`). Importing doit and building its command line would cost more
than that, so the project's ``doit`` entry point (:mod:`.main`) first reads a plain ``doit [run] [-f DODO] [-n N]
[-s] [TARGET…] [NAME=VALUE…]`` itself (:func:`plain_run`) and asks the evidence here; anything else, and any run
the evidence does not answer, goes to doit, whose loader (:mod:`.loader`) asks the same question of the same
:class:`Invocation` before it loads dodo.py. The standard library's lightest modules and
:mod:`tasks.engine.observe` only: what is imported here is part of every no-op's cost.
"""
from __future__ import annotations

import gc
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace

from ..engine.observe import look_again, read_kept
from ..hashing import hash_text
from ..variables import (
    NAMES,
    PROJECT_DIR,
    SettingsFileError,
    build_dir,
    path_problem,
    root_dir,
    saved_settings,
    settings_file,
)

TYPE_CHECKING = False  # typing's, without importing typing (see above)
if TYPE_CHECKING:
    from ..engine.evidence import Evidence, Spec

DEFAULT_TASKS = ["image"]  # what a bare `doit` builds, as a bare `make` builds upstream's image


class VariableError(ValueError):
    """A variable of the command line or the settings file that cannot be taken: the message says which and why."""


def resolve_variables(given: dict[str, str]) -> dict[str, str]:
    """The settings of an invocation: the settings file's (``settings.toml``, see
    :data:`tasks.variables.SETTINGS_FILE_NAME`), overridden by the command line's ``given`` variables (an empty
    value: the default). A variable the build does not read is an error (a typo such as ``confg=`` would otherwise
    be ignored), with the nearest known name."""
    for name in given:
        if name not in NAMES:
            import difflib
            near = difflib.get_close_matches(name, NAMES, n=1)
            hint = f"did you mean {near[0]}=? " if near else ""
            raise VariableError(f"unknown variable {name}= ({hint}the variables: {', '.join(NAMES)}; "
                                f"`doit help` says what each does)")
    try:
        saved = saved_settings()
    except SettingsFileError as error:
        raise VariableError(str(error)) from None
    values = {name: value for name, value in {**saved, **given}.items() if value != ""}
    for name in saved.keys() - given.keys():
        # A value saved long ago is the cause of what fails now: say so where it is, not only what it names.
        if values.get(name) and (problem := path_problem(name, values[name], values)) is not None:
            raise VariableError(f"{settings_file()}: {name}: {values[name]!r}: {problem} (saved by `doit "
                                f"settings`; `doit settings {name}=` removes it)")
    return values


class Invocation:
    """One ``doit run``: its variables, targets and options that change which tasks are checked. ``cwd``: where
    doit runs the tasks (the dodo file's directory)."""

    def __init__(self, targets: list[str], variables: dict[str, str], single: bool, dodo: Path):
        self.targets, self.variables, self.single, self.dodo = targets, variables, single, dodo

    @property
    def build(self) -> Path:
        return build_dir(self.variables)

    @property
    def evidence_path(self) -> Path:
        # root= and build= as the directories they name: `root=demo` and `root=$PWD/demo` are one invocation
        where = {**self.variables, "root": str(root_dir(self.variables)), "build": str(self.build)}
        # repr, not hash_value: plain strings and lists, and the no-op need not import json
        key = hash_text(repr([sorted(where.items()), self.targets, self.single, str(self.dodo), os.getcwd()]))
        return self.build / "cache" / "evidence" / f"{key}.marshal"

    def input_spec(self) -> Spec:
        """What loading the tasks reads, known before loading anything: the recipe files (wherever they are),
        the configs, and the build system's own code."""
        from ..engine.evidence import Spec
        root = root_dir(self.variables)
        return Spec(indexes=[str(root / "recipes")], zones=[str(root / "config")],
                    code_zones=[str(PROJECT_DIR / "tasks")],
                    files=[str(self.dodo), str(PROJECT_DIR / "pyproject.toml")])


def answered(invocation: Invocation, tasks: int, inputs: int, started: float) -> None:
    """Say that the evidence answered: the no-op's one line."""
    print(f"nothing changed since the last run of `{' '.join(invocation.targets)}`: {tasks_text(tasks)} "
          f"up to date ({inputs:,} inputs compared in {(time.perf_counter() - started) * 1000:.0f} ms)")


def tasks_text(count: int) -> str:
    return f"{count:,} task" if count == 1 else f"{count:,} tasks"


# --- before doit: a plain run, read here --------------------------------------------------------------------------

VALUE_OPTIONS = {"-f": "file", "--file": "file", "-n": "process", "--process": "process"}
FLAGS = {"-s": "single", "--single": "single"}


def plain_run(args: list[str]) -> Invocation | None:
    """The invocation of a plain ``doit run`` command line (see the module's docstring); None for anything else,
    which doit reads. Only a value of this project's settings is taken: a problem with one is doit's to report."""
    options: dict[str, str | bool] = {}
    targets: list[str] = []
    given: dict[str, str] = {}
    pending = iter(args)
    for arg in pending:
        name, equals, value = arg.partition("=")
        if arg in FLAGS:
            options[FLAGS[arg]] = True
        elif arg in VALUE_OPTIONS:
            options[VALUE_OPTIONS[arg]] = next(pending, "")
        elif equals and name in VALUE_OPTIONS and name.startswith("--"):
            options[VALUE_OPTIONS[name]] = value
        elif arg.startswith("-") or not arg or "*" in arg:
            return None
        elif equals:
            given[name] = value
        else:
            targets.append(arg)
    if targets[:1] == ["run"]:
        targets = targets[1:]
    try:
        variables = resolve_variables(given)
    except VariableError:
        return None
    dodo = Path(str(options.get("file") or "dodo.py")).absolute()
    return Invocation(targets or list(DEFAULT_TASKS), variables, bool(options.get("single")), dodo) \
        if dodo.is_file() else None


class Observed:
    """What :func:`answer_before_doit` found when the evidence did not hold: the loader goes on from it instead of
    observing everything again."""

    def __init__(self, evidence_path: Path, kept: tuple, changed: list[bytes | str], latest: dict, listings: dict):
        self.evidence_path, self.kept, self.changed = evidence_path, kept, changed
        self.latest, self.listings = latest, listings

    def evidence(self) -> Evidence:
        """The evidence, as :meth:`tasks.engine.evidence.Evidence.load` would give it, with what was observed."""
        from ..engine.evidence import Evidence
        evidence = Evidence.of_kept(self.kept, self.evidence_path)
        evidence.latest, evidence.latest_listings = self.latest, self.listings
        return evidence


OBSERVED: Observed | None = None


def answer_before_doit(args: list[str]) -> bool:
    """True when the evidence answered this command line, its line printed: doit need not run at all."""
    started = time.perf_counter()
    invocation = plain_run(args)
    if invocation is None:
        return False
    gc.disable()  # the evidence and its observation are tens of thousands of objects, and none is garbage
    try:
        return _answer(invocation, started)
    finally:
        gc.enable()


def _answer(invocation: Invocation, started: float) -> bool:
    here = os.getcwd()
    os.chdir(invocation.dodo.parent)  # where doit runs the tasks, as the loader does
    if _evidence_holds(invocation, started):
        return True
    os.chdir(here)
    return False


def _evidence_holds(invocation: Invocation, started: float) -> bool:
    global OBSERVED
    path = invocation.evidence_path
    if (kept := read_kept(path)) is None:
        return False
    spec, seen, tasks, listings, _ = kept
    try:  # the spec as the observer reads it: attributes (tasks.engine.evidence.Spec, without importing it)
        changed, latest, listed = look_again(SimpleNamespace(**spec), seen, listings, exclude=[invocation.build])
    except Exception:  # noqa: BLE001  (whatever it is, doit's loader meets it again and says it)
        return False
    if changed:
        OBSERVED = Observed(path, kept, changed, latest, listed)
        return False
    answered(invocation, tasks, len(seen), started)
    sys.stdout.flush()
    return True


def observed(invocation: Invocation) -> Observed | None:
    """What :func:`answer_before_doit` observed of this invocation's evidence, once."""
    global OBSERVED
    found, OBSERVED = OBSERVED, None
    return found if found is not None and found.evidence_path == invocation.evidence_path else None

"""What every stage module shares: the project selected on the command line, and doit's configuration."""
from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable
from pathlib import Path

from doit.exceptions import InvalidCommand, InvalidDodoFile, TaskFailed

from ..build import Builder
from ..engine import Engine, Signature, StampContext, StateStore, stamp_path
from ..engine.evidence import Spec
from ..errors import BuildError, LockError, display_path
from ..project import Project
from ..settings import Settings
from ..signatures import TaskInputs
from .loader import variables


def settings() -> Settings:
    return Settings.from_vars(variables())


@functools.cache
def project() -> Project:
    """The project of this doit invocation. A user error stops doit with one line and exit status 3."""
    try:
        loaded = Project.load(settings())
    except BuildError as error:
        raise InvalidDodoFile(str(error)) from None
    for warning in loaded.warnings:
        print(f"warning: {_relative(warning)}", file=sys.stderr)
    return loaded


@functools.cache
def builder() -> Builder:
    return Builder(project(), trees=engine().trees)


@functools.cache
def engine() -> Engine:
    return Engine(settings().build)


@functools.cache
def inputs() -> TaskInputs:
    return TaskInputs(builder(), engine())


def state() -> StateStore:
    return engine().state


def evidence_spec() -> Spec:
    """What the signatures read outside the input directories, for the no-op evidence (see .loader)."""
    return inputs().evidence_spec()


SIGNATURES: dict[str, Callable[[], Signature]] = {}
"""Every tracked task's signature function, for ``doit explain``."""


def signature_of(task: str) -> Signature:
    if task not in SIGNATURES:
        raise InvalidCommand(f"no task {task!r} with recorded inputs (see doit list --all)")
    return SIGNATURES[task]()


def tracked(task: str, method: str, args: tuple, signature: Callable[[], Signature],
            outputs: Callable[[], list[Path]] = list, stamp: Callable[[], StampContext] | None = None) -> dict:
    """doit fields for a task judged by the content-hash engine: stale unless our store has it recorded with
    this exact signature (and its outputs exist); after the action its outputs are hashed, stamped and recorded
    at once, so ``kill -9`` loses at most the task that was running."""
    SIGNATURES[task] = signature
    check = EngineCheck(task, signature)

    def run() -> TaskFailed | None:
        try:
            # The build lock (and recovery of a killed build's last publication), taken once the first task runs.
            # Another build may have finished this task while we waited for the lock: check again under it.
            engine().ensure_started()
            before = signature()  # before reading inputs: an edit during the build re-runs it next time
            if engine().state.is_current(task, before):
                return None
            _drop_stamps(outputs())  # an artifact replaced but not recorded must not keep its predecessor's stamp
            getattr(builder(), method)(*args)
            engine().publisher.adopt(task, before, outputs(), stamp() if stamp else None)
        except BuildError as error:
            return TaskFailed(str(error))
        return None
    run.__name__ = method
    return {"actions": [run], "uptodate": [check]}


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

    def __init__(self, task: str, signature: Callable[[], Signature]):
        self.task = task
        self.signature = signature

    def __call__(self) -> bool:
        # An input that cannot be read (a missing toolchain) makes the task stale: its action reports why.
        try:
            current = engine().state.is_current(self.task, self.signature())
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


def _drop_stamps(paths: list[Path]) -> None:
    for path in paths:
        stamp_path(path).unlink(missing_ok=True)


def _relative(message: str) -> str:
    path, sep, rest = message.partition(": ")
    return f"{display_path(path)}{sep}{rest}" if sep and path.startswith("/") else message

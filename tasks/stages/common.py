"""What every stage module shares: the project selected on the command line, and doit's configuration."""
from __future__ import annotations

import functools
import sys

from doit import get_var
from doit.exceptions import InvalidDodoFile, TaskFailed

from ..errors import BuildError, display_path
from ..build import Builder
from ..project import Project
from ..settings import OPTIONS, Settings

VARIABLES = ("config", "root", "build", *OPTIONS)
"""doit command-line variables: ``doit list config=config/aarch64/server.toml root=/path/to/tree``."""


def settings() -> Settings:
    return Settings.from_vars({name: value for name in VARIABLES if (value := get_var(name)) is not None})


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
    return Builder(project())


def action(method: str, *args):
    """A doit action calling ``Builder.<method>(*args)``. A user error fails the task with its one-line message
    (and the tail of the log, for a failed command) instead of a Python traceback."""
    def run() -> TaskFailed | None:
        try:
            getattr(builder(), method)(*args)
        except BuildError as error:
            return TaskFailed(str(error))
        return None
    run.__name__ = method
    return run


def _relative(message: str) -> str:
    path, sep, rest = message.partition(": ")
    return f"{display_path(path)}{sep}{rest}" if sep and path.startswith("/") else message


def doit_config(settings: Settings) -> dict:
    return {
        # Our own store keeps signatures; doit's is a cache of its bookkeeping. dbm would resolve to dbm.dumb
        # where gdbm is missing (slow, corrupts under concurrent use); json is the fastest portable backend.
        "dep_file": str(settings.build / "doit-state.json"),
        "backend": "json",
        "verbosity": 2,
        "failure_verbosity": 2,
        "sort": "definition",
    }

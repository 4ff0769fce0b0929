"""The end of a ``doit`` process: Ctrl-C is one line and exit status 130, not a traceback (issue 12, item 6); a run
that ends with :func:`leave` skips the interpreter's teardown.

The interrupt itself stays Python's ``KeyboardInterrupt``, raised where the build is: the running child and its
descendants are stopped (``tasks.process.run``), every ``.partial`` guard removes what the task had begun, the
engine records nothing for the unfinished task (it stays stale, as after ``kill -9``) and closes its store at exit.
Only the end changes: instead of the traceback, one line; instead of re-raising SIGINT, exit status 130.

Teardown frees every object one by one: the no-op's evidence and a loaded project are hundreds of thousands, tens of
milliseconds of a run whose whole point is to be quick. The exit handlers (the engine closing its store) still run.
"""
from __future__ import annotations

import atexit
import os
import sys

MESSAGE = ("interrupted: the task that was running stays stale and runs again next time; what finished before it "
           "is kept")
_interrupted = False
_status: int | None = None  # given to leave(): end with it, without the teardown


def install() -> None:
    """Take over the end of an interrupted run (once per process). Registered before the engine's own exit
    handler, so that it runs after it (atexit runs last-registered first)."""
    if getattr(install, "done", False):
        return
    install.done = True  # type: ignore[attr-defined]
    previous = sys.excepthook

    def excepthook(kind, value, traceback) -> None:
        global _interrupted
        if _by_interrupt(value):
            _interrupted = True
            print(MESSAGE, file=sys.stderr)
        else:
            previous(kind, value, traceback)

    def end_now() -> None:
        if _interrupted or _status is not None:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(130 if _interrupted else _status)

    sys.excepthook = excepthook
    atexit.register(end_now)


def _by_interrupt(error: BaseException | None) -> bool:
    """A KeyboardInterrupt, or an error it caused: Ctrl-C while a class is made (``__set_name__``) arrives as a
    RuntimeError whose cause is the interrupt."""
    while error is not None:
        if isinstance(error, KeyboardInterrupt):
            return True
        error = error.__cause__ or error.__context__
    return False


def leave(status: int | None) -> None:
    """``sys.exit(status)``, and after the exit handlers, the end of the process without the interpreter's
    teardown."""
    global _status
    _status = status or 0
    sys.exit(_status)

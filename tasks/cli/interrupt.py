"""Ctrl-C: one line and exit status 130, not a traceback (issue 12, item 6).

The interrupt itself stays Python's ``KeyboardInterrupt``, raised where the build is: the running child and its
descendants are stopped (``tasks.process.run``), every ``.partial`` guard removes what the task had begun, the
engine records nothing for the unfinished task (it stays stale, as after ``kill -9``) and closes its store at exit.
Only the end changes: instead of the traceback, one line; instead of re-raising SIGINT, exit status 130.
"""
from __future__ import annotations

import atexit
import os
import sys

MESSAGE = ("interrupted: the task that was running stays stale and runs again next time; what finished before it "
           "is kept")
_interrupted = False


def install() -> None:
    """Take over the end of an interrupted run (once per process). Registered before the engine's own exit
    handler, so that it runs after it (atexit runs last-registered first)."""
    if getattr(install, "done", False):
        return
    install.done = True  # type: ignore[attr-defined]
    previous = sys.excepthook

    def excepthook(kind, value, traceback) -> None:
        global _interrupted
        if issubclass(kind, KeyboardInterrupt):
            _interrupted = True
            print(MESSAGE, file=sys.stderr)
        else:
            previous(kind, value, traceback)

    def exit_130() -> None:
        if _interrupted:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(130)

    sys.excepthook = excepthook
    atexit.register(exit_130)

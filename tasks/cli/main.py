"""``doit`` and ``rdoit``: doit's own entry point, and ``doit`` from anywhere in the project.

``doit`` is stock doit's ``main`` behind three lines: a no-op that the evidence answers is answered before doit is
imported (:mod:`.invocation`); Ctrl-C while Python still imports doit (the first 0.3 s) is the
one-line interrupt of :mod:`tasks.cli.interrupt`, not a traceback; and where there is no ``dodo.py`` to run (a
subdirectory of the project, or anywhere else) and none is named with ``-f``, it is ``rdoit``: this project's
build, not stock doit's "Could not find dodo file".

Stock doit reads its configuration (``[tool.doit]`` in ``pyproject.toml``: this project's task loader, with the
fast no-op, and its commands: ``boot``, ``settings``, ``clean`` …) and ``dodo.py`` only from the directory it runs
in. ``rdoit ARGS`` runs ``doit ARGS`` in the project directory, so ``rdoit image`` in ``recipes/core/kernel/source``
does what ``doit image`` does at the top. Paths given relative to where it was typed (``root=``, ``build=``,
``bootloader=``, ``--image`` …) are made absolute first, so they mean what they meant there; ``config=`` stays
relative to ``root``, as always.
"""
from __future__ import annotations

from . import interrupt

interrupt.install()  # first: the imports below, and doit's, can be interrupted already

import os  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from ..variables import PROJECT_DIR, SETTINGS  # noqa: E402
from .invocation import answer_before_doit  # noqa: E402

PATH_VARIABLES = {setting.name for setting in SETTINGS if setting.kind == "path" and setting.name != "config"}
PATH_OPTIONS = {"--image", "--kernel", "--initrd", "--firmware", "--output", "-o"}


def absolute(args: list[str], here: Path) -> list[str]:
    """``args`` with the paths they give relative to ``here`` made absolute."""
    result, expect_path = [], False
    for arg in args:
        if expect_path:
            result.append(str(here / arg))
            expect_path = False
            continue
        name, equals, value = arg.partition("=")
        if equals and value and not value.startswith("/") and (name in PATH_VARIABLES or name in PATH_OPTIONS):
            result.append(f"{name}={here / value}")
        else:
            result.append(arg)
            expect_path = arg in PATH_OPTIONS
    return result


def doit() -> None:
    if not Path("dodo.py").exists() and not any(arg.startswith(("-f", "--file")) for arg in sys.argv[1:]):
        main()  # rdoit
    elif answer_before_doit(sys.argv[1:]):
        interrupt.leave(0)
    else:
        from doit.doit_cmd import DoitMain  # stock doit's main, which would sys.exit before leave()
        interrupt.leave(DoitMain().run(sys.argv[1:]))


def main() -> None:
    args = absolute(sys.argv[1:], Path.cwd())
    os.chdir(PROJECT_DIR)
    if answer_before_doit(args):
        interrupt.leave(0)
    from doit.doit_cmd import DoitMain
    interrupt.leave(DoitMain().run(args))

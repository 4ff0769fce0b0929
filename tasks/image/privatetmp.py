"""The installer's ``/tmp``, kept private: redox_installer 0.2.40 stages the whole filesystem tree in the hard-coded
``/tmp/redox_installer_<pid>`` (and the bootloaders in ``/tmp/redox_installer_bootloader_<pid>``), as root, and
leaves it behind when it fails or is killed.

Where bubblewrap (``bwrap``, Debian's ``bubblewrap``) can make a mount namespace — Linux, as root or with user
namespaces — the installer runs with the host's filesystem except ``/tmp``, which is a directory of the build
emptied before and after every run (so even a kill leaves nothing the next run does not remove); the paths it must
read or write under the host's /tmp (the build directory, the config files) are bound into it at the same paths,
the config files read-only; it dies with its parent.

Elsewhere (macOS; Linux without bwrap or the privilege) it runs in the host's /tmp through a shell that removes its
two staging directories when it exits, failed or not; only a kill of that shell can leave them behind.
"""
from __future__ import annotations

import functools
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from ..atomic import remove_path
from ..errors import CommandError
from ..process import run

HOST_TMP = Path("/tmp")
# The command in the background, so that its pid is known; its staging directories removed however it ends.
_CLEAN_UP = ('"$@" & child=$!; trap \'kill -TERM "$child" 2>/dev/null\' INT TERM; wait "$child"; status=$?; '
             'rm -rf "/tmp/redox_installer_$child" "/tmp/redox_installer_bootloader_$child"; exit "$status"')


@functools.cache
def bubblewrap() -> str | None:
    """bwrap, when it can make a mount namespace here (probed once)."""
    bwrap = shutil.which("bwrap") if sys.platform.startswith("linux") else None
    if bwrap is None:
        return None
    try:
        run([bwrap, "--dev-bind", "/", "/", "--tmpfs", "/tmp", "true"], capture=True)
    except CommandError:  # no mount namespace for this user here
        return None
    return bwrap


def private_tmp_command(argv: Sequence[str | Path], *, scratch: Path, writable: Sequence[Path] = (),
                        readable: Sequence[Path] = ()) -> list[str]:
    """``argv`` with ``scratch`` as its /tmp and ``writable``/``readable`` kept where they are, or, where that is
    not possible, with its staging directories removed when it exits."""
    words = [str(arg) for arg in argv]
    if (bwrap := bubblewrap()) is None:
        return ["sh", "-c", _CLEAN_UP, "sh", *words]
    binds = [bwrap, "--die-with-parent", "--dev-bind", "/", "/", "--bind", str(scratch), "/tmp"]
    for option, paths in (("--bind", writable), ("--ro-bind", readable)):
        for path in paths:
            if path.resolve().is_relative_to(HOST_TMP):  # elsewhere, the host's own path is there already
                binds += [option, str(path.resolve()), str(path.resolve())]
    return [*binds, "--", *words]


def fresh(scratch: Path) -> Path:
    """``scratch`` emptied (a killed run's staging tree removed) and made again."""
    remove_path(scratch)
    scratch.mkdir(parents=True)
    return scratch

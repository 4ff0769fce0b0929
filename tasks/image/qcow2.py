"""The qcow2 copy of the raw disk image: ``qemu-img convert``, then ``qemu-img check`` before it replaces the last
one."""
from __future__ import annotations

import functools
import json
from pathlib import Path

from ..atomic import atomic_path
from ..errors import FormatError
from ..process import run
from .backups import install_with_backups


def convert_qcow2(raw: Path, output: Path, backups: int = 1, log: Path | None = None) -> None:
    """Write ``output`` from ``raw``; the previous qcow2 is kept as ``.bak`` and survives any failure."""
    with atomic_path(output, install=functools.partial(install_with_backups, keep=backups)) as partial:
        run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, partial], log=log)
        check_qcow2(partial, expected_size=raw.stat().st_size, log=log)


def check_qcow2(path: Path, expected_size: int | None = None, log: Path | None = None) -> None:
    """``qemu-img check`` finds no corruption or leak, and the virtual size is ``expected_size``."""
    # Exit status 2 (corruptions) and 3 (leaked clusters) still print the JSON report we explain below.
    report = json.loads(run(["qemu-img", "check", "-f", "qcow2", "--output=json", path], capture=True, log=log,
                            ok_codes=(0, 2, 3)))
    problems = {name: report[name] for name in ("corruptions", "leaks", "check-errors") if report.get(name)}
    if problems:
        details = ", ".join(f"{count} {name}" for name, count in problems.items())
        raise FormatError(f"qemu-img check found {details}", path=path, key="qcow2")
    if expected_size is not None:
        info = json.loads(run(["qemu-img", "info", "-f", "qcow2", "--output=json", path], capture=True, log=log))
        if info["virtual-size"] != expected_size:
            raise FormatError(f"virtual size {info['virtual-size']} differs from the raw image's {expected_size}",
                              path=path, key="qcow2.virtual-size")


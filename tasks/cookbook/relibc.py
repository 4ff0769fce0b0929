"""relibc's stage → the userspace sysroot ``build/<arch>/sysroot`` (one artifact, so a relibc change reaches every
userspace build through the sysroot's digest).

relibc's cargo build leaves ``librelibc.a`` and ``libcrt0.a``/``libcrti.a``/``libcrtn.a``; the fork turns each CRT
archive into one relocatable object (``llvm-ar x`` + ``rust-lld -flavor gnu -r``), names the library ``libc.a``
and adds empty archives for the libraries other C code expects to link (pthread, dl, rt, m live in libc).
A stage that already holds ``lib/libc.a`` and ``lib/crt*.o`` (relibc's ``make install``) is taken as it is.
"""
from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

from ..atomic import atomic_path
from ..errors import InputError
from ..process import run

CRT_OBJECTS = ("crt0", "crti", "crtn")
STUB_LIBRARIES = ("libpthread.a", "libdl.a", "librt.a", "libm.a")
EMPTY_ARCHIVE = b"!<arch>\n"  # what `ar rcs` writes for an archive without members


def _find(stage: Path, names: tuple[str, ...]) -> Path | None:
    """The first of ``names`` present in the stage's ``lib``/``usr/lib`` or at its top (cargo's output dir)."""
    for directory in (stage / "usr" / "lib", stage / "lib", stage):
        for name in names:
            if (directory / name).is_file():
                return directory / name
    return None


def _crt_object(stage: Path, name: str, work: Path, ar: str, rust_lld: str, log: Path | None) -> Path:
    existing = _find(stage, (f"{name}.o",))
    if existing is not None:
        return existing
    archive = _find(stage, (f"lib{name}.a",))
    if archive is None:
        raise InputError(f"relibc stage has neither {name}.o nor lib{name}.a", path=stage)
    members = work / name
    members.mkdir()
    run([*ar.split(), "x", archive.resolve()], cwd=members, log=log)
    objects = sorted(members.glob("*.o"))
    if not objects:
        raise InputError(f"{archive.name} holds no object files", path=archive)
    merged = work / f"{name}.o"
    run([rust_lld, "-flavor", "gnu", "-r", "-o", merged, *objects], log=log)
    return merged


def assemble_relibc_sysroot(relibc_stage: Path, sysroot: Path, *, ar: str, rust_lld: str,
                            libraries: Iterable[Path] = (), log: Path | None = None) -> Path:
    """Write ``sysroot/lib`` (libc.a, crt0.o, crti.o, crtn.o, stub archives, and ``libraries``, such as the
    unwinder stubs' libgcc_eh.a) and ``sysroot/include`` from ``relibc_stage``; built in ``<sysroot>.partial`` and
    renamed, so a failure keeps the previous sysroot. ``ar``: the toolchain's ``llvm-ar``; ``rust_lld``: its
    ``rust-lld``."""
    libc = _find(relibc_stage, ("libc.a", "librelibc.a"))
    if libc is None:
        raise InputError("relibc stage has neither libc.a nor librelibc.a", path=relibc_stage)
    with atomic_path(sysroot, directory=True) as partial:
        lib = partial / "lib"
        lib.mkdir()
        shutil.copy2(libc, lib / "libc.a")
        with tempfile.TemporaryDirectory(dir=partial) as scratch:
            for name in CRT_OBJECTS:
                shutil.copy2(_crt_object(relibc_stage, name, Path(scratch), ar, rust_lld, log), lib / f"{name}.o")
        for stub in STUB_LIBRARIES:
            (lib / stub).write_bytes(EMPTY_ARCHIVE)
        for library in libraries:
            shutil.copy2(library, lib / library.name)
        for include in (relibc_stage / "usr" / "include", relibc_stage / "include"):
            if include.is_dir():
                shutil.copytree(include, partial / "include", symlinks=True, dirs_exist_ok=True)
                break
    return sysroot

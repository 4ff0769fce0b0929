"""The sysroot's ``libgcc_eh.a``: the unwinder stubs std programs link on Redox (``_Unwind_Backtrace``,
``_Unwind_GetIP``), compiled from the project's own crate (``unwind_stubs/``) for the userspace target.

Without it every std program fails to link (``unable to find library -lgcc_eh``). The crate is compiled as one
object of its own (``--emit=obj``: no copy of core inside, so nothing clashes with the std it is linked beside)
and archived with the toolchain's llvm-ar.
"""
from __future__ import annotations

from pathlib import Path

from ..atomic import atomic_path
from ..errors import BuildError
from ..process import run
from ..toolchain.env import CargoBuild

CRATE = Path(__file__).resolve().parent / "unwind_stubs"
ARCHIVE = "libgcc_eh.a"
SYMBOLS = ("_Unwind_Backtrace", "_Unwind_GetIP")


def build_unwind_stubs(cargo: CargoBuild, target_dir: Path, archive: Path, *, ar: str,
                       log: Path | None = None) -> Path:
    """Compile the stubs with ``cargo`` (a target build of the userspace spec) under ``target_dir``, then write
    ``archive``."""
    run(cargo.cargo_argv("rustc", "--release", "--lib", "--locked", "--manifest-path", str(CRATE / "Cargo.toml"),
                         "--target-dir", str(target_dir), "--", "--emit=obj"), env=cargo.env(), log=log)
    objects = sorted((target_dir / cargo.target_name / "release" / "deps").glob("unwind_stubs-*.o"),
                     key=lambda path: path.stat().st_mtime_ns)
    if not objects:
        raise BuildError("cargo built no object of the unwinder stubs", path=target_dir)
    with atomic_path(archive) as partial:
        run([*ar.split(), "rcs", partial, objects[-1]], log=log)
    return archive

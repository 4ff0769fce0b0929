"""The sysroot's ``libgcc_eh.a``: the unwinder std programs link on Redox, compiled from the project's own crate
(``unwind_stubs/``) for the userspace target.

Without it every std program fails to link (``unable to find library -lgcc_eh``); with too few functions in it,
those whose std code takes a backtrace do (``undefined symbol: _Unwind_GetCFA``). So the set is not guessed: the
crate is compiled with the userspace target's own ``-Zbuild-std``, and every ``_Unwind_*`` symbol that target's
std, core and friends leave undefined must be one the crate defines, or the build stops naming the missing ones.
The crate is compiled as one object of its own (``--emit=obj``: no copy of core inside, so nothing clashes with
the std it is linked beside) and archived with the toolchain's llvm-ar.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from ..atomic import atomic_path
from ..errors import BuildError
from ..process import run
from ..toolchain.env import CargoBuild

CRATE = Path(__file__).resolve().parent / "unwind_stubs"
ARCHIVE = "libgcc_eh.a"
PREFIX = "_Unwind_"


def build_unwind_stubs(cargo: CargoBuild, target_dir: Path, archive: Path, *, ar: str, nm: str,
                       log: Path | None = None) -> Path:
    """Compile the stubs with ``cargo`` (a userspace target build: it builds the target's std beside them) under
    ``target_dir``, check they define every unwinder symbol that std references, then write ``archive``."""
    messages = run(cargo.cargo_argv("rustc", "--release", "--lib", "--locked", "--manifest-path",
                                    str(CRATE / "Cargo.toml"), "--target-dir", str(target_dir),
                                    "--message-format=json-render-diagnostics", "--", "--emit=obj"),
                   env=cargo.env(), log=log, capture=True)
    deps = target_dir / cargo.target_name / "release" / "deps"
    stubs = _object_of(messages, deps)
    missing = referenced(nm, sorted(deps.glob("*.rlib"))) - defined(nm, stubs)
    if missing:
        raise BuildError(f"the target's std references {', '.join(sorted(missing))}, which the unwinder stubs do "
                         f"not define: add them to {CRATE / 'src/lib.rs'}", path=deps)
    with atomic_path(archive) as partial:
        run([*ar.split(), "rcs", partial, stubs], log=log)
    return archive


def _object_of(messages: str, deps: Path) -> Path:
    """The object of this very crate: cargo reports its ``deps/libunwind_stubs-<hash>.rmeta``, and ``--emit=obj``
    writes ``unwind_stubs-<hash>.o`` beside it (not the newest ``unwind_stubs-*.o``, which may be another
    build's)."""
    for line in messages.splitlines():
        message = json.loads(line) if line.startswith("{") else {}
        if message.get("reason") == "compiler-artifact" and message["target"]["name"] == "unwind_stubs":
            for name in message["filenames"]:
                if Path(name).parent == deps and (stubs := deps / f"{Path(name).stem.removeprefix('lib')}.o").is_file():
                    return stubs
    raise BuildError("cargo built no object of the unwinder stubs", path=deps)


def referenced(nm: str, libraries: Iterable[Path]) -> set[str]:
    """The unwinder symbols ``libraries`` (rlibs, archives, objects) leave undefined."""
    return _symbols(nm, "--undefined-only", libraries)


def defined(nm: str, library: Path) -> set[str]:
    return _symbols(nm, "--defined-only", [library])


def _symbols(nm: str, which: str, files: Iterable[Path]) -> set[str]:
    files = list(files)
    if not files:
        return set()
    # rlibs carry a metadata member nm cannot read: it says so on stderr and goes on with the objects.
    listing = run([*nm.split(), which, "--format=just-symbols", "--no-sort", *files], capture=True, ok_codes=(0, 1))
    return {line.strip() for line in listing.splitlines() if line.strip().startswith(PREFIX)}

"""The cookbook build script: rendered from the one prelude template, run with the upstream environment
(spec §4.5) as ``bash -ex`` with the script on stdin, as upstream's cookbook runs it."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..model.recipe import Build, Recipe
from ..process import child_env, run
from ..settings import host_triple
from ..templating import render, template_path
from ..toolchain.env import CargoBuild

PRELUDE = "cookbook_prelude.sh.j2"
REDOXER = "cookbook_redoxer"


def redoxer_path() -> Path:
    """The cargo wrapper scripts call as ``$COOKBOOK_CARGO``/``$COOKBOOK_REDOXER``."""
    return template_path(REDOXER)


def offline() -> bool:
    """``COOKBOOK_OFFLINE`` set (and not 0 or false), as upstream's cookbook reads it: nothing from the network."""
    return os.environ.get("COOKBOOK_OFFLINE", "") not in ("", "0", "false")


def gnu_target(target: str) -> str:
    """GNU_TARGET as redoxer derives it: the triple, with riscv64gc spelled as GNU tools know it."""
    return target.replace("riscv64gc-", "riscv64-", 1) if target.startswith("riscv64gc-") else target


def build_script(build: Build) -> str:
    return render(PRELUDE, phase="build", build=build, script="")


def fetch_script(script: str) -> str:
    return render(PRELUDE, phase="fetch", build=None, script=script)


@dataclass(frozen=True)
class ScriptDirs:
    """The directories a build script sees as COOKBOOK_* variables (absolute)."""

    root: Path
    recipe: Path
    source: Path
    build: Path
    stage: Path
    sysroot: Path
    cargo_target: Path
    toolchain: Path | None = None


@dataclass(frozen=True)
class ScriptOptions:
    target: str                 # TARGET: the package triple (a Redox triple, or the host's for host: recipes)
    jobs: int = 0               # 0: as many as cores
    offline: bool = False
    strip: bool = True
    debug: bool = False
    source_ident: str = ""


def build_environment(name: str, dirs: ScriptDirs, cargo: CargoBuild, options: ScriptOptions,
                      base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a build script: upstream's cookbook and ``redoxer env`` variables, then the cargo
    build's (backend, RUSTFLAGS, tools), then the wrapper's own."""
    variables = {
        "TARGET": options.target,
        "GNU_TARGET": gnu_target(options.target),
        "COOKBOOK_NAME": name,
        "COOKBOOK_ROOT": str(dirs.root),
        "COOKBOOK_RECIPE": str(dirs.recipe),
        "COOKBOOK_SOURCE": str(dirs.source),
        "COOKBOOK_BUILD": str(dirs.build),
        "COOKBOOK_STAGE": str(dirs.stage),
        "COOKBOOK_SYSROOT": str(dirs.sysroot),
        "COOKBOOK_CARGO_TARGET_DIR": str(dirs.cargo_target),
        "COOKBOOK_HOST_TARGET": host_triple(),
        "COOKBOOK_MAKE_JOBS": str(options.jobs or os.cpu_count() or 1),
        "COOKBOOK_REDOXER": str(redoxer_path()),
        "COOKBOOK_SOURCE_IDENT": options.source_ident,
        "COOKBOOK_CARGO_TARGET": cargo.target,
        "COOKBOOK_CARGO_TARGET_NAME": cargo.target_name,
        "COOKBOOK_CARGO_ZFLAGS": " ".join(cargo.cargo_flags),
        "COOKBOOK_STRIP": cargo.strip,
        **cargo.set,
    }
    # Upstream tests these with -n: unset them unless on, whatever the caller's environment says.
    flags = {"COOKBOOK_OFFLINE": options.offline, "COOKBOOK_NOSTRIP": not options.strip,
             "COOKBOOK_DEBUG": options.debug}
    variables |= {flag: "1" for flag, on in flags.items() if on}
    unset = [*cargo.unset, *(flag for flag, on in flags.items() if not on)]
    # Tested with -n too: set only where the cargo build sets them (Cranelift; a target that links statically).
    unset += [flag for flag in ("COOKBOOK_CRANELIFT", "COOKBOOK_STATIC") if flag not in cargo.set]
    if dirs.toolchain is None:
        unset.append("COOKBOOK_TOOLCHAIN")
    else:
        variables["COOKBOOK_TOOLCHAIN"] = str(dirs.toolchain)
    return child_env(set=variables, unset=unset, base=base)


def run_build_script(build: Build, name: str, dirs: ScriptDirs, cargo: CargoBuild, options: ScriptOptions,
                     log: Path) -> None:
    run(["bash", "-ex"], cwd=dirs.build, env=build_environment(name, dirs, cargo, options), log=log,
        stdin=build_script(build))


def run_fetch_script(recipe: Recipe, source: Path, script: str, log: Path | None) -> None:
    """A recipe's ``[source].script``, in the source directory, after the patches."""
    env = child_env(set={"COOKBOOK_SOURCE": str(source), "COOKBOOK_RECIPE": str(recipe.dir),
                         "COOKBOOK_NAME": recipe.name, "COOKBOOK_HOST_TARGET": host_triple()})
    run(["bash", "-ex"], cwd=source, env=env, log=log, stdin=fetch_script(script))

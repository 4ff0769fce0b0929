"""The initfs tree: which built binaries go where, and the configuration files init reads from it.

``tasks/templates/initfs/layout.toml`` says what goes in per target and board; ``init.rc.j2``,
``init_drivers.rc.j2`` and ``pcid-initfs.toml.j2`` render ``etc/``. :func:`assemble_tree` puts it all in a
directory that :func:`tasks.initfs.format.write_initfs` then archives.
"""
from __future__ import annotations

import json
import os
import shutil
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from ..atomic import atomic_path
from ..errors import InputError
from ..process import run
from ..templating import TEMPLATES_DIR

if TYPE_CHECKING:
    import jinja2

TEMPLATES = TEMPLATES_DIR / "initfs"
LAYOUT_FILE = TEMPLATES / "layout.toml"
DRIVERS_DIR = "/scheme/initfs/lib/drivers/"
TEMPLATE_RUST_LOG = "warn"  # what the project's init.rc template exports when rust_log= is not set
RUST_LOG_ALLOWED = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-=,.:/")
EXECUTABLE = 0o755
REGULAR = 0o644


class PcidDriver(BaseModel):
    """One ``[[drivers]]`` entry of pcid-spawner's configuration; unset keys match any device."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str
    class_: int | None = Field(None, alias="class")
    subclass: int | None = None
    vendor: int | None = None
    device: int | None = None
    command: tuple[str, ...] = Field(min_length=1)


class InitfsLayout(BaseModel):
    """What one target/board's initfs holds (see the comment at the top of layout.toml)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    target: str
    board: str | None = None
    bin: tuple[str, ...]
    board_bin: tuple[str, ...] = ()
    drivers: tuple[str, ...] = ()
    copies: dict[str, str] = {}
    init_drivers: tuple[str, ...]
    pcid: tuple[PcidDriver, ...] = ()

    @property
    def daemons(self) -> tuple[str, ...]:
        return self.bin + self.board_bin

    @property
    def binaries(self) -> tuple[str, ...]:
        """Every binary the build must provide."""
        return self.daemons + self.drivers

    @model_validator(mode="after")
    def _consistent(self) -> "InitfsLayout":
        for names, where in ((self.daemons, "bin/"), (self.drivers, "lib/drivers/")):
            if duplicates := sorted({name for name in names if names.count(name) > 1}):
                raise ValueError(f"listed twice in {where}: {', '.join(duplicates)}")
        for copy, source in self.copies.items():
            if source not in self.daemons or copy in self.daemons:
                raise ValueError(f"copies: bin/{copy} must be a new name copied from a daemon in bin/ ({source})")
        for driver in self.pcid:
            program = driver.command[0]
            if not program.startswith(DRIVERS_DIR) or program[len(DRIVERS_DIR):] not in self.drivers:
                raise ValueError(f"pcid entry {driver.name!r} runs {program}, which is not one of the drivers "
                                 f"({DRIVERS_DIR}<name> for a name in 'drivers')")
        return self


def load_layout(target: str, board: str | None = None, path: Path = LAYOUT_FILE) -> InitfsLayout:
    """The layout of ``target``, with ``board``'s keys replacing the target's."""
    try:
        with open(path, "rb") as stream:
            targets = tomllib.load(stream).get("targets", {})
    except tomllib.TOMLDecodeError as error:
        raise InputError(f"not valid TOML: {error}", path=path) from None
    if target not in targets:
        raise InputError(f"no initfs layout for this target (known: {', '.join(sorted(targets))})", path=path,
                         key=f"targets.{target}")
    table = dict(targets[target])
    boards = table.pop("boards", {})
    if board is not None and board not in boards:
        raise InputError(f"no such board (known: {', '.join(sorted(boards)) or 'none'})", path=path,
                         key=f"targets.{target}.boards.{board}")
    try:
        return InitfsLayout(target=target, board=board, **(table | boards.get(board, {})))
    except ValidationError as error:
        where, reason = _first_problem(error)
        raise InputError(reason, path=path, key=f"targets.{target}{'.' + where if where else ''}") from None


def _first_problem(error: ValidationError) -> tuple[str, str]:
    """(dotted key, reason) of a validation error, without pydantic's "Value error, " prefix."""
    problem = error.errors()[0]
    reason = str(problem["ctx"]["error"]) if "error" in problem.get("ctx", {}) else problem["msg"]
    return ".".join(str(part) for part in problem["loc"]), reason


class BuildStamp(BaseModel):
    """The build identity written on init.rc's second line (from the build manifest; extra keys are ignored)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    commit: str
    dirty: bool = False
    date: str
    built: str = ""  # when the artifact was built (SOURCE_DATE_EPOCH, else now): shown, never part of a signature

    @field_validator("commit")
    @classmethod
    def _one_word(cls, commit: str) -> str:
        if not commit or any(char.isspace() or char == "|" for char in commit):
            raise ValueError(f"{commit!r} must be one word without '|'")
        return commit

    @field_validator("date", "built")
    @classmethod
    def _one_line(cls, date: str, info: ValidationInfo) -> str:
        if (not date and info.field_name == "date") or any(char in "\r\n|" for char in date):
            raise ValueError(f"{date!r} must be one line without '|'")
        return date

    @property
    def label(self) -> str:
        return f"{self.commit}-dirty" if self.dirty else self.commit

    def identity(self) -> dict:
        """What the stamp says of the sources, for signatures: the build time changes on every build."""
        return self.model_dump(exclude={"built"})


def _environment() -> jinja2.Environment:
    import jinja2  # here: loading the tasks (the check after an edit) renders nothing
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), undefined=jinja2.StrictUndefined,
                                     keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True,
                                     autoescape=False)
    environment.filters["toml_string"] = lambda text: json.dumps(text, ensure_ascii=False)  # JSON ⊂ TOML strings
    return environment


def render_init_rc(manifest: Mapping[str, object] | BuildStamp, rust_log: str = "warn") -> str:
    """``etc/init.rc``: ``rust_log`` is the ``RUST_LOG`` filter users change (``warn``, ``info``, ``pcid=debug``…)."""
    _check_rust_log(rust_log)
    try:
        stamp = manifest if isinstance(manifest, BuildStamp) else BuildStamp.model_validate(dict(manifest))
    except ValidationError as error:
        where, reason = _first_problem(error)
        raise InputError(f"{reason} (the build stamp on init.rc's second line)", key=where) from None
    return _environment().get_template("init.rc.j2").render(stamp=stamp, rust_log=rust_log)


def _check_rust_log(rust_log: str) -> None:
    if not rust_log or not set(rust_log) <= RUST_LOG_ALLOWED:
        raise InputError(f"{rust_log!r} is not a RUST_LOG filter (letters, digits and _-=,.:/ only)", key="rust_log")


def render_init_drivers_rc(layout: InitfsLayout) -> str:
    return _environment().get_template("init_drivers.rc.j2").render(
        target=layout.target, board=layout.board, lines=layout.init_drivers)


def render_pcid_config(layout: InitfsLayout) -> str:
    return _environment().get_template("pcid-initfs.toml.j2").render(
        target=layout.target, board=layout.board, drivers=layout.pcid)


@dataclass(frozen=True)
class InitfsTree:
    root: Path
    files: tuple[str, ...]  # paths relative to the root, sorted


# The users' own files in the base source, as the fork's build-initfs script takes them: initfs path → source path.
USER_FILES = {"etc/init.rc": "init.rc", "etc/init_drivers.rc": "{target}/init_drivers.rc",
              "etc/pcid/initfs.toml": "drivers/initfs.toml"}
STAMP_COMMENT = "# Pure-Rust Redox | Build: {label} | {date}{built}\n"


def user_files(source: Path, target: str) -> dict[str, Path] | None:
    """The base source's own ``init.rc``, ``<target>/init_drivers.rc`` and ``drivers/initfs.toml``, when it has an
    ``init.rc`` (None: the initfs takes the project's templates)."""
    if not (source / USER_FILES["etc/init.rc"]).is_file():
        return None
    files = {place: source / name.format(target=target) for place, name in USER_FILES.items()}
    if missing := [str(path.relative_to(source)) for path in files.values() if not path.is_file()]:
        raise InputError(f"the base source has init.rc but not {', '.join(missing)} (the initfs takes all three "
                         "from it)", path=source / missing[0])
    return files


def stamped_init_rc(text: str, stamp: BuildStamp, rust_log: str | None, path: Path) -> str:
    """The user's ``init.rc`` with only its stamp comment (line 2; inserted when line 2 is no comment) and, when
    ``rust_log`` is given, its ``export RUST_LOG`` line rewritten."""
    lines = text.splitlines(keepends=True)
    stamp_line = STAMP_COMMENT.format(label=stamp.label, date=stamp.date,
                                      built=f" | built {stamp.built}" if stamp.built else "")
    if len(lines) >= 2 and lines[1].startswith("#"):
        lines[1] = stamp_line
    else:
        lines.insert(min(1, len(lines)), stamp_line)
    if rust_log is not None:
        _check_rust_log(rust_log)
        exports = [index for index, line in enumerate(lines) if line.split()[:2] == ["export", "RUST_LOG"]]
        if not exports:
            raise InputError("has no `export RUST_LOG` line for rust_log= to set", path=path, key="rust_log")
        for index in exports:
            lines[index] = f"export RUST_LOG {rust_log}\n"
    return "".join(lines)


def assemble_tree(destination: Path, layout: InitfsLayout, binaries: Mapping[str, Path], *,
                  manifest: Mapping[str, object] | BuildStamp, rust_log: str | None = None,
                  strip: Path | None = None, etc: Mapping[str, str] | None = None,
                  log: Path | None = None) -> InitfsTree:
    """Fill ``destination`` (replaced as a whole) with the layout's binaries and the ``etc/`` files: ``etc`` (initfs
    path → text: the users' own, see :func:`user_files`), else rendered from the project's templates.

    ``binaries`` maps each name of ``layout.binaries`` to its built file. With ``strip`` (the toolchain's
    llvm-strip, or any tool taking ``-o OUT IN``) every binary is stripped on the way in; without it, copied."""
    sources = _built_binaries(layout, binaries)
    programs = {f"{'bin' if name in layout.daemons else 'lib/drivers'}/{name}": sources[name]
                for name in layout.binaries}
    programs |= {f"bin/{copy}": sources[source] for copy, source in layout.copies.items()}
    return write_tree(destination, programs, etc=etc if etc is not None else template_etc(layout, manifest, rust_log),
                      strip=strip, log=log)


def template_etc(layout: InitfsLayout, manifest: Mapping[str, object] | BuildStamp,
                 rust_log: str | None = None) -> dict[str, str]:
    """The ``etc/`` files rendered from the project's templates for ``layout``."""
    return {
        "etc/init.rc": render_init_rc(manifest, rust_log or TEMPLATE_RUST_LOG),
        "etc/init_drivers.rc": render_init_drivers_rc(layout),
        "etc/pcid/initfs.toml": render_pcid_config(layout),
    }


def stage_programs(stage: Path) -> dict[str, Path] | None:
    """What a stage that lays out the initfs itself (``bin/``, ``lib/drivers/``) puts there, by initfs path; None
    when it has no ``bin/`` (the initfs then takes the layout's binaries by name)."""
    if not (stage / "bin").is_dir():
        return None
    return {f"{directory}/{path.name}": path for directory in ("bin", "lib/drivers") if (stage / directory).is_dir()
            for path in sorted((stage / directory).iterdir()) if path.is_file()}


def write_tree(destination: Path, programs: Mapping[str, Path], *, etc: Mapping[str, str],
               strip: Path | None = None, log: Path | None = None) -> InitfsTree:
    """Fill ``destination`` (replaced as a whole) with ``programs`` (initfs path → built file; stripped on the way in
    with ``strip``) and the ``etc`` files (initfs path → text), with modes that do not depend on the umask."""
    with atomic_path(destination, directory=True) as partial:
        for directory in ("bin", "lib/drivers", "etc/pcid"):
            (partial / directory).mkdir(parents=True)
        for relative, source in programs.items():
            _install_binary(source, partial / relative, strip, log)
        for relative, text in etc.items():
            (partial / relative).parent.mkdir(parents=True, exist_ok=True)
            (partial / relative).write_text(text, encoding="utf-8")
            os.chmod(partial / relative, REGULAR)
        for directory in [partial, *(path for path in partial.rglob("*") if path.is_dir())]:
            os.chmod(directory, EXECUTABLE)  # independent of the umask, since modes are archived
    return InitfsTree(destination, tuple(sorted(str(path.relative_to(destination))
                                                for path in destination.rglob("*") if path.is_file())))


def _built_binaries(layout: InitfsLayout, binaries: Mapping[str, Path]) -> dict[str, Path]:
    missing = [name for name in layout.binaries if name not in binaries]
    if missing:
        raise InputError(f"no built binary for {', '.join(missing)} (needed by the initfs layout of "
                         f"{layout.target}{' / ' + layout.board if layout.board else ''})", key="initfs.binaries")
    absent = [f"{name} ({binaries[name]})" for name in layout.binaries if not Path(binaries[name]).is_file()]
    if absent:
        raise InputError(f"built binaries missing on disk: {', '.join(absent)}", key="initfs.binaries")
    return {name: Path(binaries[name]) for name in layout.binaries}


def _install_binary(source: Path, target: Path, strip: Path | None, log: Path | None) -> None:
    if strip is None:
        shutil.copyfile(source, target)
    else:
        run([strip, "-o", target, source], log=log)
    os.chmod(target, EXECUTABLE)

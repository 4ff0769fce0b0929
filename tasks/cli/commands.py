"""doit commands that work on the build's tasks and sources: ``doit explain``, ``doit info``, ``doit clean``,
``doit forget``, ``doit unfetch``; and doit's own commands that have no meaning here, which say why.

They replace doit's own ``clean`` and ``forget``, which know doit's database, not this build's store
(:mod:`tasks.engine`): here a task's record is what makes it current, so forgetting it makes it stale, and
cleaning removes its outputs (and the directories it works in) with the record. Nothing outside the build
directory is ever removed by ``clean``: not the sources (fetched or local; ``doit unfetch RECIPE`` removes a fetched
one, as upstream's ``make u.<pkg>``), not the ``.bak`` and promoted images, not the per-user host-tool and download
caches.
"""
from __future__ import annotations

import os
import sys
from collections import deque
from pathlib import Path

from doit.cmd_base import Command, DoitCmdBase
from doit.cmd_list import List as DoitList
from doit.exceptions import InvalidCommand

from ..atomic import atomic_path, remove_path
from ..engine import stamp_path
from ..errors import BuildError, InputError, display_path
from ..model.tomlfile import did_you_mean
from .help import NOT_USED

OPT_DRY_RUN = {"name": "dryrun", "short": "n", "long": "dry-run", "type": bool, "default": False,
               "help": "say what would be removed, and remove nothing [default: %(default)s]"}
OPT_ALL = {"name": "everything", "long": "all", "type": bool, "default": False,
           "help": "every task of the selected config [default: %(default)s]"}
OPT_FORCE = {"name": "force", "long": "force", "type": bool, "default": False,
             "help": "remove a fetched source even when it was edited since it was fetched [default: %(default)s]"}


class BuildCommand(DoitCmdBase):
    """A command on the loaded project: a user's error ends it with one line (``ERROR: …``, doit's status 3)."""

    def execute(self, params, args):
        try:
            return super().execute(params, args)
        except BuildError as error:
            raise InvalidCommand(str(error)) from None

    def lock(self) -> None:
        """The build lock: nothing is changed under a running build."""
        from .creators import engine
        engine().start_build(wait=False)


class _TaskCommand(BuildCommand):
    """A command on named tasks: a group's name stands for its tasks (``cook`` for every ``cook:…``)."""

    def tracked(self) -> dict:
        from .creators import PLANNED
        return PLANNED

    def selected(self, names: list[str]) -> list[str]:
        tracked = self.tracked()
        chosen: list[str] = []
        for name in names:
            members = [task for task in tracked if task == name or task.startswith(f"{name}:")]
            if not members:
                known = [*tracked, *{task.split(":", 1)[0] for task in tracked}]
                raise InvalidCommand(f"no task {name!r} with a build record{did_you_mean(name, known)}; "
                                     "`doit list --all` shows them")
            chosen += [task for task in members if task not in chosen]
        return chosen


class Explain(_TaskCommand):
    name = "explain"
    doc_purpose = "say why tasks would run: the chain down to the input (the file) that changed"
    doc_usage = "TASK ..."
    doc_description = ("pkg:hello ← cook:hello ← source: recipes/hello/source/src/main.rs changed. A group's name "
                       "(cook) explains every task in it.")

    def _execute(self, pos_args=None):
        from .explain import explanation
        if not pos_args:
            raise InvalidCommand("name the tasks to explain (doit explain pkg:hello)")
        for task in self.selected(pos_args):
            try:
                print(explanation(task))
            except BuildError as error:
                raise InvalidCommand(f"{task}: its inputs cannot be read: {error}") from None
        return 0


class Info(_TaskCommand):
    name = "info"
    doc_purpose = "show tasks: what they do, whether they are current, the inputs their signatures cover, outputs"
    doc_usage = "TASK ..."

    def _execute(self, pos_args=None):
        if not pos_args:
            raise InvalidCommand("name the tasks to show (doit info cook:hello)")
        for task in self.selected(pos_args):
            print(_info(task, self.tracked()[task]))
        return 0


def _info(task: str, planned) -> str:
    from .creators import engine, signature_of, state, task_log
    record = state().get(task)
    lines = [task, f"  {planned.doc}"]
    try:
        signature = signature_of(task)
    except BuildError as error:  # a missing toolchain: the rest still says what the task is
        lines.append(f"  status: stale: its inputs cannot be read: {error}")
    else:
        current = engine().is_current(task, signature)
        lines.append(f"  status: {'up to date' if current else f'stale (`doit explain {task}` says why)'}")
        lines.append("  inputs its signature covers:")
        lines += [f"    {name} = {value}" for name, value in sorted(signature.components.items())]
    outputs = planned.outputs()
    lines.append("  outputs:" if outputs else "  outputs: none")
    lines += [f"    {display_path(path)}" for path in outputs]
    if planned.deps:
        deps = (dep.task + (" (order only)" if dep.order_only else "") for dep in planned.deps)
        lines.append(f"  depends on: {', '.join(deps)}")
    if record is not None and record.duration is not None:
        lines.append(f"  last built in {record.duration:.1f} s")
    lines.append(f"  log: {display_path(task_log(task))}")
    return "\n".join(lines)


class List(DoitList):
    doc_purpose = "list the tasks of the selected config (--all: every task; --status: up to date or stale)"


def not_here(command: str, reason: str) -> type[Command]:
    """A doit command this build has no use for: it says why instead of acting on doit's unused database."""
    def execute(self, params, args) -> int:
        print(f"ERROR: doit {command} is not used by this build: {reason}", file=sys.stderr)
        return 3
    return type(f"NotHere_{command.replace('-', '_')}", (Command,),
                {"name": command, "doc_purpose": f"{NOT_USED} {reason}", "doc_usage": "", "execute": execute})


RECORDS = "the build keeps its records in build/engine/state.sqlite, not in doit's database"
DumpDB = not_here("dumpdb", f"{RECORDS}; `doit info TASK` shows a task's")
Ignore = not_here("ignore", f"{RECORDS}, which decides what is current; `doit forget TASK` makes a task stale")
ResetDep = not_here("reset-dep", "tasks have no file dependencies: their content signatures are computed every run")
Strace = not_here("strace", "tasks declare no file_dep or targets; `doit info TASK` lists what a signature covers")


class Clean(_TaskCommand):
    name = "clean"
    doc_purpose = "remove tasks' build outputs and records (every task of the selected config without TASK)"
    doc_usage = "[TASK ...]"
    doc_description = ("A task's outputs, their stamps, the directories it works in and its record go: it is built "
                       "again next time. Never removed: fetched or local sources (`doit unfetch RECIPE`), the "
                       ".bak and promoted images, the per-user host-tool and download caches.")
    cmd_options = (OPT_DRY_RUN,)

    def _execute(self, dryrun, pos_args=None):
        from .creators import settings, state
        tasks = self.selected(pos_args) if pos_args else list(self.tracked())
        build = settings().build
        plan = {task: self._paths(task, build) for task in tasks}
        size = sum(_size(path) for paths in plan.values() for path in paths)
        verb = "would remove" if dryrun else "removing"
        print(f"clean: {verb} the outputs of {_count(len(tasks), 'task')} ({_bytes(size)} under "
              f"{display_path(build)}); sources, .bak images and the per-user caches stay")
        if dryrun:
            for task, paths in plan.items():
                print(f"  {task}: {', '.join(display_path(path) for path in paths) or 'nothing on disk'}")
            return 0
        self.lock()
        for task, paths in plan.items():
            for path in paths:
                remove_path(path)
            forgotten = state().forget([task])
            if paths or forgotten:
                print(f"  {task}: removed {', '.join(display_path(path) for path in paths) or 'its record'}")
        return 0

    def _paths(self, task: str, build: Path) -> list[Path]:
        """What exists of the task's outputs, their stamps and its work directories, inside the build directory."""
        from .creators import state
        planned = self.tracked()[task]
        record = state().get(task)
        outputs = [*planned.outputs(), *(Path(path) for path in record.outputs)] if record else planned.outputs()
        paths = [*outputs, *(stamp_path(path) for path in outputs), *planned.work_dirs()]
        inside = [path for path in dict.fromkeys(paths) if path.is_relative_to(build)
                  and (path.exists() or path.is_symlink())]
        return [path for path in inside if not any(other in path.parents for other in inside)]


class Forget(_TaskCommand):
    name = "forget"
    doc_purpose = "make tasks stale without removing anything: they run again next time"
    doc_usage = "TASK ... | --all"
    doc_description = "A group's name (cook) forgets every task in it."
    cmd_options = (OPT_ALL,)

    def _execute(self, everything, pos_args=None):
        from .creators import state
        if not pos_args and not everything:
            raise InvalidCommand("name the tasks to forget (doit forget cook:hello), or --all")
        tasks = list(self.tracked()) if everything else self.selected(pos_args)
        self.lock()
        forgotten = state().forget(tasks)
        for task in tasks:
            print(f"forgot {task}: it runs again next time" if task in forgotten
                  else f"{task}: no record (it runs next time anyway)")
        return 0


class Unfetch(BuildCommand):
    name = "unfetch"
    doc_purpose = "remove recipes' fetched sources (as upstream's make u.<pkg>); the next build fetches them again"
    doc_usage = "[--force] RECIPE ..."
    doc_description = ("Only a source this build fetched, and as it was fetched: a local source (one fetch did not "
                       "create) is never removed, an edited one only with --force.")
    cmd_options = (OPT_FORCE,)

    def _execute(self, force, pos_args=None):
        from ..cookbook.fetch import SourcePaths, fetched_state
        from .creators import engine, project, settings, state
        if not pos_args:
            raise InvalidCommand("name the recipes whose sources to remove (doit unfetch hello)")
        sources = project().graph.sources
        for name in pos_args:
            if name not in sources:
                raise InvalidCommand(f"no recipe {name!r} with a source in this config{did_you_mean(name, sources)}")
        self.lock()
        for name in pos_args:
            paths = SourcePaths.for_recipe(sources[name], settings().build)
            print(_unfetch(name, paths, fetched_state(paths, engine().trees), force))
            state().forget([f"fetch:{name}"])
        return 0


def _unfetch(name: str, paths, fetched: str, force: bool) -> str:
    """Remove one fetched source (``fetched``: ``fetched``, ``edited``, ``local`` or ``missing``); says what it did."""
    where = display_path(paths.source)
    if fetched == "missing":
        paths.state.unlink(missing_ok=True)
        return f"{name}: no source at {where}"
    if fetched == "local":
        return f"{name}: {where} was not fetched by this build (a local source): left as it is"
    if fetched == "edited" and not force:
        return f"{name}: {where} was edited since it was fetched: left as it is (--force removes it)"
    remove_path(paths.source)
    paths.state.unlink(missing_ok=True)
    return f"{name}: removed {where}; the next build fetches it again"


def _size(path: Path) -> int:
    if path.is_symlink() or not path.is_dir():
        return path.lstat().st_size
    return sum(os.lstat(os.path.join(top, name)).st_size for top, _, files in os.walk(path) for name in files)


def _count(number: int, word: str) -> str:
    return f"{number:,} {word}" + ("" if number == 1 else "s")


def _bytes(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    exponent = min(3, (size.bit_length() - 1) // 10)
    return f"{size / 1024 ** exponent:.1f} {('KiB', 'MiB', 'GiB')[exponent - 1]}"


OPT_FORMAT = {"name": "output_format", "long": "format", "type": str, "default": "svg", "metavar": "svg|dot",
              "choices": (("svg", "a picture, through graphviz's dot"), ("dot", "graphviz's source")),
              "help": "svg (a picture, made by graphviz's dot) or dot (its source, on standard output) "
                      "[default: %(default)s]"}
OPT_OUTPUT = {"name": "output", "short": "o", "long": "output", "type": str, "default": "", "metavar": "FILE",
              "help": "where the picture goes [default: <build>/graph.svg]"}


class Graph(_TaskCommand):
    name = "graph"
    doc_purpose = "draw the task graph of the selected config (SVG through graphviz), stale tasks marked"
    doc_usage = "[TASK ...]"
    doc_description = ("The tasks the named ones need (default: what a bare `doit` builds, the image), an arrow "
                       "from each task to what it depends on (dashed: order only); stale tasks are orange.")
    cmd_options = (OPT_FORMAT, OPT_OUTPUT)

    def _execute(self, output_format, output, pos_args=None):
        from ..process import run
        from .creators import settings
        from .invocation import DEFAULT_TASKS
        tasks = self._closure(self.selected(pos_args or DEFAULT_TASKS))
        source = _dot(tasks, self.tracked())
        if output_format == "dot":
            print(source, end="")
            return 0
        picture = Path(output) if output else settings().build / "graph.svg"
        try:
            with atomic_path(picture) as partial:
                run(["dot", "-Tsvg", "-o", partial], stdin=source)
        except BuildError as error:
            raise InvalidCommand(f"graphviz's dot could not draw the graph: {error}") from None
        print(f"graph of {_count(len(tasks), 'task')}: {display_path(picture)}")
        return 0

    def _closure(self, roots: list[str]) -> list[str]:
        tracked, seen, pending = self.tracked(), {}, deque(roots)
        while pending:
            task = pending.popleft()
            if task in seen or task not in tracked:
                continue
            seen[task] = None
            pending += [dep.task for dep in tracked[task].deps]
        return list(seen)


def _dot(tasks: list[str], tracked: dict) -> str:
    """Graphviz source: a node per task (orange when stale, grey when its inputs cannot be read), an edge from each
    task to each dependency it has in the graph."""
    from .creators import engine, signature_of
    lines = ["digraph tasks {", '  rankdir=LR; node [shape=box, style="rounded,filled", fontname="sans-serif"];']
    for task in tasks:
        try:
            color = "#d9f2d9" if engine().is_current(task, signature_of(task)) else "#ffb366"
        except BuildError:
            color = "#dddddd"
        lines.append(f'  "{task}" [fillcolor="{color}"];')
    inside = set(tasks)
    for task in tasks:
        for dep in tracked[task].deps:
            if dep.task in inside:
                style = " [style=dashed]" if dep.order_only else ""
                lines.append(f'  "{task}" -> "{dep.task}"{style};')
    lines.append("}")
    return "\n".join(lines) + "\n"


class SettingsCommand(Command):
    name = "settings"
    doc_purpose = "show the settings and where each comes from; with NAME=VALUE, write them to settings.toml"
    doc_usage = "[NAME=VALUE ...]"
    doc_description = ("settings.toml (untracked, in the project directory) holds settings that stick, by the "
                       "variables' names: `doit settings root=demo config=config/aarch64/demo.toml toolchain=host` "
                       "and then a plain `doit qcow2` builds the demo. The command line overrides it; NAME= removes "
                       "NAME from it. `doit help` lists the variables.")

    def execute(self, params, args):
        from doit import doit_cmd

        from ..settings import Settings
        from ..variables import SETTINGS, SettingsFileError, saved_settings, settings_file
        from .loader import variables
        path = settings_file()
        given = dict(doit_cmd._CMDLINE_VARS or {})
        try:
            effective = Settings.from_vars(variables())
            if given:
                _write_settings(path, given)
                effective = Settings.from_vars(variables())
            saved = saved_settings(path)
        except (BuildError, SettingsFileError) as error:
            print(f"ERROR: {error}", file=sys.stderr)
            return 3
        if given:
            print(f"wrote {display_path(path)}: " + ", ".join(f"{name}={value}" if value else f"{name} removed"
                                                             for name, value in given.items()))
            return 0
        width = max(len(setting.name) for setting in SETTINGS)
        for setting in SETTINGS:
            origin = "command line" if setting.name in given else display_path(path) if setting.name in saved \
                else "default"
            value = getattr(effective, setting.name)
            print(f"{setting.name:<{width}}  {'(none)' if value is None else value}  ({origin})")
        return 0


def _write_settings(path: Path, given: dict[str, str]) -> None:
    """Set (or, for an empty value, remove) settings in the file, keeping its comments; validated first."""
    import tomlkit

    from ..atomic import write_atomically
    from ..model.config import load_config
    from ..settings import Settings
    from ..variables import SETTING, path_problem, saved_settings
    document = tomlkit.parse(path.read_text()) if path.exists() else tomlkit.document()
    for name, value in given.items():
        if not SETTING[name].sticks:
            raise InputError(f"{name}= is an argument of one command: it is never kept", key=name)
        if value and SETTING[name].kind == "path" and name != "config":
            # typed relative to here; the file's paths are relative to the project directory
            absolute = Path(value).absolute()
            value = os.path.relpath(absolute, path.parent) if absolute.is_relative_to(path.parent) else str(absolute)
        if value:
            document[name] = value
        elif name in document:
            del document[name]
    trial = path.with_name(path.name + ".check")
    trial.write_text(tomlkit.dumps(document))
    try:
        values = saved_settings(trial)
        Settings.from_vars(values)  # a bad value names its key before anything is written
    finally:
        trial.unlink()
    for name in given:
        if values.get(name) and (problem := path_problem(name, values[name], values)) is not None:
            raise InputError(f"{values[name]!r}: {problem}", key=name)
    if changed := sorted(given.keys() & {"root", "config"}):
        key = "config" if "config" in changed else changed[0]
        config = values.get("config", str(SETTING["config"].default))
        if (problem := path_problem("config", config, values)) is not None:
            hint = " (give config=FILE with root= when the tree's config is another)" if key == "root" else ""
            raise InputError(problem + hint, key=key)
        try:
            load_config(Settings.from_vars(values).config_file)  # a config that does not load is not saved
        except BuildError as error:
            raise InputError(str(error), key=key) from None
    write_atomically(path, tomlkit.dumps(document).encode())


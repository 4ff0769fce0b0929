"""What the ``boot``, ``test-in-redox`` and ``boot-stop`` commands do, printing for a person (rich).

Each function takes typed options and returns the command's exit code; errors the user must fix (a session in use,
no firmware, a boot that never reaches the login prompt) are raised as BuildError.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict
from rich.console import Console as Printer
from rich.text import Text

from ..errors import BuildError, display_path
from ..process import command_line
from .command import RunOptions, qemu_argv, resolve
from .console import Console, ConsoleSettings, ConsoleTimeout, attach_terminal
from .guestlogs import GUEST_LOGS, fetch_guest_logs
from .session import (
    DEFAULT_SESSION,
    POWERDOWN_TIMEOUT,
    ActiveSession,
    SessionLock,
    SessionPaths,
    isolated_name,
    live_record,
    locked_session,
    stop,
    stop_locked,
)


class SessionSettings(BaseModel):
    """Which session to use and how to share it."""

    model_config = ConfigDict(frozen=True)

    build_dir: Path
    name: str = DEFAULT_SESSION
    isolated: bool = False  # a private session under a fresh name, stopped when the call ends
    wait: float = 0.0  # seconds to wait for a session someone else uses; math.inf waits as long as it takes
    powerdown_timeout: float = POWERDOWN_TIMEOUT

    def session_name(self) -> str:
        return isolated_name() if self.isolated else self.name


WAIT_FOREVER = math.inf


def default_printer() -> Printer:
    # Command lines and console output are printed as they are: no wrapping, no highlighting.
    return Printer(highlight=False, soft_wrap=True)


def _say(printer: Printer, message: str, style: str = "") -> None:
    # Text, not markup: paths and guest output may contain [brackets].
    printer.print(Text(message, style=style))


def run_interactive(options: RunOptions, session: SessionSettings, printer: Printer | None = None) -> int:
    """Boot (or reuse) the session and connect this terminal to its console until Ctrl-] or the guest's end."""
    printer = printer or default_printer()
    name = session.session_name()
    with locked_session(session.build_dir, name, resolve(options), purpose="boot", wait=session.wait,
                        on_busy=lambda busy: _say(printer, busy),
                        powerdown_timeout=session.powerdown_timeout) as active:
        _report(printer, active)
        _say(printer, f"console of session {name}: Ctrl-] detaches, the session keeps running "
                      "(doit boot-stop stops it)", "dim")
        detached = attach_terminal(active.record.console_socket)
        printer.print()
        if session.isolated:
            _say(printer, f"session {name}: {stop(active.paths, active.record, session.powerdown_timeout)}")
        elif detached:
            _say(printer, f"detached from session {name}")
        else:
            live_record(active.paths, [])  # the guest powered off: QEMU has exited, its record goes
            _say(printer, f"session {name} ended")
    return 0


def test_in_redox(commands: Sequence[str], options: RunOptions, session: SessionSettings,
                  console: ConsoleSettings = ConsoleSettings(), printer: Printer | None = None,
                  logs: bool = False) -> int:
    """Run each command on the guest's console; print its complete output and exit status.

    Every command runs even when an earlier one fails; a command that times out is interrupted and ends the
    sequence (what it left behind is unknown). With ``logs``, or when a command failed, the guest's logs
    (:mod:`tasks.qemu.guestlogs`) come to ``build/logs/guest/<time>/``. Returns 0 when every command exited 0,
    else 1.
    """
    printer = printer or default_printer()
    name = session.session_name()
    succeeded = 0
    with locked_session(session.build_dir, name, resolve(options), purpose="test-in-redox", wait=session.wait,
                        on_busy=lambda busy: _say(printer, busy),
                        powerdown_timeout=session.powerdown_timeout) as active:
        try:
            _report(printer, active)
            with Console(active.record.console_socket, console, log=active.record.console_log) as guest:
                try:
                    guest.ready(fresh=active.fresh)
                except BaseException:
                    if active.fresh and not session.isolated:  # a boot that failed leaves no QEMU spinning
                        _say(printer, f"session {name}: the boot failed; "
                                      f"{stop(active.paths, active.record, session.powerdown_timeout)}")
                    raise
                for command in commands:
                    _say(printer, f"$ {command}", "bold cyan")
                    try:
                        result = guest.run(command)
                    except ConsoleTimeout as timeout:
                        _say(printer, f"error: {timeout}", "bold red")
                        break
                    if result.output:
                        printer.out(result.output, highlight=False)
                    if result.note:
                        _say(printer, result.note, "bold red")
                    _say(printer, f"exit status {result.status} ({result.seconds:.1f} s)",
                         "green" if result.ok else "bold red")
                    succeeded += result.ok
                if logs or succeeded < len(commands):
                    _bring_guest_logs(guest, session.build_dir / "logs" / "guest", printer)
        finally:
            if session.isolated:
                _say(printer, f"session {name}: {stop(active.paths, active.record, session.powerdown_timeout)}")
    all_ok = succeeded == len(commands)
    _say(printer, f"{succeeded} of {len(commands)} commands succeeded", "bold green" if all_ok else "bold red")
    return 0 if all_ok else 1


def _bring_guest_logs(guest: Console, destination: Path, printer: Printer) -> None:
    try:
        where, problems = fetch_guest_logs(guest, destination)
    except BuildError as error:  # the commands' results stand; the logs are a help
        _say(printer, f"guest logs: not brought ({error})", "bold red")
        return
    count = sum(1 for path in where.rglob("*") if path.is_file())
    _say(printer, f"guest logs: {display_path(where)}/ ({count} files from {GUEST_LOGS})"
         + (f"; not read: {', '.join(problems)}" if problems else ""), "dim")


def print_command(options: RunOptions, session: SessionSettings, printer: Printer | None = None) -> int:
    """Print the QEMU command line the session would start with, starting nothing (a dry run)."""
    printer = printer or default_printer()
    paths = SessionPaths.of(session.build_dir, session.session_name())
    printer.out(command_line(qemu_argv(resolve(options, dry_run=True), paths.files)), highlight=False)
    return 0


def stop_session(session: SessionSettings, printer: Printer | None = None) -> int:
    """Shut down the recorded session, politely first; never a QEMU this tool did not start."""
    printer = printer or default_printer()
    paths = SessionPaths.of(session.build_dir, session.name)
    with SessionLock(paths).held("boot-stop", session.wait, on_busy=lambda busy: _say(printer, busy)):
        how = stop_locked(paths, session.powerdown_timeout)
    _say(printer, f"session {session.name}: {how}" if how else f"no session {session.name} is running")
    return 0


def _report(printer: Printer, active: ActiveSession) -> None:
    for note in active.notes:
        _say(printer, note, "dim")
    if active.fresh:
        printer.out(command_line(active.record.argv), highlight=False)
        _say(printer, f"QEMU log: {display_path(active.paths.qemu_log)} · "
                      f"console log: {display_path(active.record.console_log)}", "dim")

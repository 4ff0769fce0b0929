"""The guest's serial console, driven over QEMU's chardev socket with pexpect.

Every command is typed as one line ``echo <BEGIN> $?; <command>; echo <END> $?`` with markers unique to it. The
terminal echoes that line back with a literal ``$?``, while the shell prints the markers followed by digits, so
only the shell's output matches ``<BEGIN> <digits>`` and ``<END> <status>``: everything between them is the
command's complete output, and the END digits are its exit status. The driver waits for markers and prompts,
never for a fixed time. The full console (whoever is attached) is logged by QEMU itself (``-chardev …,logfile=``).
"""
from __future__ import annotations

import os
import re
import secrets
import select
import socket
import sys
import termios
import time
import tty
from dataclasses import dataclass
from pathlib import Path

import pexpect
from pexpect import fdpexpect
from pydantic import BaseModel, ConfigDict

from ..errors import CommandError

# What may follow a prompt: colour resets (ion), a cursor-position query (busybox ash), spaces.
PROMPT_TAIL = r"(?:\x1b\[[0-9;?]*[A-Za-z])*[ \t]*$"
INTERRUPT = "\x03"
ENTER = "\r"
DETACH_KEY = b"\x1d"  # Ctrl-]
TAIL_LINES = 15
# The status of a command line the shell gave up before its end marker (ion does so, silently and with status 0,
# for a command it cannot find): a shell's "command not found".
ABANDONED_STATUS = 127
# How long the end marker may still take after what looked like the shell's prompt: command output can end in "# ".
PROMPT_CONFIRM_SECONDS = 2.0


class ConsoleSettings(BaseModel):
    """How to log in and how long to wait. Prompts are regular expressions."""

    model_config = ConfigDict(frozen=True)

    user: str = "root"
    password: str | None = "password"  # root's password in Redox's config/base.toml
    login_prompt: str = r"login: ?"
    password_prompt: str = r"(?i)password: ?"
    # Matched at the end of the console output, so output that merely contains '#' does not count.
    shell_prompt: str = r"[#$] ?" + PROMPT_TAIL
    boot_timeout: float = 300.0
    command_timeout: float = 60.0
    # An idle shell answers Enter at once; a session that does not has a hung command (or is still booting).
    probe_timeout: float = 10.0


@dataclass(frozen=True)
class CommandResult:
    command: str
    output: str
    status: int
    seconds: float
    note: str = ""
    """What the status does not say (the shell did not finish the line)."""

    @property
    def ok(self) -> bool:
        return self.status == 0


class ConsoleTimeout(CommandError):
    """The console did not show what was waited for: names the command and shows the last console lines."""


class _Tail:
    """The last lines the console printed, for error messages (pexpect's ``logfile_read`` interface), and how much
    it has printed (:meth:`since` a mark: what came after, for telling whether typed text was echoed)."""

    KEPT = 65536  # characters

    def __init__(self) -> None:
        self._text = ""
        self.written = 0

    def write(self, text: str) -> None:
        self._text = (self._text + text)[-self.KEPT:]
        self.written += len(text)

    def flush(self) -> None:
        pass

    def since(self, mark: int) -> str:
        return self._text[max(0, len(self._text) - (self.written - mark)):]

    def lines(self) -> list[str]:
        text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", self._text).replace("\r", "")
        return [line for line in text.split("\n") if line.strip()][-TAIL_LINES:]


class Console:
    """A connection to a session's console socket; use as a context manager."""

    def __init__(self, socket_path: Path, settings: ConsoleSettings = ConsoleSettings(), log: Path | None = None):
        """``log``: the session's console log (QEMU's, of everything the console printed), whose last lines an
        error shows when this connection itself has seen nothing."""
        self.settings = settings
        self._log = log
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._socket.connect(str(socket_path))
        except OSError as failure:
            self._socket.close()
            raise CommandError(f"cannot attach to the console: {failure}", path=socket_path) from None
        self._tail = _Tail()
        self._child = fdpexpect.fdspawn(self._socket.fileno(), encoding="utf-8", codec_errors="replace",
                                        timeout=settings.command_timeout)
        self._child.logfile_read = self._tail
        self._login = re.compile(settings.login_prompt)
        self._password = re.compile(settings.password_prompt)
        self._prompt = re.compile(settings.shell_prompt)

    def close(self) -> None:
        self._socket.close()

    def __enter__(self) -> "Console":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def ready(self, *, fresh: bool) -> None:
        """Reach a logged-in shell: after a boot (``fresh``), or in a session left in any state by an earlier call."""
        if fresh:
            self._expect([self._login], self.settings.boot_timeout, "login prompt after boot")
            self._log_in()
        else:
            if self._probe() == 0:
                self._log_in()
        self._sync()

    def _probe(self) -> int:
        """Press Enter (then Ctrl-C, then Enter): 0 when the login prompt answers, 1 for a shell prompt."""
        patterns = [self._login, self._prompt]
        for key in (ENTER, INTERRUPT):
            self._child.send(key)
            try:
                return self._expect(patterns, self.settings.probe_timeout, "prompt")
            except ConsoleTimeout:
                continue  # a hung command (Ctrl-C ends it), or a guest still booting
        self._child.send(ENTER)
        return self._expect(patterns, self.settings.boot_timeout, "login or shell prompt after Enter, Ctrl-C, Enter")

    def _log_in(self) -> None:
        settings = self.settings
        mark = self._tail.written
        self._child.send(settings.user + ENTER)
        # The answer: a password prompt, a shell prompt, or a login prompt again on a line after the name (refused).
        # A login prompt on the name's own line is a redraw (the fork's getty redraws its prompt at every key).
        refused = re.compile(re.escape(settings.user) + r"[^\n]*\n[\s\S]*?(?:" + settings.login_prompt + ")")
        try:
            found = self._expect([self._prompt, refused, self._password], settings.command_timeout,
                                 f"password or shell prompt after user {settings.user}")
        except ConsoleTimeout:
            self._check_echo(settings.user, mark)
            raise
        if found == 2:
            if settings.password is None:
                raise CommandError(f"the guest asks a password for {settings.user} and none is set", key="password")
            self._child.send(settings.password + ENTER)
            found = self._expect([self._prompt, self._login], settings.command_timeout,
                                 f"shell prompt after logging in as {settings.user}")
        if found == 1:
            raise CommandError(f"logging in as {settings.user} failed (wrong user or password?)", key="user")

    def _check_echo(self, typed: str, mark: int) -> None:
        """Raise when what was typed at a prompt never came back: the guest does not receive the console's input."""
        if typed not in self._tail.since(mark):
            raise CommandError(f"the guest never echoed `{typed}` typed at its login prompt: input on the serial "
                               "console does not reach it (its receive interrupt is never taken; the guest shows "
                               f"output but reads nothing)\n{self._tail_text()}", key="console")

    def _sync(self) -> None:
        """At a prompt, type a marker and wait for the shell to print it, then for its next prompt."""
        marker = f"__SYNC_{secrets.token_hex(6)}__"
        self._child.send(f"echo {marker} $?{ENTER}")
        self._expect([re.compile(re.escape(marker) + r" \d+")], self.settings.command_timeout,
                     "answer from the shell")
        self._await_prompt("shell prompt after a marker")

    def _await_prompt(self, what: str) -> None:
        # Only type at a prompt: a shell switching its terminal modes between commands can drop typed-ahead keys.
        self._expect([self._prompt], self.settings.command_timeout, what)

    def run(self, command: str, timeout: float | None = None) -> CommandResult:
        """Run one command line; its complete output and exit status. A timeout interrupts it and raises."""
        if "\n" in command or "\r" in command:
            raise CommandError(f"a console command is one line: {command!r}", key="command")
        timeout = self.settings.command_timeout if timeout is None else timeout
        token = secrets.token_hex(6)
        begin, end = f"__BEGIN_{token}__", f"__END_{token}__"
        started = time.monotonic()
        deadline = started + timeout
        self._child.send(f"echo {begin} $?; {command}; echo {end} $?{ENTER}")
        ended = re.compile(re.escape(end) + r" (\d+)")
        try:
            # Line ends come as \r\n, or with more carriage returns where the kernel's console and the guest's pty
            # each add one (the fork's: \r\r\r\n).
            self._child.expect(re.compile(re.escape(begin) + r" \d+\r*\n"), timeout=timeout)
            output = ""
            if self._child.expect([ended, self._prompt], timeout=max(0.0, deadline - time.monotonic())) == 1:
                output = self._child.before
                if not self._ended_after_prompt(ended):  # the output, without the prompt's line
                    return CommandResult(command=command, output=_lines(output.rpartition("\n")[0]),
                                         status=ABANDONED_STATUS,
                                         seconds=time.monotonic() - started,
                                         note="the shell gave up the line before its end: the command was not "
                                              "found, or the shell stopped it")
                output += self._child.after  # the output only ended in something prompt-like
        except pexpect.TIMEOUT:
            raise self._timed_out(command, timeout) from None
        except pexpect.EOF:
            raise CommandError(f"the console closed (QEMU exited?) while running `{command}`:\n"
                               + self._tail_text()) from None
        except KeyboardInterrupt:
            self.interrupt()  # Ctrl-C here means Ctrl-C for the command in the guest too
            raise
        result = CommandResult(command=command, output=_lines(output + self._child.before),
                               status=int(self._child.match.group(1)), seconds=time.monotonic() - started)
        self._await_prompt(f"shell prompt after `{command}` (exit status {result.status})")
        return result

    def _ended_after_prompt(self, ended: re.Pattern[str]) -> bool:
        """After what looks like the shell's prompt: whether the end marker still comes (the output only ended in
        something prompt-like) rather than the shell having given up the line."""
        try:
            self._child.expect([ended], timeout=PROMPT_CONFIRM_SECONDS)
        except pexpect.TIMEOUT:
            return False
        return True

    def send(self, text: str) -> None:
        """Type ``text`` as it is (answer a prompt, ``exit`` a shell): nothing waits for an answer."""
        self._child.send(text)

    def expect(self, pattern: str, timeout: float | None = None) -> str:
        """Wait until the console shows ``pattern`` (a regular expression); the text that matched."""
        self._expect([re.compile(pattern)], self.settings.command_timeout if timeout is None else timeout,
                     f"output matching /{pattern}/")
        return self._child.after

    def interrupt(self) -> None:
        """Ctrl-C: the shell interrupts the command in the foreground."""
        self._child.send(INTERRUPT)

    def _timed_out(self, command: str, timeout: float) -> ConsoleTimeout:
        tail = self._tail_text()
        self.interrupt()
        try:
            self._await_prompt("shell prompt after Ctrl-C")
            self._sync()
            after = "interrupted it with Ctrl-C; the shell answers again"
        except ConsoleTimeout:
            after = "interrupted it with Ctrl-C, but the shell still does not answer (stop the session)"
        return ConsoleTimeout(f"`{command}` did not finish within {timeout:g} s; {after}\n{tail}")

    def _expect(self, patterns: list[re.Pattern[str]], timeout: float, what: str) -> int:
        try:
            return self._child.expect(patterns, timeout=timeout)
        except pexpect.TIMEOUT:
            raise ConsoleTimeout(f"no {what} within {timeout:g} s\n{self._tail_text()}") from None
        except pexpect.EOF:
            raise CommandError(f"the console closed (QEMU exited?) waiting for {what}\n{self._tail_text()}") from None

    def _tail_text(self) -> str:
        lines = self._tail.lines()
        where = "console"
        if not lines and self._log is not None:  # an earlier connection read it all: the session's log has it
            lines, where = _last_lines(self._log), f"console (from {self._log})"
        return "\n".join([f"last {len(lines)} {where} lines:", *("  " + line for line in lines)])


def _lines(text: str) -> str:
    """Console output as lines: every run of carriage returns before a newline dropped, no final newline."""
    return re.sub(r"\r+\n", "\n", text).removesuffix("\n")


def _last_lines(log: Path) -> list[str]:
    try:
        with open(log, "rb") as stream:
            stream.seek(max(0, stream.seek(0, os.SEEK_END) - 16384))
            text = stream.read().decode(errors="replace")
    except OSError:
        return []
    tail = _Tail()
    tail.write(text)
    return tail.lines()


def attach_terminal(socket_path: Path, detach_key: bytes = DETACH_KEY) -> bool:
    """Connect this terminal to the console until the detach key (True) or the console closes (False)."""
    # The process's own terminal, even where a task runner has replaced sys.stdin/sys.stdout.
    stdin, stdout = sys.__stdin__.fileno(), sys.__stdout__.fileno()
    saved = termios.tcgetattr(stdin) if os.isatty(stdin) else None
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as console:
        try:
            console.connect(str(socket_path))
        except OSError as failure:
            raise CommandError(f"cannot attach to the console: {failure}", path=socket_path) from None
        if saved is not None:
            tty.setraw(stdin)  # every key, Ctrl-C included, goes to the guest
        try:
            while True:
                readable, _, _ = select.select([stdin, console], [], [])
                if console in readable:
                    data = console.recv(4096)
                    if not data:
                        return False
                    os.write(stdout, data)
                if stdin in readable:
                    data = os.read(stdin, 1024)
                    typed, detached, _ = data.partition(detach_key)
                    console.sendall(typed)
                    if detached or not data:
                        return True
        finally:
            if saved is not None:
                termios.tcsetattr(stdin, termios.TCSADRAIN, saved)

"""The one command runner.

Every external program (cargo, bash, qemu-img, redox_installer, …) runs through :func:`run`, built on ``sh``
with ``_tty_out=False`` so children see a pipe, never a terminal (a TTY changes cargo's output and makes
tools wait for input). ``sh`` command objects do not pickle, so none is kept beyond a call.
"""
from __future__ import annotations

import os
import re
import shlex
import signal
import time
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path

from .errors import CommandError, display_path

TAIL_LINES = 20
ERROR_LINES = 10
DIAGNOSTIC_LINES = 40
# Where a compiler's diagnostic starts: rustc's `error[E0425]: …` / `error: …`, a C compiler's `x.c:3:1: error: …`.
DIAGNOSTIC = re.compile(r"^(error(\[\w+\])?: |\S+:\d+:\d+: (fatal )?error: )")

Argv = Sequence[str | os.PathLike[str]]


def command_line(argv: Argv) -> str:
    """The command as a user could paste it into a shell."""
    return shlex.join(str(arg) for arg in argv)


def child_env(set: Mapping[str, str] | None = None, unset: Sequence[str] = (),
              base: Mapping[str, str] | None = None) -> dict[str, str]:
    """An environment for a child: ``base`` (default: ours) with ``set`` applied and ``unset`` removed."""
    env = dict(os.environ if base is None else base)
    env.update(set or {})
    for name in unset:
        env.pop(name, None)
    return env


def run(argv: Argv, *, cwd: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None,
        log: str | os.PathLike[str] | None = None, stdin: str | bytes | None = None,
        capture: bool = False, ok_codes: Sequence[int] = (0,), secrets: Sequence[str] = ()) -> str:
    """Run ``argv`` to completion.

    Output goes to ``log`` (appended, after a line with the command) or, with ``capture``, is returned as text.
    A failure raises :class:`CommandError` carrying the exit status, the last lines of output and the log path.
    Every one of ``secrets`` (passwords the child may print) is masked wherever its output goes.
    """
    program, *args = (str(arg) for arg in argv)
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    diagnostics = Diagnostics()
    # A child writing to a pipe flushes its block-buffered stdout at exit, after its error message on stderr:
    # the last stderr lines are kept apart so the reason for a failure is never pushed out of the tail.
    errors: deque[str] = deque(maxlen=ERROR_LINES)
    captured: list[str] = []
    log_file = _open_log(log, argv, cwd, secrets) if log is not None else None

    def output(line: str) -> None:
        line = mask(line, secrets)
        if not line.startswith("+"):  # `bash -x` traces say what ran, not why it failed: the log keeps them
            tail.append(line.rstrip("\n"))
        diagnostics.see(line)
        if capture:
            captured.append(line)
        if log_file is not None:
            log_file.write(line)

    def error(line: str) -> None:
        line = mask(line, secrets)
        diagnostics.see(line)
        if line.startswith("+"):
            if log_file is not None:
                log_file.write(line)
            return
        tail.append(line.rstrip("\n"))
        errors.append(line.rstrip("\n"))
        if log_file is not None:
            log_file.write(line)

    import sh  # here, not above: the no-op check imports this module for child_env and never runs a command

    # Without a log the output is taken whole when the command ends: sh's line callbacks cost about 0.1 s a command
    # (its reader threads' poll timeout), which the many short calls of the image tool would pay each time.
    streaming = {"_out": output, "_err": error} if log_file is not None else {}
    try:
        command = sh.Command(program)
        running = command(*args, _cwd=None if cwd is None else str(cwd), _env=dict(os.environ if env is None else env),
                          _in=stdin, _tty_out=False, _ok_code=list(ok_codes), _bg=True, _bg_exc=False,
                          _new_group=True, **streaming)
        try:
            running.wait()
        except KeyboardInterrupt:
            # Ctrl-C: the child and everything it started stop too, before the interrupt goes on to leave the
            # build consistent. The child leads a process group of its own, so that this reaches what a shell
            # started in the background (which ignores SIGINT) and what outlived its parent.
            stop_group(running.pid)
            raise
    except sh.CommandNotFound:
        raise CommandError(f"command not found: {program} (is it installed and on PATH?)") from None
    except sh.ErrorReturnCode as failure:
        if not streaming:
            _replay(failure.stdout, output)
            _replay(failure.stderr, error)
        if diagnostics.lines:
            shown, others = ["its errors:", *diagnostics.lines], ()
        else:
            shown, others = ([f"last {len(tail)} lines of output:", *tail] if tail else []), errors
        raise CommandError(_failure_reason(argv, failure.exit_code, shown, others, log, secrets)) from None
    finally:
        if log_file is not None:
            log_file.close()
    if not streaming:
        _replay(running.stdout, output)
        _replay(running.stderr, error)
    return "".join(captured)


def _replay(data: bytes | None, sink) -> None:
    """Output taken whole, line by line into what the callbacks would have received."""
    for line in (data or b"").decode("utf-8", "replace").splitlines(keepends=True):
        sink(line)


def stop_group(leader: int, timeout: float = 5.0) -> None:
    """SIGTERM to the process group ``leader`` leads, SIGKILL to it if any member is left after ``timeout``."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 0.0)):
        try:
            os.killpg(leader, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                os.killpg(leader, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)


MASK = "***"


def mask(line: str, secrets: Sequence[str]) -> str:
    """``line`` with every secret replaced by :data:`MASK` (longest first, so that one inside another goes too)."""
    for secret in sorted((secret for secret in secrets if secret), key=len, reverse=True):
        line = line.replace(secret, MASK)
    return line


def _open_log(log: str | os.PathLike[str], argv: Argv, cwd, secrets: Sequence[str]) -> "object":
    path = Path(log)
    if not path.parent.is_dir():  # logs may hold what a build printed: its owner's only
        path.parent.mkdir(parents=True, mode=0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    # Line-buffered: the progress display (and a user's `tail -f`) shows the last line as soon as it is written.
    stream = open(descriptor, "a", encoding="utf-8", errors="replace", buffering=1)
    where = f" (in {cwd})" if cwd else ""
    stream.write(mask(f"$ {command_line(argv)}{where}\n", secrets))
    stream.flush()
    return stream


class Diagnostics:
    """The compiler diagnostics in a command's output (each from its ``error…`` line to the blank line that ends
    it), the first :data:`DIAGNOSTIC_LINES` lines of them: what a failed build shows before anything else."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._inside = False

    def see(self, line: str) -> None:
        text = line.rstrip("\n")
        if text.startswith("+"):  # a shell trace between the compiler's lines
            return
        if DIAGNOSTIC.match(text):
            self._inside = True
        elif not text.strip():
            self._inside = False
        if self._inside and len(self.lines) < DIAGNOSTIC_LINES:
            self.lines.append(text)


def _failure_reason(argv: Argv, status: int, shown: Sequence[str], errors: Sequence[str], log,
                    secrets: Sequence[str]) -> str:
    """The command and its status, then the compiler's errors (or else the last lines of output, without shell
    traces), then the log: the useful part first."""
    lines = [mask(f"`{command_line(argv)}` failed with exit status {status}", secrets)]
    if shown:
        lines.append(shown[0])
        lines.extend("  " + line for line in shown[1:])
    missing = [line for line in errors if line not in shown]
    if missing:
        lines.append("last lines of its error output:")
        lines.extend("  " + line for line in errors)
    if log is not None:
        lines.append(f"full log: {display_path(Path(log).resolve())}")
    return "\n".join(lines)

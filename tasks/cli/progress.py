"""What a build shows while it runs.

On a terminal, a live display (rich): tasks done of the total, each running task with its elapsed time, the time
it took last time, and the last line of its log; finished tasks scroll above it with their durations. Anywhere
else (CI, a pipe, a file): one line when a task starts (``.  cook:hello``, doit's own) and one when it ends
(``ok cook:hello (1.2 s)``). A failure is shown once, in full, where it happens: ``ERROR: <task>: <reason>``.

rich is imported only when a task runs on a terminal: a no-op build never pays for it.
"""
from __future__ import annotations

import atexit
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from ..logs import last_telling_line

REFRESHES_PER_SECOND = 4


def write_line(stream: TextIO, text: str) -> None:
    """``text`` and a newline, flushed. When whoever read the output is gone (``doit image | head``), the build goes
    on unseen: the stream is pointed at /dev/null, so that no later write (nor Python's at exit) raises."""
    try:
        stream.write(text + "\n")
        stream.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())


def human_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes} min {seconds:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def not_run_line(task: str, failed: str) -> str:
    return f"-- not run: {task} (it needs {failed}, which failed)"


class Lines:
    """Progress as plain lines: one when a task starts, one when it ends."""

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.started: dict[str, float] = {}

    def start(self, task: str) -> None:
        self.started[task] = time.monotonic()
        self.write(f".  {task}")

    def elapsed(self, task: str) -> float:
        return time.monotonic() - self.started.pop(task, time.monotonic())

    def succeed(self, task: str) -> None:
        self.write(f"ok {task} ({human_duration(self.elapsed(task))})")

    def fail(self, task: str, message: str) -> None:
        self.write(f"failed {task} ({human_duration(self.elapsed(task))})")
        self.write(f"ERROR: {task}: {message}")

    def not_run(self, task: str, failed: str) -> None:
        """``task`` was left out: ``failed``, tasks it needs, failed (``doit --continue`` goes on with the rest)."""
        self.write(not_run_line(task, failed))

    def checked(self) -> None:
        """One more task found up to date (counted, not shown)."""

    def write(self, text: str) -> None:
        write_line(self.stream, text)

    def close(self) -> None:
        pass


class Live(Lines):
    """Progress as rich's live display at the bottom of the terminal, finished tasks printed above it."""

    def __init__(self, stream: TextIO, total: int, done: int, estimate: Callable[[str], float | None],
                 log_of: Callable[[str], Path]):
        super().__init__(stream)
        self.total, self.done = total, done
        self.estimate, self.log_of = estimate, log_of
        self.estimates: dict[str, float | None] = {}
        self._live = None

    def start(self, task: str) -> None:
        self.started[task] = time.monotonic()
        self.estimates[task] = self.estimate(task)
        if self._live is not None:
            self._live.refresh()
        else:
            from rich.console import Console
            from rich.live import Live as RichLive
            self._live = RichLive(get_renderable=self._render, console=Console(file=self.stream),
                                  refresh_per_second=REFRESHES_PER_SECOND, transient=True, redirect_stdout=True,
                                  redirect_stderr=True)
            self._live.start()
            atexit.register(self.close)  # Ctrl-C ends the run by an exception: the terminal is restored anyway

    def succeed(self, task: str) -> None:
        self.done += 1
        self._above(f"[green]✓[/] {task} [dim]{human_duration(self.elapsed(task))}[/]")

    def fail(self, task: str, message: str) -> None:
        self.done += 1
        self.estimates.pop(task, None)
        from rich.markup import escape
        self._above(f"[red]✗[/] {escape(task)} [dim]{human_duration(self.elapsed(task))}[/]")
        self._above(f"[red]ERROR: {escape(task)}: {escape(message)}[/]")

    def not_run(self, task: str, failed: str) -> None:
        self.done += 1
        from rich.markup import escape
        self._above(f"[dim]{escape(not_run_line(task, failed))}[/]")

    def checked(self) -> None:
        self.done += 1
        if self._live is not None:
            self._live.refresh()

    def write(self, text: str) -> None:
        from rich.markup import escape
        self._above(escape(text))

    def _above(self, markup: str) -> None:
        if self._live is None:
            from rich.console import Console
            Console(file=self.stream, highlight=False).print(markup)
        else:
            # A line printed above is drawn with the display as last rendered: between two timed refreshes that
            # showed finished tasks as running and an old count. Rendered anew first (rich has no public call that
            # renders without drawing, and drawing first would show the count before the line that explains it).
            self._live._live_render.set_renderable(self._live.renderable)
            self._live.console.print(markup, highlight=False)

    def _render(self):
        from rich.table import Table
        now = time.monotonic()
        table = Table.grid(padding=(0, 2))
        table.add_column(no_wrap=True)
        table.add_column(no_wrap=True, justify="right")
        width = self._live.console.width if self._live is not None else 80
        table.add_column(no_wrap=True, overflow="ellipsis", max_width=max(20, width - 50))
        left = sum(max(0.0, (self.estimates.get(task) or 0.0) - (now - began)) for task, began in self.started.items())
        guess = f" · about {human_duration(left)} left" if left >= 1 else ""
        table.add_row(f"[bold]{self.done} of {self.total} tasks[/] · {len(self.started)} running{guess}", "", "")
        for task, began in sorted(self.started.items(), key=lambda item: item[1]):
            before = self.estimates.get(task)
            took = human_duration(now - began) + (f" / ~{human_duration(before)}" if before else "")
            table.add_row(f"  [cyan]{task}[/]", took, f"[dim]{_plain(last_telling_line(self.log_of(task)))}[/]")
        return table

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None


def _plain(text: str) -> str:
    from rich.markup import escape
    return escape(text.replace("\t", " "))


def on_terminal(stream: TextIO) -> bool:
    return stream.isatty() and os.environ.get("TERM") != "dumb"

"""Make the README's pictures from a real run of the demo: the live progress display and `doit graph`.

A clean build of the demo (into a temporary build directory) runs under a pseudo-terminal; pyte, a terminal
emulator, replays what it wrote, and the screen is taken at the moment the most tasks were running (the moment the
display showed most), then drawn as SVG by rich. The graph is `doit graph qcow2` of the same build, once it is done.

Run: .venv/bin/python docs/screenshots.py            (writes docs/progress.svg and docs/graph.svg; a few minutes)
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pyte
from rich.console import Console
from rich.style import Style
from rich.text import Text

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from tests.processes import run_in_terminal  # noqa: E402  (the tests' pseudo-terminal runner)

COLUMNS, ROWS = 110, 30
DEMO = ["root=demo", "config=config/aarch64/demo.toml", "toolchain=host"]
COLORS = {"default": None, "brown": "yellow"}  # pyte's names that rich spells otherwise


def main() -> None:
    doit = Path(sys.executable).parent / "doit"
    with tempfile.TemporaryDirectory(prefix="screenshots-") as scratch:
        build = Path(scratch) / "build"
        command = [str(doit), "-n", "2", "qcow2", *DEMO, f"build={build}"]
        status, output = run_in_terminal(command, columns=COLUMNS, env={"COLUMNS": str(COLUMNS)}, cwd=PROJECT)
        if status != 0:
            sys.exit(f"the demo build failed ({status}):\n{output}")
        busiest_screen(output).save_svg(str(PROJECT / "docs/progress.svg"), title="doit qcow2 (the demo)")
        graph = subprocess.run([str(doit), "graph", "-o", str(PROJECT / "docs/graph.svg"), "qcow2", *DEMO,
                                f"build={build}"], cwd=PROJECT, capture_output=True, text=True)
        if graph.returncode != 0:
            sys.exit(f"doit graph failed:\n{graph.stderr}")
    print("wrote docs/progress.svg and docs/graph.svg")


def busiest_screen(output: str) -> Console:
    """Replay the output; the screen with the most running tasks (the latest of equals), recorded by rich."""
    screen = pyte.Screen(COLUMNS, ROWS)
    stream = pyte.Stream(screen)
    best, best_running = None, -1
    for chunk in re.split(r"(?=\x1b\[\?25l|\r\x1b\[2K)", output):  # each refresh of the live display
        stream.feed(chunk)
        running = sum(1 for line in screen.display if re.match(r"\s+\S+:\S+\s+\d", line) or
                      re.match(r"\s+(toolchain|relibc|base|initfs|image|qcow2|host-tools)\s+\d", line))
        if running >= best_running:
            best, best_running = [_line(screen, row) for row in range(ROWS)], running
    console = Console(record=True, width=COLUMNS, file=open(os.devnull, "w"), force_terminal=True)
    for line in _trimmed(best or []):
        console.print(line, no_wrap=True, crop=True)
    return console


def _line(screen: pyte.Screen, row: int) -> Text:
    """One row of the screen, as runs of characters of one colour."""
    text, run, style = Text(), "", None
    for column in range(COLUMNS):
        char = screen.buffer[row][column]
        this = Style(color=COLORS.get(char.fg, char.fg), bold=char.bold)
        if this != style and run:
            text.append(run, style)
            run = ""
        run, style = run + char.data, this
    text.append(run, style)
    text.rstrip()
    return text


def _trimmed(lines: list[Text]) -> list[Text]:
    while lines and not lines[-1].plain.strip():
        lines.pop()
    return lines


if __name__ == "__main__":
    main()

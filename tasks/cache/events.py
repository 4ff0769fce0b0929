"""What the shared cache did for a build directory, one JSON line per outcome in ``<build>/cache/task-cache.jsonl``:
a task taken from it (``hit``), not in it (``miss``), ``refused``, ``uploaded``, the store ``unavailable``, and
after each cook that sccache wrapped, its compilations served (``rustc``, with ``hits`` and ``misses``). Appended
by every process of a build (doit -n's workers too: one short write is one whole line); ``doit cache stats`` and
the end-of-run line read it."""
from __future__ import annotations

import json
import time
from pathlib import Path

TASK_EVENTS = ("hit", "miss", "refused", "uploaded", "unavailable")
EVENTS = (*TASK_EVENTS, "rustc")


def events_file(build_dir: Path) -> Path:
    return build_dir / "cache" / "task-cache.jsonl"


def note(events: Path, event: str, task: str, **counts: int) -> None:
    events.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"time": round(time.time(), 3), "event": event, "task": task, **counts}) + "\n"
    with events.open("a") as log:
        log.write(line)


def counted(events: Path) -> dict[str, int]:
    """How often each task outcome happened, and ``rustc-hits`` / ``rustc-misses``: sccache's compilations."""
    counts = dict.fromkeys((*TASK_EVENTS, "rustc-hits", "rustc-misses"), 0)
    for event in _read(events):
        if event["event"] == "rustc":
            counts["rustc-hits"] += event.get("hits", 0)
            counts["rustc-misses"] += event.get("misses", 0)
        else:
            counts[event["event"]] += 1
    return counts


def hits_since(events: Path, moment: float) -> int:
    """How many tasks the cache served since ``moment`` (a time.time())."""
    return sum(1 for event in _read(events) if event["event"] == "hit" and event["time"] >= moment)


def _read(events: Path) -> list[dict]:
    """The file's events (a line cut short by a kill is left out)."""
    try:
        lines = events.read_text().splitlines()
    except FileNotFoundError:
        return []
    read = []
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and event.get("event") in EVENTS and isinstance(event.get("time"), float | int):
            read.append(event)
    return read

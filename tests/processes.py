"""Killing real processes at random moments, for the crash-safety tests."""
from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path


def kill_9_after_ready(script: str, args: list[str], cwd: Path, rng: random.Random, longest: float) -> list[int]:
    """Run ``python -c script *args``; once it prints ``ready``, wait a random moment (at most ``longest``
    seconds) and ``kill -9`` it. Returns the numbers it printed afterwards: the work it reported finished."""
    child = subprocess.Popen([sys.executable, "-c", script, *args], cwd=cwd, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline() == "ready\n"
    time.sleep(rng.uniform(0.0, longest))
    child.send_signal(signal.SIGKILL)
    finished = [int(line) for line in child.stdout.read().split()]
    child.wait()
    assert child.returncode == -signal.SIGKILL
    return finished

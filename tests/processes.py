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


def run_in_terminal(argv: list[str], *, env: dict[str, str] | None = None, columns: int = 120,
                    timeout: float = 300, cwd: Path | None = None) -> tuple[int, str]:
    """Run ``argv`` with a pseudo-terminal as its stdin, stdout and stderr (as a user's shell would); returns its
    exit status and everything it wrote, escape sequences included."""
    import fcntl
    import os
    import pty
    import select
    import struct
    import termios
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    child = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, close_fds=True, cwd=cwd,
                             env={**os.environ, "TERM": "xterm-256color", **(env or {})})
    os.close(slave)
    output, deadline = bytearray(), time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every writer has closed the terminal
                break
            if not chunk:
                break
            output += chunk
        elif child.poll() is not None:
            break
    os.close(master)
    child.wait(timeout=max(1.0, deadline - time.monotonic()))
    return child.returncode, output.decode("utf-8", "replace")

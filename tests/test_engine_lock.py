"""One build at a time per build directory, with real concurrent processes."""
from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tasks.engine import BuildLock, Engine
from tasks.errors import LockError

ROOT = Path(__file__).resolve().parent.parent

# Takes the lock of build dir argv[1] (mode argv[2]: wait / nowait / timeout), records a task while holding it,
# then holds it until its standard input closes.
LOCKER = """
import sys
from pathlib import Path
from tasks.engine import Engine, Signature
from tasks.errors import LockError
engine = Engine(Path(sys.argv[1]))
mode = sys.argv[2]
try:
    engine.start_build(wait=mode != "nowait", timeout=0.5 if mode == "timeout" else None)
except LockError as error:
    print(error, file=sys.stderr, flush=True)
    sys.exit(2)
print("locked", flush=True)
engine.state.record(f"by-{sys.argv[3]}", Signature({"who": sys.argv[3]}), "h", [])
sys.stdin.read()
engine.end_build()
"""


def locker(build: Path, mode: str, name: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", LOCKER, str(build), mode, name], cwd=ROOT, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def hold(build: Path) -> subprocess.Popen[str]:
    holder = locker(build, "wait", "first")
    assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
    return holder


def test_a_second_build_fails_clearly_without_waiting(tmp_path: Path) -> None:
    holder = hold(tmp_path / "build")
    second = locker(tmp_path / "build", "nowait", "second")
    _, stderr = second.communicate("")
    assert second.returncode == 2
    assert "build.lock: another build holds this build directory (pid" in stderr
    assert f"pid {holder.pid} (" in stderr
    holder.communicate("")
    assert holder.returncode == 0
    assert Engine(tmp_path / "build").state.tasks() == ["by-first"]


def test_a_second_build_waits_with_a_message_then_runs(tmp_path: Path) -> None:
    holder = hold(tmp_path / "build")
    waiter = locker(tmp_path / "build", "wait", "second")
    assert waiter.stderr is not None
    message = waiter.stderr.readline()
    assert message.startswith(f"waiting for build lock held by pid {holder.pid} (") and " since 20" in message
    time.sleep(0.3)
    assert waiter.poll() is None  # still waiting while the first build holds the lock
    holder.communicate("")
    assert waiter.stdout is not None and waiter.stdout.readline() == "locked\n"
    waiter.communicate("")
    assert waiter.returncode == 0
    state = Engine(tmp_path / "build").state
    assert state.tasks() == ["by-first", "by-second"]
    assert sqlite3.connect(state.path).execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_waiting_gives_up_after_the_timeout(tmp_path: Path) -> None:
    holder = hold(tmp_path / "build")
    waiter = locker(tmp_path / "build", "timeout", "second")
    _, stderr = waiter.communicate("")
    assert waiter.returncode == 2 and "gave up after 0.5 s waiting for pid" in stderr
    holder.communicate("")


def test_a_killed_holder_releases_the_lock(tmp_path: Path) -> None:
    holder = hold(tmp_path / "build")
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    lock = BuildLock(tmp_path / "build" / "engine" / "build.lock")
    lock.acquire(wait=False)
    lock.release()


def test_one_lock_per_process(tmp_path: Path) -> None:
    with BuildLock(tmp_path / "build.lock") as lock:
        with pytest.raises(LockError, match="already holds"):
            lock.acquire()


def test_ensure_started_takes_the_lock_once_and_recovers(tmp_path: Path) -> None:
    engine = Engine(tmp_path / "build")
    engine.ensure_started(wait=False)
    engine.ensure_started(wait=False)
    assert engine.lock.held
    with pytest.raises(LockError, match="another build holds"):
        BuildLock(engine.lock.path).acquire(wait=False)
    engine.end_build()
    assert not engine.lock.held

"""Sessions: the lock between processes, stale records, reuse and restart, polite-then-forceful stop.

Locks and stale records are exercised with real processes (a second Python holding the lock, a finished process's
pid, a live process that is not QEMU). The session lifecycle runs a real QEMU on the UEFI firmware with a blank GPT
disk: it never reaches an OS, which is enough to start, reuse, restart and stop it (the firmware ignores the power
button, so stopping must fall back to SIGTERM).
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import psutil
import pytest

from tasks.errors import InputError, LockError
from tasks.hashing import hash_file
from tasks.qemu.command import RunOptions, find_firmware, resolve
from tasks.qemu.session import (
    SOCKET_PATH_LIMIT,
    SessionLock,
    SessionPaths,
    SessionRecord,
    isolated_name,
    live_record,
    open_session,
    process_start,
    stop,
    stop_locked,
    writes_discarded,
)
from tasks.settings import PROJECT_DIR

HOLD_LOCK = """
import sys
from pathlib import Path
from tasks.qemu.session import SessionLock, SessionPaths
lock = SessionLock(SessionPaths.of(Path(sys.argv[1]), "default"))
lock.acquire("holding it for a test")
print("locked", flush=True)
sys.stdin.read()  # hold until the test closes our stdin
"""


def python(script: str, *args: str, **popen) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", script, *args], cwd=PROJECT_DIR, text=True,
                            env={**os.environ, "PYTHONPATH": str(PROJECT_DIR)}, **popen)


def test_lock_held_by_another_process_names_it_and_can_be_waited_for(tmp_path):
    holder = python(HOLD_LOCK, str(tmp_path), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline() == "locked\n"
        paths = SessionPaths.of(tmp_path, "default")
        with pytest.raises(LockError, match=rf"session default in use by pid {holder.pid} \(holding it for a test\) "
                                            rf"since {datetime.now():%Y-%m-%d} .*--wait"):
            SessionLock(paths).acquire("test")
        started = time.monotonic()
        with pytest.raises(LockError, match="timed out waiting"):
            SessionLock(paths).acquire("test", wait=0.5)
        assert time.monotonic() - started >= 0.5
        told: list[str] = []
        holder.stdin.close()  # the holder exits, the kernel drops its lock
        with SessionLock(paths).held("test", wait=30, on_busy=told.append):
            assert f'"pid":{os.getpid()}' in paths.lock.read_text()
        assert all(f"pid {holder.pid}" in message for message in told)
    finally:
        holder.kill()
        holder.wait()


def record_for(paths: SessionPaths, pid: int, created: float) -> SessionRecord:
    files = paths.files
    record = SessionRecord(name=paths.name, qemu_pid=pid, qemu_created=created, owner_pid=pid,
                           started_at=datetime.now().astimezone(), console_socket=files.console_socket,
                           qmp_socket=files.qmp_socket, console_log=files.console_log, image=None,
                           image_stamp="", argv=["qemu-system-aarch64"])
    paths.dir.mkdir(parents=True, exist_ok=True)
    paths.record.write_text(record.model_dump_json())
    files.console_socket.write_text("")  # left behind by a QEMU that died
    return record


def test_stale_session_whose_qemu_died_is_removed(tmp_path):
    finished = subprocess.Popen(["true"])
    finished.wait()
    paths = SessionPaths.of(tmp_path, "default")
    record_for(paths, finished.pid, time.time() - 60)
    notes: list[str] = []
    assert live_record(paths, notes) is None
    assert notes == [f"removed stale session default: its QEMU (pid {finished.pid}) has exited"]
    assert not paths.record.exists() and not paths.files.console_socket.exists()


def test_a_pid_now_used_by_another_program_is_never_signalled(tmp_path):
    """The record's pid is alive but started at another time than the recorded QEMU: it is not ours to stop."""
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        paths = SessionPaths.of(tmp_path, "default")
        record_for(paths, bystander.pid, process_start(bystander.pid) - 3600)
        with SessionLock(paths).held("run-stop"):
            how = stop_locked(paths, powerdown_timeout=1)
        assert how == f"removed stale session default: its QEMU (pid {bystander.pid}) has exited"
        assert bystander.poll() is None and not paths.record.exists()
    finally:
        bystander.kill()
        bystander.wait()


def test_a_session_record_copied_with_the_tree_never_stops_the_original(tmp_path):
    """`cp -a` of a tree copies build/run/<name>/session.json: the copy's boot-stop must leave the original's
    QEMU (here a live process whose pid, start time and command line the record holds) running (issue 12, item 7)."""
    original = SessionPaths.of(tmp_path / "tree" / "build", "default")
    qemu = subprocess.Popen(["sleep", "60"])
    try:
        record = record_for(original, qemu.pid, process_start(qemu.pid))
        record = record.model_copy(update={"argv": ["sleep", "60"]})
        original.record.write_text(record.model_dump_json())
        copy = SessionPaths.of(tmp_path / "copy" / "build", "default")
        copy.dir.mkdir(parents=True)
        copy.record.write_text(original.record.read_text())
        with SessionLock(copy).held("run-stop"):
            how = stop_locked(copy, powerdown_timeout=1)
        assert how.startswith(f"removed session record {copy.record}: it was written for another build directory")
        assert qemu.poll() is None and original.record.exists() and original.files.console_socket.exists()
        assert not copy.record.exists()
        with SessionLock(original).held("run-stop"):  # the original's own record still stops it
            seen = psutil.Process(qemu.pid)
            seen_as = (process_start(qemu.pid), seen.status(), seen.cmdline(), record.qemu_created)
            how = stop_locked(original, powerdown_timeout=1)
        assert how is not None and "QEMU terminated (SIGTERM)" in how, (how, seen_as)
        assert qemu.wait(timeout=20) is not None
    finally:
        qemu.kill()
        qemu.wait()


def test_stop_without_session(tmp_path):
    paths = SessionPaths.of(tmp_path, "default")
    with SessionLock(paths).held("run-stop"):
        assert stop_locked(paths) is None


def test_session_names_and_socket_paths(tmp_path):
    assert isolated_name() != isolated_name()
    with pytest.raises(InputError, match="not a session name"):
        SessionPaths.of(tmp_path, "../elsewhere")
    deep = SessionPaths.of(tmp_path / ("very-long-directory-name-" * 6), "default")
    assert len(str(deep.files.console_socket)) <= SOCKET_PATH_LIMIT
    assert deep.files.console_socket.parent == deep.files.qmp_socket.parent != deep.dir


@pytest.mark.slow
def test_uefi_session_is_reused_restarted_when_the_image_changes_and_stopped(tmp_path):
    image = tmp_path / "pure-rust.img"
    image.write_bytes(b"\0" * (1 << 20))
    options = RunOptions(image=image, memory="256M", cpus=1, share_dir=tmp_path / "share")
    machine = resolve(options)
    paths = SessionPaths.of(tmp_path / "build", "default")
    lock = SessionLock(paths)

    with lock.held("test"):
        first = open_session(paths, machine)
    assert first.fresh and first.notes == [f"started session default: QEMU pid {first.record.qemu_pid}"]
    vars_template = find_firmware().vars_template
    assert vars_template is not None and hash_file(paths.files.vars_file) == hash_file(vars_template)
    assert (tmp_path / "share").is_dir()

    with lock.held("test"):
        again = open_session(paths, machine)
    assert not again.fresh and again.record.qemu_pid == first.record.qemu_pid
    assert again.notes[0].startswith("reusing session default: QEMU pid")
    wait_for_text(first.record.console_log, "UEFI firmware")  # the pflash firmware and vars copy really run

    replacement = tmp_path / "rebuilt.img"
    replacement.write_bytes(b"\0" * (1 << 20))
    replacement.replace(image)  # what an image rebuild does
    with lock.held("test"):
        restarted = open_session(paths, machine, powerdown_timeout=1)
    assert restarted.fresh and restarted.record.qemu_pid != first.record.qemu_pid
    assert restarted.notes[0].startswith("restarting session default: the image changed since it started")
    assert not psutil.pid_exists(first.record.qemu_pid) or psutil.Process(first.record.qemu_pid).status() == "zombie"

    with lock.held("test"):
        started = time.monotonic()
        how = stop(paths, restarted.record, powerdown_timeout=30)
    # its disk is a snapshot: QEMU quits at once instead of waiting for a guest that may never power down (the
    # fork's kernel with acpi=off does not) (issue 20, item 2)
    assert how == "QEMU quit (the guest's writes went to a snapshot: nothing to keep)"
    assert time.monotonic() - started < 5
    assert not paths.record.exists() and not paths.files.vars_file.exists()
    assert "qemu-system-aarch64 -M virt" in paths.qemu_log.read_text()

    writable = resolve(RunOptions(image=image, memory="256M", cpus=1, share_dir=tmp_path / "share", snapshot=False))
    with lock.held("test"):
        written = open_session(paths, writable)
        how = stop(paths, written.record, powerdown_timeout=1)
    assert how == "the guest did not power down within 1 s; QEMU terminated (SIGTERM)"  # its writes are kept


@pytest.mark.parametrize("argv, discarded", [
    (["-drive", "file=a.img,format=raw,snapshot=on", "-drive", "if=pflash,format=raw,file=vars.fd"], True),
    (["-drive", "file=a.img,format=raw,snapshot=off"], False),
    (["-drive", "file=a.img,snapshot=on", "-drive", "file=b.img"], False),
    (["-snapshot", "-drive", "file=a.img"], True),
    (["-kernel", "Image"], False),
])
def test_a_session_whose_writes_are_discarded_is_known_by_its_command_line(argv, discarded):
    assert writes_discarded(["qemu-system-aarch64", *argv]) is discarded


def wait_for_text(path: Path, text: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text(errors="replace"):
            return
        time.sleep(0.2)
    raise AssertionError(f"{text!r} not in {path} within {timeout} s")

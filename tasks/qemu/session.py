"""QEMU sessions: started once, reused by later calls, locked while in use, stopped only when this tool started them.

A session lives in ``build/run/<name>/``: ``session.json`` (the record: QEMU pid and its start time, sockets, image
and its stamp, when and by whom it was started), ``lock`` (flock'ed by whoever uses the session, and naming them),
the console and QMP sockets, and the per-run copy of the UEFI variable store. Logs go to ``build/logs/``.

A QEMU is only ever signalled through a record this tool wrote for this session directory (a record copied with
the tree names another directory's sockets: it is dropped), and only while that pid is still the process that
was started (same pid, start time *and* command line): a pid reused by another program, or any QEMU started by
hand, is never touched. A record whose QEMU has gone is stale and is removed.
"""
from __future__ import annotations

import fcntl
import os
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import psutil
from pydantic import BaseModel, ValidationError

from ..atomic import atomic_path, write_atomically
from ..errors import CommandError, InputError, LockError
from ..hashing import hash_text, hash_value
from ..process import command_line
from .command import PFLASH_SIZE, Machine, RunOptions, SessionFiles, qemu_argv
from .qmp import Qmp

DEFAULT_SESSION = "default"
# sun_path holds 108 bytes on Linux and 104 on macOS; deeper session directories get their sockets in the temp dir.
SOCKET_PATH_LIMIT = 100
LOCK_POLL_SECONDS = 0.2
MONITOR_START_TIMEOUT = 60.0
SIGNAL_TIMEOUT = 10.0
POWERDOWN_TIMEOUT = 30.0
_SESSION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class SessionPaths:
    name: str
    dir: Path
    logs: Path

    @classmethod
    def of(cls, build_dir: Path, name: str) -> "SessionPaths":
        if _SESSION_NAME.fullmatch(name) is None:
            raise InputError(f"not a session name: {name!r} (letters, digits, '.', '_', '-')", key="session")
        return cls(name=name, dir=build_dir / "run" / name, logs=build_dir / "logs")

    @property
    def record(self) -> Path:
        return self.dir / "session.json"

    @property
    def lock(self) -> Path:
        return self.dir / "lock"

    @property
    def qemu_log(self) -> Path:
        """QEMU's command lines and its own messages (the guest's console goes to ``files.console_log``)."""
        return self.logs / f"qemu-{self.name}.log"

    @property
    def files(self) -> SessionFiles:
        sockets = self.dir
        if len(str(self.dir.absolute() / "console.sock")) > SOCKET_PATH_LIMIT:
            sockets = Path(tempfile.gettempdir()) / f"redox-qemu-{hash_text(str(self.dir.absolute()))[:16]}"
        return SessionFiles(console_socket=sockets / "console.sock", qmp_socket=sockets / "qmp.sock",
                            console_log=self.logs / f"qemu-{self.name}-console.log", vars_file=self.dir / "vars.fd")


class SessionRecord(BaseModel):
    """What ``session.json`` holds about a running session."""

    name: str
    qemu_pid: int
    qemu_created: float  # process_start() of QEMU
    owner_pid: int
    started_at: datetime
    console_socket: Path
    qmp_socket: Path
    console_log: Path
    image: Path | None
    image_stamp: str
    argv: list[str]


class Holder(BaseModel):
    """Who holds a session's lock: written into the lock file by the holder."""

    pid: int
    since: datetime
    purpose: str


@dataclass
class ActiveSession:
    """A running session this process holds the lock of."""

    paths: SessionPaths
    record: SessionRecord
    fresh: bool  # started by this call: the console shows the boot, then the login prompt
    notes: list[str] = field(default_factory=list)


class SessionLock:
    """An exclusive flock on the session's lock file; the holder writes its pid, start time and purpose into it."""

    def __init__(self, paths: SessionPaths):
        self.paths = paths
        self._fd: int | None = None

    def acquire(self, purpose: str, wait: float = 0.0, on_busy: Callable[[str], None] | None = None) -> None:
        """Take the lock, waiting up to ``wait`` seconds (``math.inf``: for as long as it takes)."""
        self.paths.dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.paths.lock, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + wait
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                busy = self.describe_holder()
                if time.monotonic() >= deadline:
                    os.close(fd)
                    hint = "timed out waiting" if wait else "wait for it (--wait) or start an isolated session"
                    raise LockError(f"{busy}; {hint}", path=self.paths.lock) from None
                if on_busy is not None and not told:
                    on_busy(f"{busy}; waiting")
                    told = True
                # flock cannot block with a timeout, so a bounded wait polls.
                time.sleep(LOCK_POLL_SECONDS)
        holder = Holder(pid=os.getpid(), since=datetime.now().astimezone(), purpose=purpose)
        os.ftruncate(fd, 0)
        os.pwrite(fd, holder.model_dump_json().encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def describe_holder(self) -> str:
        try:
            holder = Holder.model_validate_json(self.paths.lock.read_text())
        except (OSError, ValidationError):
            return f"session {self.paths.name} in use by another process"
        return (f"session {self.paths.name} in use by pid {holder.pid} ({holder.purpose}) "
                f"since {holder.since:%Y-%m-%d %H:%M:%S}")

    @contextmanager
    def held(self, purpose: str, wait: float = 0.0,
             on_busy: Callable[[str], None] | None = None) -> Iterator["SessionLock"]:
        self.acquire(purpose, wait, on_busy)
        try:
            yield self
        finally:
            self.release()


def isolated_name() -> str:
    """A session name nobody else uses: for a run that must not share (or wait for) the default session."""
    return f"isolated-{os.getpid()}-{secrets.token_hex(3)}"


@contextmanager
def locked_session(build_dir: Path, name: str, machine: Machine, *, purpose: str, wait: float = 0.0,
                   on_busy: Callable[[str], None] | None = None,
                   powerdown_timeout: float = POWERDOWN_TIMEOUT) -> Iterator[ActiveSession]:
    """Hold the session's lock and have its QEMU running: reused when it matches ``machine``, else (re)started."""
    paths = SessionPaths.of(build_dir, name)
    with SessionLock(paths).held(purpose, wait, on_busy):
        yield open_session(paths, machine, powerdown_timeout)


def open_session(paths: SessionPaths, machine: Machine,
                 powerdown_timeout: float = POWERDOWN_TIMEOUT) -> ActiveSession:
    """The running session if it boots the same thing the same way; otherwise a new one. Needs the lock."""
    notes: list[str] = []
    record = live_record(paths, notes)
    argv = qemu_argv(machine, paths.files)
    stamp = image_stamp(machine.options)
    if record is not None:
        reason = _outdated(record, argv, stamp)
        if reason is None:
            notes.append(f"reusing session {paths.name}: QEMU pid {record.qemu_pid} "
                         f"started {record.started_at:%Y-%m-%d %H:%M:%S}")
            return ActiveSession(paths, record, fresh=False, notes=notes)
        notes.append(f"restarting session {paths.name}: {reason}; stopping QEMU pid {record.qemu_pid}: "
                     + stop(paths, record, powerdown_timeout))
    record = start(paths, machine, argv, stamp)
    notes.append(f"started session {paths.name}: QEMU pid {record.qemu_pid}")
    return ActiveSession(paths, record, fresh=True, notes=notes)


def read_record(paths: SessionPaths) -> SessionRecord | None:
    try:
        return SessionRecord.model_validate_json(paths.record.read_text())
    except (FileNotFoundError, ValidationError):
        return None


def live_record(paths: SessionPaths, notes: list[str]) -> SessionRecord | None:
    """The session's record if its QEMU still runs; a stale or unreadable record is removed (and noted)."""
    if not paths.record.exists():
        return None
    record = read_record(paths)
    if record is None:
        paths.record.unlink(missing_ok=True)
        notes.append(f"removed unreadable session record {paths.record}")
        return None
    if not _recorded_here(paths, record):
        # Copied with the tree (cp -a): its QEMU and sockets are another tree's, never ours to signal or remove.
        paths.record.unlink(missing_ok=True)
        notes.append(f"removed session record {paths.record}: it was written for another build directory "
                     f"(sockets {record.qmp_socket.parent}), whose QEMU is left alone")
        return None
    if not qemu_alive(record):
        _clean(paths, record)
        notes.append(f"removed stale session {paths.name}: its QEMU (pid {record.qemu_pid}) has exited")
        return None
    return record


def _recorded_here(paths: SessionPaths, record: SessionRecord) -> bool:
    """The record names this session's own sockets (which follow from its directory)."""
    files = paths.files
    return (record.qmp_socket, record.console_socket) == (files.qmp_socket, files.console_socket)


def process_start(pid: int) -> float:
    """When a process started, as a value that never changes while it runs: on Linux its start in clock ticks since
    boot (``/proc/<pid>/stat``), not psutil's epoch time, which adds the kernel's boot time, and that moves when the
    clock is adjusted (a live QEMU was once taken for a finished one); elsewhere psutil's start time."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stream:
            fields = stream.read().rsplit(b")", 1)[1].split()
        return float(int(fields[19]))  # field 22 of stat(5); fields[0] is field 3
    except FileNotFoundError:
        if os.path.isdir("/proc/self"):
            raise psutil.NoSuchProcess(pid) from None
        return psutil.Process(pid).create_time()


def qemu_alive(record: SessionRecord) -> bool:
    """Is the recorded pid still the QEMU that was started (not a finished one, nor a new process with its pid):
    same start time, and the command line the record holds, which names this session's sockets? An empty command
    line is the same process still inside its exec: Popen returns once exec has closed its error pipe, before the
    kernel has laid out the new program's arguments (seen on a loaded machine, right after the start)."""
    try:
        process = psutil.Process(record.qemu_pid)
        return (process_start(record.qemu_pid) == record.qemu_created and process.status() != psutil.STATUS_ZOMBIE
                and process.cmdline() in (record.argv, []))
    except (psutil.NoSuchProcess, psutil.AccessDenied):  # gone, or another user's process: not our QEMU
        return False


def sessions_using(build_dir: Path, image: Path) -> list[str]:
    """The names of this build directory's running sessions that boot ``image`` (a stale record is dropped)."""
    using = []
    for record_file in sorted((build_dir / "run").glob("*/session.json")):
        record = live_record(SessionPaths.of(build_dir, record_file.parent.name), [])
        if record is not None and record.image is not None and record.image.resolve() == image.resolve():
            using.append(record.name)
    return using


def image_stamp(options: RunOptions) -> str:
    """Identity of what the session boots (image, kernel, initrd): a rebuild changes it, so the session restarts."""
    stamps = []
    for path in (options.image, options.kernel, options.initrd):
        if path is None:
            continue
        status = path.stat()
        if path == options.image and not options.snapshot:
            # Without snapshot the guest writes the image in place (same inode); a rebuild replaces the file.
            stamps.append([str(path), status.st_ino])
        else:
            stamps.append([str(path), status.st_ino, status.st_size, status.st_mtime_ns])
    return hash_value(stamps)


def _outdated(record: SessionRecord, argv: list[str], stamp: str) -> str | None:
    if record.image_stamp != stamp:
        return "the image changed since it started"
    if record.argv != argv:
        return "it was started with other options"
    return None


def start(paths: SessionPaths, machine: Machine, argv: list[str], stamp: str) -> SessionRecord:
    """Start QEMU in the background; return once its monitor answers."""
    files = paths.files
    for directory in (paths.dir, paths.logs, files.console_socket.parent):
        directory.mkdir(parents=True, exist_ok=True)
    _remove(files.console_socket, files.qmp_socket)
    if machine.firmware is not None and machine.firmware.pflash:
        _fresh_vars(machine.firmware.vars_template, files.vars_file)
    if machine.options.share_dir is not None:
        machine.options.share_dir.mkdir(parents=True, exist_ok=True)
    with open(paths.qemu_log, "a", encoding="utf-8") as log:
        log.write(f"# {datetime.now():%Y-%m-%d %H:%M:%S} session {paths.name}\n$ {command_line(argv)}\n")
        log.flush()
        try:
            # QEMU must outlive this call (later calls reuse it), which process.run() cannot do. Its own
            # process group keeps a Ctrl-C typed here from reaching it.
            qemu = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        except FileNotFoundError:
            raise CommandError(f"command not found: {argv[0]} (install qemu-system-arm on Debian, qemu with "
                               "Homebrew)") from None
    _wait_for_monitor(qemu, files.qmp_socket, paths.qemu_log)
    record = SessionRecord(
        name=paths.name, qemu_pid=qemu.pid, qemu_created=process_start(qemu.pid),
        owner_pid=os.getpid(), started_at=datetime.now().astimezone(), console_socket=files.console_socket,
        qmp_socket=files.qmp_socket, console_log=files.console_log, image=machine.options.image,
        image_stamp=stamp, argv=argv)
    write_atomically(paths.record, record.model_dump_json(indent=2))
    return record


def _fresh_vars(template: Path | None, vars_file: Path) -> None:
    """A writable variable store for this run: a copy of the firmware's template, or a blank flash bank."""
    with atomic_path(vars_file) as partial:
        if template is not None:
            shutil.copyfile(template, partial)
        else:
            with open(partial, "wb") as blank:
                blank.truncate(PFLASH_SIZE)


def _wait_for_monitor(qemu: subprocess.Popen[bytes], qmp_socket: Path, log: Path) -> None:
    deadline = time.monotonic() + MONITOR_START_TIMEOUT
    while time.monotonic() < deadline:
        if qemu.poll() is not None:
            raise CommandError(f"QEMU exited with status {qemu.returncode} at start:\n{_tail(log)}", path=log)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(str(qmp_socket))
                return
            except (FileNotFoundError, ConnectionRefusedError):
                time.sleep(0.05)  # QEMU is still parsing its options: its monitor socket is not bound yet
    qemu.kill()
    raise CommandError(f"QEMU's monitor did not come up within {MONITOR_START_TIMEOUT:.0f} s", path=log)


def _tail(log: Path, lines: int = 20) -> str:
    return "\n".join("  " + line for line in log.read_text(errors="replace").splitlines()[-lines:])


def stop_locked(paths: SessionPaths, powerdown_timeout: float = POWERDOWN_TIMEOUT) -> str | None:
    """Stop the recorded session (caller holds the lock): None when none runs. Says how it ended."""
    notes: list[str] = []
    record = live_record(paths, notes)
    if record is None:
        return "; ".join(notes) or None
    return stop(paths, record, powerdown_timeout)


def stop(paths: SessionPaths, record: SessionRecord, powerdown_timeout: float = POWERDOWN_TIMEOUT) -> str:
    """Politely first (the power button, through QMP ``system_powerdown``), then SIGTERM, then SIGKILL."""
    try:
        how = _stop_process(record, powerdown_timeout) if qemu_alive(record) else "it was no longer running"
    except psutil.NoSuchProcess:
        how = "it exited meanwhile"
    _clean(paths, record)
    return how


def _stop_process(record: SessionRecord, powerdown_timeout: float) -> str:
    process = psutil.Process(record.qemu_pid)
    try:
        with Qmp(record.qmp_socket) as qmp:
            if writes_discarded(record.argv):  # nothing the guest wrote is kept: no shutdown to wait for
                qmp.execute("quit")
                if _exited(process, SIGNAL_TIMEOUT):
                    return "QEMU quit (the guest's writes went to a snapshot: nothing to keep)"
                reason = f"QEMU did not quit within {SIGNAL_TIMEOUT:.0f} s"
            else:
                qmp.execute("system_powerdown")
                if _exited(process, powerdown_timeout):
                    return "the guest powered down"
                reason = f"the guest did not power down within {powerdown_timeout:.0f} s"
    except CommandError as failure:
        reason = f"the monitor did not answer ({failure.reason})"
    # psutil re-checks the pid's start time before signalling, so a reused pid is never hit.
    process.terminate()
    if _exited(process, SIGNAL_TIMEOUT):
        return f"{reason}; QEMU terminated (SIGTERM)"
    process.kill()
    _exited(process, SIGNAL_TIMEOUT)
    return f"{reason}; QEMU killed (SIGKILL)"


def writes_discarded(argv: list[str]) -> bool:
    """Every disk of the QEMU command line is opened with ``snapshot=on`` (or ``-snapshot`` is given): a guest's
    writes are dropped when QEMU ends, so it may end at once. The firmware's variables (a pflash drive) are the
    session's own, removed with it."""
    disks = [fields for index, arg in enumerate(argv[:-1]) if arg == "-drive"
             and "if=pflash" not in (fields := argv[index + 1].split(","))]
    return "-snapshot" in argv or bool(disks) and all("snapshot=on" in fields for fields in disks)


def _exited(process: psutil.Process, timeout: float) -> bool:
    try:
        process.wait(timeout)
        return True
    except psutil.TimeoutExpired:
        return False


def _clean(paths: SessionPaths, record: SessionRecord) -> None:
    _remove(paths.record, record.console_socket, record.qmp_socket, paths.files.vars_file)


def _remove(*paths: Path) -> None:
    for path in paths:
        path.unlink(missing_ok=True)

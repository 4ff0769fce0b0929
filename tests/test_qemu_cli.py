"""boot / test-in-redox / boot-stop as a person uses them, on a real QEMU (TCG) running the Redox-like test guest.

The tests share the default session where their point allows (one boot, started by a separate process in the first
test); the isolated-session test boots its own guest beside it.
"""
from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pexpect
import pytest
from rich.console import Console as Printer

import tasks.qemu.cli as cli
from tasks.errors import CommandError, LockError
from tasks.hashing import hash_file
from tasks.qemu.command import RunOptions, detect_accel
from tasks.qemu.console import ConsoleSettings
from tasks.qemu.session import SessionLock, SessionPaths, qemu_alive, read_record
from tasks.settings import PROJECT_DIR
from tests.qemu_guest import build_guest, type_at_the_prompt_then_detach

pytestmark = pytest.mark.slow

DISK_BYTES = b"redox-disk" * 100_000

# A second user: runs test-in-redox from its own process, holding the default session while its commands run.
OTHER_USER = """
import sys
from pathlib import Path
import tasks.qemu.cli as cli
from tasks.qemu import ConsoleSettings, RunOptions, SessionSettings
options = RunOptions.model_validate_json(sys.argv[1])
console = ConsoleSettings.model_validate_json(sys.argv[3])
sys.exit(cli.test_in_redox(["echo other-user-was-here", "sleep 8"], options,
                           SessionSettings(build_dir=Path(sys.argv[2])), console))
"""

INTERACTIVE = """
import sys
from pathlib import Path
import tasks.qemu.cli as cli
from tasks.qemu import RunOptions, SessionSettings
sys.exit(cli.run_interactive(RunOptions.model_validate_json(sys.argv[1]), SessionSettings(build_dir=Path(sys.argv[2]))))
"""


@dataclass
class Env:
    options: RunOptions
    settings: cli.SessionSettings
    console: ConsoleSettings
    paths: SessionPaths
    image: Path

    def child(self, script: str, *args: str) -> list[str]:
        return [sys.executable, "-c", script, self.options.model_dump_json(), str(self.settings.build_dir), *args]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    guest = build_guest()
    root = tmp_path_factory.mktemp("cli")
    image = root / "disk.img"
    image.write_bytes(DISK_BYTES)
    options = RunOptions(image=image, kernel=guest.kernel, initrd=guest.initrd, append=guest.append,
                         memory="512M", cpus=2, share_dir=root / "share", forwards=["udp:5555:5555"])
    settings = cli.SessionSettings(build_dir=root / "build")
    console = ConsoleSettings(user=guest.user, password=guest.password, boot_timeout=240, command_timeout=30)
    yield Env(options, settings, console, SessionPaths.of(settings.build_dir, "default"), image)
    cli.stop_session(settings.model_copy(update={"wait": 60}), printer())


def printer() -> Printer:
    return Printer(file=io.StringIO(), highlight=False, soft_wrap=True, width=200)


def printed(out: Printer) -> str:
    return out.file.getvalue()


def child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(PROJECT_DIR)}


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout} s")
        time.sleep(0.1)


def test_a_session_used_by_another_process_is_never_taken_from_it(env):
    other = subprocess.Popen(env.child(OTHER_USER, env.console.model_dump_json()), cwd=PROJECT_DIR,
                             env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until(lambda: env.paths.record.exists() and f'"pid":{other.pid}' in env.paths.lock.read_text(), 120,
                   "session started by the other process")
        record = read_record(env.paths)
        in_use = rf"session default in use by pid {other.pid} \(test-in-redox\) since \d{{4}}-\d\d-\d\d"
        with pytest.raises(LockError, match=in_use):
            cli.test_in_redox(["echo intruder"], env.options, env.settings, env.console, printer())
        with pytest.raises(LockError, match=in_use):
            cli.stop_session(env.settings, printer())
        assert qemu_alive(record)

        out = printer()
        waiting = env.settings.model_copy(update={"wait": cli.WAIT_FOREVER})
        assert cli.test_in_redox(["echo after waiting", "false"], env.options, waiting, env.console, out) == 1
        text = printed(out)
        assert f"in use by pid {other.pid} (test-in-redox)" in text and "; waiting" in text
        assert f"reusing session default: QEMU pid {record.qemu_pid}" in text
        assert "$ echo after waiting\nafter waiting\nexit status 0" in text
        assert "$ false\nexit status 1" in text and "1 of 2 commands succeeded" in text

        output, _ = other.communicate(timeout=120)
        assert other.returncode == 0, output
        assert f"started session default: QEMU pid {record.qemu_pid}" in output
        accel = detect_accel()
        assert f"qemu-system-aarch64 -M virt,acpi=off -accel {accel} -cpu {accel.cpu} -smp 2 -m 512M -kernel" in output
        assert "$ echo other-user-was-here\nother-user-was-here\nexit status 0" in output
        assert "$ sleep 8\nexit status 0" in output
    finally:
        other.kill()
        other.wait()


def test_a_second_invocation_reuses_the_session(env):
    assert cli.test_in_redox(["echo first"], env.options, env.settings, env.console, printer()) == 0
    first = read_record(env.paths)
    out = printer()
    started = time.monotonic()
    assert cli.test_in_redox(["echo second"], env.options, env.settings, env.console, out) == 0
    assert time.monotonic() - started < 10  # no boot
    assert read_record(env.paths).qemu_pid == first.qemu_pid
    assert printed(out).startswith(f"reusing session default: QEMU pid {first.qemu_pid}")
    assert "$ echo second\nsecond\nexit status 0" in printed(out)


def test_a_timeout_is_reported_and_exits_non_zero(env):
    quick = env.console.model_copy(update={"command_timeout": 3})
    out = printer()
    assert cli.test_in_redox(["echo before", "cat /dev/zero > /dev/null", "echo never run"], env.options,
                             env.settings, quick, out) == 1
    text = printed(out)
    assert "error: `cat /dev/zero > /dev/null` did not finish within 3 s; interrupted it with Ctrl-C" in text
    assert "last " in text and "$ echo never run" not in text and "1 of 3 commands succeeded" in text
    assert cli.test_in_redox(["echo fine"], env.options, env.settings, env.console, printer()) == 0


def test_run_attaches_the_terminal_until_ctrl_bracket(env):
    assert cli.test_in_redox(["true"], env.options, env.settings, env.console, printer()) == 0
    record = read_record(env.paths)
    terminal = pexpect.spawn(env.child(INTERACTIVE)[0], env.child(INTERACTIVE)[1:], cwd=str(PROJECT_DIR),
                             env=child_env(), encoding="utf-8", timeout=60)
    try:
        terminal.expect("Ctrl-] detaches")
        with pytest.raises(LockError, match=r"in use by pid \d+ \(boot\)"):
            cli.test_in_redox(["true"], env.options, env.settings, env.console, printer())
        type_at_the_prompt_then_detach(terminal)
        terminal.expect(pexpect.EOF)
    finally:
        terminal.close(force=True)
    assert terminal.exitstatus == 0
    assert qemu_alive(record) and read_record(env.paths).qemu_pid == record.qemu_pid


def test_an_isolated_session_runs_beside_and_snapshot_keeps_the_image(env):
    before = hash_file(env.image)
    out = printer()
    isolated = env.settings.model_copy(update={"isolated": True})
    beside = env.options.model_copy(update={"forwards": ()})  # the default session holds the forwarded host port
    commands = ["dd if=/dev/zero of=/dev/vda bs=4096 count=64 conv=fsync", "echo wrote the disk"]
    default = read_record(env.paths)
    with SessionLock(env.paths).held("pretend another user has the default session"):
        assert cli.test_in_redox(commands, beside, isolated, env.console, out) == 0
    text = printed(out)
    assert "started session isolated-" in text and "wrote the disk\nexit status 0" in text
    assert ": QEMU quit (the guest's writes went to a snapshot: nothing to keep)" in text  # no shutdown awaited
    assert hash_file(env.image) == before and env.image.read_bytes() == DISK_BYTES
    assert not any((env.settings.build_dir / "run").glob("isolated-*/session.json"))
    assert default is None or qemu_alive(default)


def test_run_stop_powers_the_guest_down_politely_and_a_snapshot_at_once(env):
    """A guest that writes the image is shut down politely; one whose writes go to a snapshot is not waited for:
    QEMU quits in a second (issue 20, item 2: boot-stop took 32 s)."""
    writable = env.options.model_copy(update={"snapshot": False})
    assert cli.test_in_redox(["true"], writable, env.settings, env.console, printer()) == 0
    record = read_record(env.paths)
    out = printer()
    assert cli.stop_session(env.settings, out) == 0
    assert printed(out) == "session default: the guest powered down\n"
    assert not qemu_alive(record) and not env.paths.record.exists()
    assert cli.test_in_redox(["true"], env.options, env.settings, env.console, printer()) == 0
    record, out, started = read_record(env.paths), printer(), time.monotonic()
    assert cli.stop_session(env.settings, out) == 0
    assert printed(out) == "session default: QEMU quit (the guest's writes went to a snapshot: nothing to keep)\n"
    assert time.monotonic() - started < 5 and not qemu_alive(record)
    again = printer()
    cli.stop_session(env.settings, again)
    assert printed(again) == "no session default is running\n"


def test_a_boot_that_fails_leaves_no_qemu_running(env):
    """Issue 20, item 2: a session that never reached the login prompt was left at 95 % CPU."""
    cli.stop_session(env.settings, printer())
    hasty = env.console.model_copy(update={"boot_timeout": 1})
    out = printer()
    with pytest.raises(CommandError):
        cli.test_in_redox(["true"], env.options, env.settings, hasty, out)
    assert "session default: the boot failed; QEMU quit" in printed(out)
    assert read_record(env.paths) is None

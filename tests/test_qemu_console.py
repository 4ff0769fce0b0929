"""The console driver on a real QEMU (TCG) running the Redox-like test guest (tests/qemu_guest.py).

One guest is booted for the module; every test drives its serial console through the chardev socket.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tasks.errors import CommandError
from tasks.hashing import hash_file
from tasks.qemu.command import RunOptions, resolve
from tasks.qemu.console import Console, ConsoleSettings, ConsoleTimeout
from tasks.qemu.session import (
    ActiveSession,
    SessionLock,
    SessionPaths,
    open_session,
    stop,
)
from tests.qemu_guest import build_guest

pytestmark = pytest.mark.slow

DISK_BYTES = bytes(range(256)) * 4096 * 4  # 4 MiB the guest overwrites; the host file must not change


@dataclass
class Guest:
    console: Console
    session: ActiveSession
    settings: ConsoleSettings
    image: Path
    share: Path


@pytest.fixture(scope="module")
def guest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Guest]:
    built = build_guest()
    root = tmp_path_factory.mktemp("console")
    share = root / "share"
    share.mkdir()
    (share / "from-host.txt").write_text("hello through virtio-9p\n")
    image = root / "disk.img"
    image.write_bytes(DISK_BYTES)
    options = RunOptions(image=image, kernel=built.kernel, initrd=built.initrd, append=built.append,
                         memory="512M", cpus=2, share_dir=share)
    paths = SessionPaths.of(root / "build", "console")
    settings = ConsoleSettings(user=built.user, password=built.password, boot_timeout=240, command_timeout=30)
    lock = SessionLock(paths)
    lock.acquire("console tests")
    session = open_session(paths, resolve(options))
    try:
        console = Console(session.record.console_socket, settings)
        console.ready(fresh=True)
        yield Guest(console, session, settings, image, share)
        console.close()
    finally:
        stop(session.paths, session.record)
        lock.release()


def test_echo_hello(guest):
    result = guest.console.run("echo hello")
    assert (result.output, result.status, result.ok) == ("hello", 0, True)


def test_false_reports_status_1(guest):
    result = guest.console.run("false")
    assert (result.output, result.status, result.ok) == ("", 1, False)


def test_any_exit_status_and_stderr(guest):
    result = guest.console.run("sh -c 'echo to-stderr >&2; exit 42'")
    assert (result.output, result.status) == ("to-stderr", 42)


def test_200_lines_are_all_captured(guest):
    result = guest.console.run('for i in $(seq 1 200); do echo "line $i of 200"; done')
    assert result.output.split("\n") == [f"line {i} of 200" for i in range(1, 201)]
    assert result.status == 0


def test_output_without_final_newline(guest):
    assert guest.console.run("printf 'no newline'").output == "no newline"


def test_a_hanging_command_times_out_naming_it_and_is_interrupted(guest):
    with pytest.raises(ConsoleTimeout) as timeout:
        guest.console.run("sleep 600", timeout=3)
    message = str(timeout.value)
    assert message.startswith("`sleep 600` did not finish within 3 s; interrupted it with Ctrl-C; "
                              "the shell answers again")
    assert "last " in message and "console lines:" in message and "sleep 600" in message.split("\n", 1)[1]
    assert guest.console.run("echo still here").output == "still here"


def test_a_file_in_share_is_visible_through_virtio_9p(guest):
    result = guest.console.run("cat /scheme/9p.hostshare/from-host.txt")
    assert (result.output, result.status) == ("hello through virtio-9p", 0)
    (guest.share / "written-after-boot.txt").write_text("live\n")
    assert guest.console.run("cat /scheme/9p.hostshare/written-after-boot.txt").output == "live"


def test_snapshot_mode_keeps_the_image_byte_identical(guest):
    before = hash_file(guest.image)
    zeros_md5 = hashlib.md5(bytes(1 << 20)).hexdigest()
    write = guest.console.run("dd if=/dev/zero of=/dev/vda bs=4096 count=256 conv=fsync 2>/dev/null && "
                              "echo 3 > /proc/sys/vm/drop_caches")
    assert write.status == 0
    # The guest reads its write back from the (virtual) disk...
    assert guest.console.run("dd if=/dev/vda bs=4096 count=256 2>/dev/null | md5sum").output.split()[0] == zeros_md5
    # ...while the host's image is untouched: snapshot=on sends writes to a temporary overlay.
    assert hash_file(guest.image) == before and guest.image.read_bytes() == DISK_BYTES


def test_commands_are_single_lines(guest):
    with pytest.raises(CommandError, match="a console command is one line"):
        guest.console.run("echo a\necho b")


def test_a_new_connection_finds_the_shell_or_the_login_prompt(guest):
    """A later call attaches to a session in whatever state the last one left: at the shell, or logged out."""
    with Console(guest.session.record.console_socket, guest.settings) as second:
        guest.console.close()
        second.ready(fresh=False)
        assert second.run("echo at the shell").output == "at the shell"
        second.send("exit\r")
        second.expect("login:")  # logged out: the guest shows its login prompt again
    with Console(guest.session.record.console_socket, guest.settings) as third:
        third.ready(fresh=False)
        assert third.run("echo logged in again").output == "logged in again"
        third.send("exit\r")
        third.expect("login:")
    wrong = guest.settings.model_copy(update={"password": "wrong"})
    with Console(guest.session.record.console_socket, wrong) as refused:
        with pytest.raises(CommandError, match="logging in as root failed"):
            refused.ready(fresh=False)
    guest.console = Console(guest.session.record.console_socket, guest.settings)
    guest.console.ready(fresh=False)
    assert guest.console.run("echo back").output == "back"


def test_the_console_log_has_everything(guest):
    # Self-contained (pytest-xdist may run this module's tests in different workers): everything on the console,
    # from the login prompt on, is in the log.
    assert guest.console.run("for i in $(seq 1 3); do echo logged line $i; done").status == 0
    log = guest.session.record.console_log.read_text(errors="replace")
    assert "redox login:" in log and "logged line 3" in log

"""``doit boot``, ``doit test-in-redox`` and ``doit boot-stop`` through the real doit CLI (subprocesses).

The Redox kernel cannot be built here: the live tests boot the Redox-like test guest of tests/qemu_guest.py under
TCG through the commands' direct-kernel-boot options, all in one session (booted once, then reused, then stopped).
The golden command line is the real Redox image's, printed by --dry-run.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pexpect
import pytest

from tasks.qemu import SessionSettings, stop_session
from tasks.qemu.command import PFLASH_SIZE, QEMU
from tasks.qemu.session import SessionLock, SessionPaths, qemu_alive, read_record
from tasks.settings import PROJECT_DIR
from tests.qemu_guest import build_guest, type_at_the_prompt_then_detach
from tests.test_toolchain import needs_debian_rust
from tests.trees import make_tree, sparse_file

GOLDEN_REDOX = (
    "qemu-system-aarch64 -M virt,acpi=off -accel tcg -cpu cortex-a72 -smp 4 -m 2G"
    " -drive if=pflash,format=raw,readonly=on,file={tmp}/firmware/AAVMF_CODE.fd"
    " -drive if=pflash,format=raw,file={tmp}/build/run/default/vars.fd"
    " -drive file={tmp}/build/aarch64/desktop.img,format=raw,id=disk0,if=none,snapshot=on"
    " -device virtio-blk-pci,drive=disk0"
    " -fsdev local,id=host0,path={project}/share,security_model=none"
    " -device virtio-9p-pci,fsdev=host0,mount_tag=hostshare"
    " -netdev user,id=net0,hostfwd=tcp::2222-:22 -device virtio-net-pci,netdev=net0"
    " -nographic"
    " -chardev socket,id=console0,path={tmp}/build/run/default/console.sock,server=on,wait=off,"
    "logfile={tmp}/build/logs/qemu-default-console.log,logappend=on -serial chardev:console0"
    " -qmp unix:{tmp}/build/run/default/qmp.sock,server=on,wait=off -monitor none"
    " -d guest_errors -device virtio-rng-pci,id=rng0"
)


def gpt_head() -> bytes:
    # Protective MBR and GPT header signatures where a GPT disk has them (what the installer writes).
    head = bytearray(1024)
    head[510:512] = b"\x55\xaa"
    head[512:520] = b"EFI PART"
    return bytes(head)


def test_help_shows_the_commands_and_their_options(doit):
    listing = doit("help")
    for command in ("boot", "test-in-redox", "boot-stop"):
        assert f"doit {command} " in listing.stdout, listing.stdout
    help_text = doit("help", "test-in-redox")
    assert help_text.returncode == 0, help_text.stderr
    for option in ("--wait=SECONDS", "--isolated", "--user=NAME", "--password=TEXT", "--timeout=SECONDS",
                   "--snapshot", "--no-snapshot", "--memory=SIZE", "--cpus=N", "--gui", "--forward=HOST:GUEST",
                   "--firmware=PATH", "--image=PATH", "--no-build", "--qcow2", "--dry-run", "--kernel=PATH"):
        assert option in help_text.stdout, option
    assert '"COMMAND" ["COMMAND"…] [-- QEMU-ARGS…]' in help_text.stdout
    assert "--user" not in doit("help", "boot").stdout and "--wait=SECONDS" in doit("help", "boot-stop").stdout


def test_dry_run_prints_the_golden_command_line_of_the_redox_image(tmp_path_factory, doit):
    tmp = tmp_path_factory.mktemp("dry")  # short: socket paths longer than 100 bytes move to the temp dir
    sparse_file(tmp / "build" / "aarch64" / "desktop.img", 64 << 20, gpt_head())
    firmware = sparse_file(tmp / "firmware" / "AAVMF_CODE.fd", PFLASH_SIZE)
    common = [f"build={tmp / 'build'}", "--firmware", str(firmware), "--accel", "tcg"]
    qemu_args = ["--", "-d", "guest_errors", "-device", "virtio-rng-pci,id=rng0"]
    golden = GOLDEN_REDOX.format(tmp=tmp, project=PROJECT_DIR) + "\n"

    boot = doit("boot", "--dry-run", *common, "--forward", "2222:22", *qemu_args)
    assert (boot.returncode, boot.stderr, boot.stdout) == (0, "", golden)
    tests = doit("test-in-redox", "--dry-run", *common, "--forward=2222:22", "echo hello", *qemu_args)
    assert (tests.returncode, tests.stdout) == (0, golden)
    assert not (tmp / "build" / "run" / "default" / "session.json").exists()  # nothing was started

    other = doit("boot", "--dry-run", *common, "--no-snapshot", "--gui", "--memory=1G", "--cpus=1",
                 "--forward=udp:5353:53", "--forward=8080:80")
    assert other.returncode == 0, other.stderr
    assert f"file={tmp}/build/aarch64/desktop.img,format=raw,id=disk0,if=none,snapshot=off" in other.stdout
    assert " -smp 1 -m 1G " in other.stdout and "-device virtio-gpu-pci" in other.stdout
    assert "-nographic" not in other.stdout
    assert "-netdev user,id=net0,hostfwd=udp::5353-:53,hostfwd=tcp::8080-:80 " in other.stdout


def test_dry_run_prints_the_command_line_before_the_image_is_built(tmp_path, doit):
    firmware = sparse_file(tmp_path / "firmware" / "AAVMF_CODE.fd", PFLASH_SIZE)
    for extra, disk in (([], "desktop.img,format=raw"), (["--qcow2"], "desktop.qcow2,format=qcow2")):
        result = doit("boot", "--dry-run", f"build={tmp_path / 'b'}", "--firmware", str(firmware), *extra)
        assert result.returncode == 0, result.stderr
        assert f"file={tmp_path}/b/aarch64/{disk},id=disk0" in result.stdout
    assert not (tmp_path / "b" / "aarch64").exists()


def test_bad_options_are_one_line_errors(doit, tmp_path):
    for args, message in [(["--memory=lots", "true"], "ERROR: --memory: not a memory size: 'lots'"),
                          (["--forward=22", "true"], "ERROR: forward: not a port forward: '22'"),
                          (["--wait=soon", "true"], "ERROR: Error parsing parameter 'wait'"),
                          ([], "ERROR: name at least one command"),
                          (["echo", "--timeout=5"], "ERROR: '--timeout=5' is not a guest command: options go before")]:
        result = doit("test-in-redox", "--no-build", f"build={tmp_path}", *args)
        assert result.returncode == 3 and result.stderr.startswith(message), (args, result.stderr)


@needs_debian_rust
def test_boot_builds_the_image_of_the_config_first(doit, tmp_path):
    """A tree whose image cannot be built: boot runs the image task, which fails, and boots nothing."""
    tree = make_tree(tmp_path / "tree", {"broken": '[build]\ntemplate = "custom"\nscript = "exit 7"\n'},
                     {"small.toml": "[packages]\nbroken = {}\n"})
    project = [f"root={tree}", "config=config/small.toml", "rust=/usr", "backend=llvm", f"build={tmp_path / 'b'}"]
    built = doit("boot", *project)
    assert built.returncode not in (0, 3), built.stdout + built.stderr
    assert "ERROR: cook:broken: " in built.stdout  # (it has no relibc to link against, nor would its script run)
    assert "boot: not booting: `doit image` failed (--no-build boots the image as it is)" in built.stderr
    assert not (tmp_path / "b" / "run").exists()

    image = tmp_path / "b" / "aarch64" / "small.img"  # build/<arch>/<config name>.img
    unbuilt = doit("boot", "--no-build", *project)
    assert unbuilt.returncode == 3 and "TaskFailed" not in unbuilt.stdout
    assert unbuilt.stderr == f"ERROR: {image}: image: image not found (build it first)\n"


def test_an_image_built_for_this_machine_is_refused_at_once(doit, tmp_path):
    """The demo's kind of image (toolchain=host: host programs as placeholders) cannot boot: boot and
    test-in-redox say so before anything is built or started (issue 20, item 2); a dry run still prints."""
    tree = make_tree(tmp_path / "tree", {"hello": '[build]\ntemplate = "custom"\nscript = "true"\n'},
                     {"small.toml": "[packages]\nhello = {}\n"})
    project = [f"root={tree}", "config=config/small.toml", "toolchain=host", f"build={tmp_path / 'b'}"]
    for command in (["boot"], ["test-in-redox", "uname -a"]):
        refused = doit(*command, *project)
        assert refused.returncode == 3, refused.stdout + refused.stderr
        assert refused.stderr.startswith("ERROR: the image of small.toml is built for this machine") and \
            "it cannot boot" in refused.stderr, refused.stderr
    assert not (tmp_path / "b").exists()  # nothing built, no session
    assert doit("boot", "--dry-run", *project).returncode == 0


@dataclass
class Live:
    build: Path
    machine: list[str]  # the test guest's machine options, as boot and test-in-redox take them
    qemu_args: list[str]  # "--" and what follows: the same for every call, or the session would restart
    console: list[str]
    paths: SessionPaths

    def test_in_redox(self, doit, *commands: str, options: tuple[str, ...] = ()):
        return doit("test-in-redox", f"build={self.build}", *self.machine, *self.console, *options, *commands,
                    *self.qemu_args)

    def boot_args(self) -> list[str]:
        return ["boot", f"build={self.build}", *self.machine, *self.qemu_args]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    guest = build_guest()
    root = tmp_path_factory.mktemp("live")
    disk = sparse_file(root / "disk.img", 1 << 20)
    # "console=…" and "virtio-rng-pci,id=rng0" look like doit variables: they must still reach QEMU.
    machine = ["--kernel", str(guest.kernel), "--initrd", str(guest.initrd), "--append", guest.append,
               "--image", str(disk), "--memory=512M", "--cpus=2"]
    console = ["--user", guest.user, "--password", guest.password, "--timeout=30", "--boot-timeout=240"]
    build = root / "build"
    yield Live(build, machine, ["--", "-device", "virtio-rng-pci,id=rng0"], console, SessionPaths.of(build, "default"))
    stop_session(SessionSettings(build_dir=build, wait=120))  # whatever a failed test left running


@pytest.mark.slow
def test_in_redox_prints_each_commands_output_and_status(live, doit):
    result = live.test_in_redox(doit, "echo hello", "false", "echo key=value")
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert f"started session default: QEMU pid {read_record(live.paths).qemu_pid}" in out
    assert f"\n{QEMU} -M virt,acpi=off " in out and " -append 'console=ttyAMA0 quiet' " in out
    assert out.split(QEMU, 1)[1].split("\n", 1)[0].endswith(" -device virtio-rng-pci,id=rng0")
    assert "$ echo hello\nhello\nexit status 0" in out
    assert "$ false\nexit status 1" in out
    assert "$ echo key=value\nkey=value\nexit status 0" in out
    assert "2 of 3 commands succeeded" in out
    assert "hello" in (live.build / "logs" / "qemu-default-console.log").read_text(errors="replace")


@pytest.mark.slow
def test_a_second_invocation_reuses_the_session(live, doit):
    record = read_record(live.paths)
    started = time.monotonic()
    result = live.test_in_redox(doit, "echo second")
    assert result.returncode == 0, result.stdout + result.stderr
    assert time.monotonic() - started < 20  # no boot
    assert result.stdout.startswith(f"reusing session default: QEMU pid {record.qemu_pid}")
    assert "$ echo second\nsecond\nexit status 0 (" in result.stdout
    assert result.stdout.endswith("\n1 of 1 commands succeeded\n")
    assert read_record(live.paths).qemu_pid == record.qemu_pid


@pytest.mark.slow
def test_boot_attaches_this_terminal_to_the_session(live):
    doit = Path(sys.executable).parent / "doit"
    terminal = pexpect.spawn(str(doit), live.boot_args(), cwd=str(PROJECT_DIR), encoding="utf-8", timeout=60,
                             env={**os.environ, "PYTHONPATH": str(PROJECT_DIR)})
    try:
        terminal.expect(f"reusing session default: QEMU pid {read_record(live.paths).qemu_pid}")
        terminal.expect("Ctrl-] detaches")
        type_at_the_prompt_then_detach(terminal)
        terminal.expect(pexpect.EOF)
    finally:
        terminal.close(force=True)
    assert terminal.exitstatus == 0
    assert qemu_alive(read_record(live.paths))


@pytest.mark.slow
def test_a_session_in_use_is_left_alone(live, doit):
    record = read_record(live.paths)
    with SessionLock(live.paths).held("another user's test-in-redox"):
        busy = live.test_in_redox(doit, "echo intruder")
        patient = live.test_in_redox(doit, "echo patient", options=("--wait=1",))
        stop = doit("boot-stop", f"build={live.build}")
    in_use = f"session default in use by pid {os.getpid()} (another user's test-in-redox) since "
    assert busy.returncode == 3 and busy.stderr.startswith(f"ERROR: {live.paths.lock}: {in_use}")
    assert "wait for it (--wait) or start an isolated session" in busy.stderr and "intruder" not in busy.stdout
    assert patient.returncode == 3 and f"{in_use}" in patient.stdout and "; waiting" in patient.stdout
    assert "; timed out waiting" in patient.stderr and "patient" not in patient.stdout
    assert stop.returncode == 3 and in_use in stop.stderr
    assert qemu_alive(record)


@pytest.mark.slow
def test_boot_stop_stops_only_our_session(live, doit):
    record = read_record(live.paths)
    # A QEMU someone started by hand (paused, no devices): never ours to stop.
    stranger = subprocess.Popen([QEMU, "-M", "virt", "-m", "64M", "-nodefaults", "-display", "none", "-S",
                                 "-monitor", "none", "-serial", "none"], stdin=subprocess.DEVNULL)
    try:
        stopped = doit("boot-stop", f"build={live.build}")
        assert (stopped.returncode, stopped.stdout) == (
            0, "session default: QEMU quit (the guest's writes went to a snapshot: nothing to keep)\n")
        assert not qemu_alive(record) and not live.paths.record.exists()
        assert stranger.poll() is None
        again = doit("boot-stop", f"build={live.build}")
        assert (again.returncode, again.stdout) == (0, "no session default is running\n")
    finally:
        stranger.kill()
        stranger.wait()

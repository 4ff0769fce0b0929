"""doit commands that boot the image: ``doit boot``, ``doit test-in-redox "cmd" …``, ``doit boot-stop``.

They are doit command plugins (``[tool.doit.plugins.command]`` in pyproject.toml, which doit reads from the
directory it runs in), not tasks: a boot has no output to keep up to date and lasts as long as someone uses it.
They turn the command line into the typed settings of :mod:`tasks.qemu`, which does the work. The doit
command-line variables (``config=``, ``root=``, ``build=``, ``target=``) select the project as for any task, and
the image is brought up to date first by running the ``image`` (or ``qcow2``) task as ``doit image`` would.

Exit status: 0 when everything worked; 1 when a guest command failed or timed out; 3 when the commands could not
run at all (the session is in use, no image, no login prompt, a bad option); a failed image build's own status.
"""
from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from doit import doit_cmd
from doit.cmd_base import Command
from doit.cmd_run import Run
from doit.cmdparse import CmdParseError
from pydantic import ValidationError

from ..errors import BuildError
from ..layout import Layout
from ..qemu import (
    WAIT_FOREVER,
    ConsoleSettings,
    RunOptions,
    SessionSettings,
    print_command,
    run_interactive,
    stop_session,
    test_in_redox,
)
from ..variables import NAMES as VARIABLES
from .creators import settings

EXIT_NOT_RUN = 3  # doit's status for "could not start"
EXIT_INTERRUPTED = 130

OPT_IMAGE = {
    "section": "image", "name": "image", "long": "image", "type": Path, "default": None, "metavar": "PATH",
    "help": "boot this disk image (raw or qcow2) instead of the one the image task builds for the config; "
            "nothing is built",
}
OPT_QCOW2 = {
    "section": "image", "name": "qcow2", "long": "qcow2", "type": bool, "default": False,
    "help": "boot the qcow2 copy of the image (the qcow2 task brings it up to date) [default: %(default)s]",
}
OPT_BUILD = {
    "section": "image", "name": "build_image", "long": "build", "inverse": "no-build", "type": bool,
    "default": True,
    "help": "bring the image up to date first, as `doit image` (or `doit qcow2`) does [default: %(default)s]",
}
OPT_DRY_RUN = {
    "section": "image", "name": "dry_run", "long": "dry-run", "type": bool, "default": False,
    "help": "print the QEMU command line and exit: nothing is built or started [default: %(default)s]",
}

MACHINE_OPTIONS = (
    {"section": "machine", "name": "snapshot", "long": "snapshot", "inverse": "no-snapshot", "type": bool,
     "default": True,
     "help": "the guest's writes go to a temporary overlay, so the image file is never modified [default: "
             "%(default)s]"},
    {"section": "machine", "name": "memory", "long": "memory", "type": str, "default": "2G",
     "metavar": "SIZE", "help": "guest memory [default: %(default)s]"},
    {"section": "machine", "name": "cpus", "long": "cpus", "type": int, "default": 4, "metavar": "N",
     "help": "guest CPUs [default: %(default)s]"},
    {"section": "machine", "name": "acpi", "long": "acpi", "type": bool, "default": False,
     "help": "give the guest ACPI tables (the fork's kernel reads the DeviceTree: with ACPI on it hangs after "
             "kernel_entry, hence -M virt,acpi=off) [default: %(default)s]"},
    {"section": "machine", "name": "gui", "long": "gui", "type": bool, "default": False,
     "help": "a graphical display with keyboard and tablet, instead of the serial console only "
             "[default: %(default)s]"},
    {"section": "machine", "name": "forward", "long": "forward", "type": list, "default": [],
     "metavar": "HOST:GUEST",
     "help": "forward a host port to a guest port (tcp; udp:HOST:GUEST for udp); repeatable"},
    {"section": "machine", "name": "firmware", "long": "firmware", "type": Path, "default": None,
     "metavar": "PATH", "help": "UEFI firmware code [default: the firmware= setting, else searched: AAVMF, "
                                "qemu-efi-aarch64, Homebrew edk2]"},
    {"section": "machine", "name": "accel", "long": "accel", "type": str, "default": None, "metavar": "ACCEL",
     "choices": (("kvm", ""), ("hvf", ""), ("tcg", "")),
     "help": "acceleration [default: kvm or hvf when this host offers it, else tcg]"},
)

KERNEL_OPTIONS = (
    {"section": "direct kernel boot (advanced: test guests, no firmware)", "name": "kernel", "long": "kernel",
     "type": Path, "default": None, "metavar": "PATH", "help": "boot this kernel directly; nothing is built"},
    {"section": "direct kernel boot (advanced: test guests, no firmware)", "name": "initrd", "long": "initrd",
     "type": Path, "default": None, "metavar": "PATH", "help": "initial ramdisk for --kernel"},
    {"section": "direct kernel boot (advanced: test guests, no firmware)", "name": "append", "long": "append",
     "type": str, "default": None, "metavar": "CMDLINE", "help": "kernel command line for --kernel"},
)


def wait_seconds(text: str) -> float:
    """``--wait``'s value: seconds, or ``forever`` (what a bare ``--wait`` means)."""
    if text == "forever":
        return WAIT_FOREVER
    seconds = float(text)
    if seconds < 0:
        raise ValueError(f"not a number of seconds: {text}")
    return seconds


# getopt has no optional option values: a bare --wait is read as --wait=forever.
BARE_WAIT, WAIT_FOREVER_ARG = "--wait", "--wait=forever"
OPT_WAIT = {
    "section": "session", "name": "wait", "long": "wait", "type": wait_seconds, "default": 0.0,
    "metavar": "SECONDS",
    "help": "when someone else uses the session, wait for it: --wait as long as it takes, --wait=SECONDS at most "
            "that long [default: fail at once, naming who uses it]",
}
OPT_ISOLATED = {
    "section": "session", "name": "isolated", "long": "isolated", "type": bool, "default": False,
    "help": "boot a private session beside the shared one, stopped when this command ends [default: %(default)s]",
}

CONSOLE_OPTIONS = (
    {"section": "console", "name": "user", "long": "user", "type": str, "default": "root", "metavar": "NAME",
     "help": "log in as [default: %(default)s]"},
    {"section": "console", "name": "password", "long": "password", "type": str, "default": "password",
     "metavar": "TEXT", "help": "password of --user; --password= for none [default: %(default)s]"},
    {"section": "console", "name": "timeout", "long": "timeout", "type": float, "default": 60.0,
     "metavar": "SECONDS",
     "help": "longest a command may run; it is then interrupted with Ctrl-C [default: %(default)s]"},
    {"section": "console", "name": "boot_timeout", "long": "boot-timeout", "type": float, "default": 300.0,
     "metavar": "SECONDS", "help": "longest wait for the login prompt after a boot [default: %(default)s]"},
)


def typed_arguments(command: str, parsed: Sequence[str]) -> list[str]:
    """The arguments after ``command`` as they were typed.

    doit reads every argument shaped ``NAME=VALUE`` as a command-line variable wherever it stands, and drops it:
    ``doit test-in-redox "dd if=/dev/zero of=/tmp/x"`` would lose its command and ``-- -device virtio-rng-pci,
    rng=rng0`` half of it. So the arguments are read again from this process's command line: ``NAME=VALUE`` is a
    variable only when it names one of the project's variables (config, root, build, target) and stands before
    ``--``, and doit's variables are set again to match. When doit runs as a library (the arguments are not this
    process's), its reading stands.
    """
    typed = sys.argv[1:]
    for start in (index for index, arg in enumerate(typed) if arg == command):
        before, after = typed[:start], typed[start + 1:]
        if [arg for arg in after if not _variable_shaped(arg)] == list(parsed):
            break
    else:
        return list(parsed)
    variables = [arg for arg in before if _variable_shaped(arg)]
    arguments: list[str] = []
    for position, arg in enumerate(after):
        if arg == "--":
            arguments += after[position:]
            break
        if _variable_shaped(arg) and arg.split("=", 1)[0] in VARIABLES:
            variables.append(arg)
        else:
            arguments.append(arg)
    doit_cmd.reset_vars()
    for variable in variables:
        doit_cmd.set_var(*variable.split("=", 1))
    return arguments


def _variable_shaped(arg: str) -> bool:
    return arg[:1] != "-" and "=" in arg  # doit's own test (DoitMain.process_args)


def _split_qemu_args(arguments: list[str]) -> tuple[list[str], tuple[str, ...]]:
    if "--" not in arguments:
        return arguments, ()
    at = arguments.index("--")
    return arguments[:at], tuple(arguments[at + 1:])


def _option_error(error: Any) -> str:
    field = error["loc"][0] if error["loc"] else None
    message = error["msg"].removeprefix("Value error, ")
    return f"--{field}: {message}" if field else message


class SessionCommand(Command):
    """A command on a QEMU session: arguments after ``--`` are for QEMU; a user error ends it with one line and
    status 3, not a traceback."""

    def __init__(self, task_loader=None, cmds=None, **kwargs: Any):
        super().__init__(**kwargs)
        self.task_loader = task_loader
        self.cmds = cmds
        self.qemu_args: tuple[str, ...] = ()

    def parse_execute(self, in_args: list[str]) -> int:
        own, self.qemu_args = _split_qemu_args(typed_arguments(self.name, in_args))
        return super().parse_execute([WAIT_FOREVER_ARG if arg == BARE_WAIT else arg for arg in own])

    def execute(self, params: dict[str, Any], args: list[str]) -> int:
        try:
            return self.run(params, args)
        except BuildError as error:
            print(f"ERROR: {error}", file=sys.stderr)
            return EXIT_NOT_RUN
        except KeyboardInterrupt:
            print(f"\n{self.name}: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED

    def run(self, params: dict[str, Any], args: list[str]) -> int:
        raise NotImplementedError

    def session(self, params: dict[str, Any]) -> SessionSettings:
        # boot-stop has no --isolated: it stops the shared session.
        return SessionSettings(build_dir=settings().build, wait=params["wait"],
                               isolated=params.get("isolated", False))


class BootCommand(SessionCommand):
    """A command that boots the image: the machine options, QEMU arguments after ``--``, the image build."""

    cmd_options = (OPT_IMAGE, OPT_QCOW2, OPT_BUILD, OPT_DRY_RUN, *MACHINE_OPTIONS, OPT_WAIT, OPT_ISOLATED,
                   *KERNEL_OPTIONS)

    def run(self, params: dict[str, Any], args: list[str]) -> int:
        self.check_arguments(args)
        options = self.machine(params)
        if not params["dry_run"]:
            self.refuse_what_cannot_boot(params)
        if status := self.build_image(params):
            return status
        if params["dry_run"]:
            return print_command(options, self.session(params))
        return self.boot(options, params, args)

    def check_arguments(self, args: list[str]) -> None:
        raise NotImplementedError

    def boot(self, options: RunOptions, params: dict[str, Any], args: list[str]) -> int:
        raise NotImplementedError

    def machine(self, params: dict[str, Any]) -> RunOptions:
        """The run options: the project's image unless --image or --kernel says otherwise."""
        image = params["image"]
        if params["qcow2"] and (image is not None or params["kernel"] is not None):
            raise CmdParseError("--qcow2 boots the qcow2 copy of the built image: not with --image or --kernel")
        if image is None and params["kernel"] is None:
            layout = Layout(settings())
            image = layout.qcow2_image if params["qcow2"] else layout.disk_image
        try:
            return RunOptions(image=image, snapshot=params["snapshot"], acpi=params["acpi"], memory=params["memory"],
                              cpus=params["cpus"], gui=params["gui"], forwards=tuple(params["forward"]),
                              firmware=params["firmware"] or settings().firmware,
                              accel=params["accel"], kernel=params["kernel"], initrd=params["initrd"],
                              append=params["append"], share_dir=settings().root / "share",
                              extra_args=self.qemu_args)
        except ValidationError as invalid:
            raise CmdParseError("; ".join(_option_error(error) for error in invalid.errors())) from None

    @staticmethod
    def refuse_what_cannot_boot(params: dict[str, Any]) -> None:
        """The config's image built for this machine (``toolchain=host``, the demo) holds host programs as
        placeholders: no firmware gets further than its bootloader file, so it is refused at once, before anything
        is built or started."""
        chosen = settings()
        if params["image"] is None and params["kernel"] is None and chosen.host_only:
            raise BuildError(f"the image of {chosen.config_file.name} is built for this machine ({chosen.cook_target}"
                             ", toolchain=host): its programs are placeholders and it cannot boot; build it with the "
                             "pinned toolchain (or rust=/usr backend=llvm), or boot another with --image")

    def build_image(self, params: dict[str, Any]) -> int:
        """Run the ``image`` (or ``qcow2``) task as ``doit image`` would, unless something else boots."""
        if not params["build_image"] or params["dry_run"] or params["image"] is not None \
                or params["kernel"] is not None:
            return 0
        task = "qcow2" if params["qcow2"] else "image"
        status = Run(task_loader=self.task_loader, config=self.config, bin_name=self.bin_name, cmds=self.cmds,
                     opt_vals=self.opt_vals).parse_execute([task])
        if status:
            print(f"{self.name}: not booting: `{self.bin_name} {task}` failed (--no-build boots the image as it is)",
                  file=sys.stderr)
        return status


class Boot(BootCommand):
    name = "boot"
    doc_purpose = "boot the image in QEMU with this terminal on its serial console (Ctrl-] detaches)"
    doc_usage = "[OPTIONS] [config=… root=… build=… target=…] [-- QEMU-ARGS…]"
    doc_description = (
        "Brings the image of the selected config up to date (the image task, or qcow2 with --qcow2; --no-build "
        "skips that), then boots it in a background QEMU session, or reuses the running one when it boots the same "
        "image the same way, and connects this terminal to its console. The exact QEMU command line is printed and "
        "logged under build/logs/. Ctrl-] detaches and leaves the session running for later boot or test-in-redox "
        "calls; `doit boot-stop` stops it. A session someone else uses is never taken over: see --wait and "
        "--isolated. Arguments after -- are added to the QEMU command line.")

    def check_arguments(self, args: list[str]) -> None:
        if args:
            raise CmdParseError(f"{self.name} takes no arguments (got {args[0]!r}); QEMU arguments go after --")

    def boot(self, options: RunOptions, params: dict[str, Any], args: list[str]) -> int:
        return run_interactive(options, self.session(params))


class TestInRedox(BootCommand):
    name = "test-in-redox"
    doc_purpose = "run commands on the booted image's console: complete output and exit status of each"
    doc_usage = '[OPTIONS] [config=… root=… build=… target=…] "COMMAND" ["COMMAND"…] [-- QEMU-ARGS…]'
    doc_description = (
        "Boots the image as `doit boot` does (or reuses the running session), logs in on the serial console, then "
        "runs each command in turn and prints its complete output and exit status. A command that runs longer than "
        "--timeout is interrupted with Ctrl-C and ends the sequence. Exits 0 when every command exited 0, 1 when "
        "one failed or timed out, 3 when the commands could not run (session in use, no image, no login prompt). "
        "The session keeps running for the next call (`doit boot-stop` stops it) unless --isolated. The full "
        "console is logged under build/logs/; with --logs, or when a command failed, the guest's own logs "
        "(/scheme/logging/**) come to build/logs/guest/<time>/. Options go before the commands.")
    cmd_options = (*BootCommand.cmd_options, *CONSOLE_OPTIONS,
                   {"section": "console", "name": "logs", "long": "logs", "type": bool, "default": False,
                    "help": "bring the guest's logs (/scheme/logging/**) to build/logs/guest/<time>/ after the "
                            "commands; a failed command brings them anyway [default: %(default)s]"})

    def check_arguments(self, commands: list[str]) -> None:
        if not commands:
            raise CmdParseError(f'name at least one command: {self.bin_name} {self.name} "uname -a"')
        if misplaced := next((command for command in commands if command.startswith("-")), None):
            typed = BARE_WAIT if misplaced == WAIT_FOREVER_ARG else misplaced
            raise CmdParseError(f"{typed!r} is not a guest command: options go before the commands")

    def boot(self, options: RunOptions, params: dict[str, Any], commands: list[str]) -> int:
        console = ConsoleSettings(user=params["user"], password=params["password"] or None,
                                  command_timeout=params["timeout"], boot_timeout=params["boot_timeout"])
        return test_in_redox(commands, options, self.session(params), console, logs=params["logs"])


class BootStop(SessionCommand):
    name = "boot-stop"
    doc_purpose = "shut down the QEMU session boot and test-in-redox started (never another QEMU)"
    doc_usage = "[OPTIONS] [build=…]"
    doc_description = (
        "Stops the session recorded under build/run/: politely first (the guest's power button), then by its pid. "
        "A QEMU this tool did not start is never touched, and a session someone is using is left alone "
        "(see --wait).")
    cmd_options = (OPT_WAIT,)

    def run(self, params: dict[str, Any], args: list[str]) -> int:
        if args or self.qemu_args:
            raise CmdParseError(f"{self.name} takes no arguments (got {[*args, *self.qemu_args][0]!r})")
        return stop_session(self.session(params))

"""The guest's logs brought over the console (tasks/qemu/guestlogs.py): which files a listing names, and that no
name from the guest becomes a path outside the destination. The real guest's, through test-in-redox on the fork's
image, are checked in tests/test_real_tree.py."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tasks.qemu.console import CommandResult
from tasks.qemu.guestlogs import fetch_guest_logs, listed_files

# `ls -1R /scheme/logging` as the fork's uutils prints it (a directory is listed again as `DIR:`)
LISTING = """/scheme/logging:
bus
misc

/scheme/logging/bus:
pci

/scheme/logging/bus/pci:
pcid.ansi.log
pcid.log

/scheme/logging/misc:
acpi

/scheme/logging/misc/acpi:
acpid.log
"""


def test_a_listing_names_the_files_and_not_the_directories() -> None:
    assert listed_files(LISTING) == ["bus/pci/pcid.ansi.log", "bus/pci/pcid.log", "misc/acpi/acpid.log"]


def test_names_from_the_guest_never_climb_out() -> None:
    hostile = LISTING + "\n/scheme/logging/../../../tmp:\nowned\n\n/scheme/logging/misc/acpi:\n..\n"
    assert listed_files(hostile) == ["bus/pci/pcid.ansi.log", "bus/pci/pcid.log", "misc/acpi/acpid.log"]


@dataclass
class FakeGuest:
    """The console's side of it: `ls` answers the listing, `cat` each file (one unreadable)."""

    def run(self, command: str) -> CommandResult:
        if command.startswith("ls "):
            return CommandResult(command, LISTING, 0, 0.1)
        if command.endswith("acpid.log"):
            return CommandResult(command, "cat: Permission denied\n", 1, 0.1)
        return CommandResult(command, f"log of {command.split('/')[-1]}\n", 0, 0.1)


def test_each_file_lands_under_its_own_path_private_to_the_owner(tmp_path: Path) -> None:
    where, problems = fetch_guest_logs(FakeGuest(), tmp_path / "guest")
    assert where.parent == tmp_path / "guest"
    assert (where / "bus/pci/pcid.log").read_text() == "log of pcid.log\n"
    assert (where / "bus/pci/pcid.log").stat().st_mode & 0o777 == 0o600
    assert problems == ["misc/acpi/acpid.log: exit status 1"] and not (where / "misc/acpi/acpid.log").exists()

"""Boot the image in QEMU and drive its console; knows nothing of doit.

- :mod:`.command`: typed run options → the exact QEMU command line (acceleration, firmware, disk format looked up);
- :mod:`.session`: background QEMU sessions under ``build/run/<name>/``, reused, locked, stopped politely;
- :mod:`.console`: log in and run commands over the serial console socket, with markers, exit statuses, Ctrl-C;
- :mod:`.cli`: ``run_interactive``, ``test_in_redox``, ``stop_session``, ``print_command`` — what the doit commands
  (``tasks/stages/boot.py``) call.
"""
from .cli import WAIT_FOREVER, SessionSettings, print_command, run_interactive, stop_session, test_in_redox
from .command import Accel, PortForward, RunOptions
from .console import ConsoleSettings

__all__ = ["WAIT_FOREVER", "Accel", "ConsoleSettings", "PortForward", "RunOptions", "SessionSettings",
           "print_command", "run_interactive", "stop_session", "test_in_redox"]

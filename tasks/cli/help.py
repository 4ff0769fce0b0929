"""``doit help``: doit's own help, and the variables every command takes (from :data:`tasks.variables.SETTINGS`)."""
from __future__ import annotations

from doit.cmd_help import Help as DoitHelp

from ..variables import help_lines


class Help(DoitHelp):
    def print_usage(self, cmds):
        super().print_usage(cmds)
        print("")
        print(f"Variables (NAME=VALUE anywhere on the command line, e.g. {self.bin_name} image "
              "config=config/aarch64/server.toml)")
        for line in help_lines():
            print(line)

"""``doit help``: the commands this build uses, then the stages and the variables every command takes (from
:data:`tasks.stages.STAGES` and :data:`tasks.variables.SETTINGS`); ``doit help STAGE`` says what one stage does,
what it depends on and reads, without loading the project."""
from __future__ import annotations

import inspect
import re
import textwrap

from doit.cmd_help import Help as DoitHelp

from ..stages import STAGES, RecipeStage
from ..variables import help_lines

EXAMPLE = "config=config/aarch64/desktop.toml"


NOT_USED = "(not used here)"  # doit's commands for its own database: they exist, to say so, but are not listed


class Help(DoitHelp):
    def print_usage(self, cmds):
        print(f"{self.bin_name}: builds the pure-Rust aarch64 Redox image from recipes and an installer config "
              "(README.md; docs/)")
        print("")
        print("Commands")
        for name in sorted(cmds):
            if not cmds[name].doc_purpose.startswith(NOT_USED):
                print(f"  {self.bin_name} {name:<16}  {cmds[name].doc_purpose}")
        print(f"  {self.bin_name} {'help COMMAND':<16}  a command's options; `{self.bin_name} help TASK`: a task's")
        print("")
        print("Stages, in pipeline order (`doit STAGE` builds one and what it needs; `doit help STAGE` says more)")
        width = max(len(stage.name) for stage in STAGES)
        for stage in STAGES:
            print(f"  {stage.name:<{width}}  {stage.summary()}")
        print("")
        print(f"Variables (NAME=VALUE anywhere on the command line, e.g. {self.bin_name} image {EXAMPLE})")
        for line in help_lines():
            print(line)

    def execute(self, params, args):
        stage = next((stage for stage in STAGES if args == [stage.name]), None)
        if stage is None:
            return super().execute(params, args)
        print(stage_help(stage))
        return 0


def stage_help(stage) -> str:
    """A stage's summary, its home's description (the module's docstring), and what it reads."""
    per_recipe = issubclass(stage, RecipeStage)
    lines = [f"{stage.name}  {stage.summary()}", ""]
    module = inspect.getmodule(stage)
    if module is not None and module.__doc__:
        text = re.sub(r"``(.+?)``", r"`\1`", inspect.cleandoc(module.__doc__))  # the docstring's reST, as typed
        lines += [textwrap.fill(paragraph, 100) for paragraph in text.split("\n\n")]
        lines.append("")
    if per_recipe:
        lines.append(f"One task per recipe of the config: {stage.name}:<recipe> (`doit list --all` names them); "
                     f"`doit {stage.name}` runs them all.")
    if stage.env:
        lines.append(f"Environment variables its output depends on: {', '.join(stage.env)}.")
    lines.append(f"`doit explain {stage.name}{':<recipe>' if per_recipe else ''}` says why it would run; "
                 "`doit help` lists the variables.")
    return "\n".join(lines)

"""What ``dodo.py`` exports: doit's configuration and a task creator for every stage."""
from ..variables import build_dir, root_dir
from . import interrupt
from .creators import task_creators
from .loader import doit_config, variables

interrupt.install()
DOIT_CONFIG = doit_config(build_dir(variables()), root_dir(variables()))
CREATORS = task_creators()

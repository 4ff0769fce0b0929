"""Every stage's task creators and doit's configuration, for ``dodo.py`` to re-export."""
from ..variables import build_dir
from .explain import task_explain
from .loader import doit_config, variables
from .pipeline import task_base, task_host_tools, task_image, task_initfs, task_qcow2, task_relibc, task_toolchain
from .recipes import task_cook, task_fetch, task_pkg

DOIT_CONFIG = doit_config(build_dir(variables()))

__all__ = ["DOIT_CONFIG", "task_base", "task_cook", "task_explain", "task_fetch", "task_host_tools", "task_image",
           "task_initfs", "task_pkg", "task_qcow2", "task_relibc", "task_toolchain"]

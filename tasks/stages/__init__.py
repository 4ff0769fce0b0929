"""doit task declarations, one module per stage. ``dodo.py`` re-exports everything here."""
from .common import doit_config, settings
from .explain import task_explain
from .pipeline import task_base, task_host_tools, task_image, task_initfs, task_qcow2, task_relibc, task_toolchain
from .recipes import task_cook, task_fetch, task_pkg

DOIT_CONFIG = doit_config(settings())

__all__ = ["DOIT_CONFIG", "task_toolchain", "task_relibc", "task_base", "task_initfs", "task_image", "task_qcow2",
           "task_host_tools", "task_fetch", "task_cook", "task_pkg", "task_explain"]

"""Build a pure-Rust aarch64 Redox OS: `doit list` shows the stages, README.md the rest."""
from tasks.stages.all import *  # noqa: F403  (DOIT_CONFIG and the task_* creators)

"""Build a pure-Rust aarch64 Redox OS: `doit list` shows the stages, README.md the rest."""
from tasks.cli.all import CREATORS, DOIT_CONFIG  # noqa: F401  (doit reads DOIT_CONFIG and the task_* creators)

globals().update(CREATORS)

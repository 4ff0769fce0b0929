"""Build a pure-Rust aarch64 Redox OS: `doit list` shows the stages, README.md the rest."""
from tasks.stages.all import *

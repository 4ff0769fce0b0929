"""The content-hashed engine: source-tree hashes, task signatures and records, atomic stamped outputs, the lock,
and the evidence that lets a no-op skip all of it.

Nothing here knows doit. :class:`Engine` gathers the pieces for one build directory (all state under
``<build>/engine/``); the task graph asks it whether a task is current, why not, and publishes what a task built.

Names are imported on first use: the no-op check (:mod:`.evidence`) lives in this package and must not pay for
what only a build needs (pydantic and jinja2 for stamps).
"""
from __future__ import annotations

import importlib

TYPE_CHECKING = False  # typing's, without importing typing: the no-op imports this package

_HOMES = {
    "Engine": "core", "BuildLock": "lock",
    "Publisher": "publish", "Staging": "publish", "output_digest": "publish", "verify_stamp": "publish",
    "Stamp": "stamp", "StampContext": "stamp", "read_stamp": "stamp", "render_stamp": "stamp", "stamp_path": "stamp",
    "Change": "state", "Record": "state", "Signature": "state", "StateStore": "state",
    "env_components": "state", "format_explanation": "state",
    "TreeHash": "treehash", "TreeHasher": "treehash",
}
__all__ = [
    "BuildLock",
    "Change",
    "Engine",
    "Publisher",
    "Record",
    "Signature",
    "Staging",
    "Stamp",
    "StampContext",
    "StateStore",
    "TreeHash",
    "TreeHasher",
    "env_components",
    "format_explanation",
    "output_digest",
    "read_stamp",
    "render_stamp",
    "stamp_path",
    "verify_stamp",
]

if TYPE_CHECKING:
    from .core import Engine
    from .lock import BuildLock
    from .publish import Publisher, Staging, output_digest, verify_stamp
    from .stamp import Stamp, StampContext, read_stamp, render_stamp, stamp_path
    from .state import Change, Record, Signature, StateStore, env_components, format_explanation
    from .treehash import TreeHash, TreeHasher


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = globals()[name] = getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
    return value

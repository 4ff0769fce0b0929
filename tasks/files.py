"""Atomic file writes: ``<path>.partial`` then ``os.replace``, so a failure leaves the previous file untouched."""
from __future__ import annotations

import os
from pathlib import Path


def write_text_if_changed(path: Path, text: str, mode: int | None = None) -> bool:
    """Write ``text`` to ``path`` unless it already holds exactly that (its mtime then stays). True if written."""
    if path.is_file() and path.read_text() == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    if mode is not None:
        partial.chmod(mode)
    os.replace(partial, path)
    return True

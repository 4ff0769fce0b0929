"""Atomic outputs: write ``<path>.partial``, then rename over ``<path>``; a failure leaves ``<path>`` untouched."""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


def partial_path(path: Path) -> Path:
    return path.with_name(path.name + ".partial")


@contextmanager
def atomic_output(path: Path, mode: int = 0o644) -> Iterator[BinaryIO]:
    """A seekable binary stream that becomes ``path`` (with permissions ``mode``) when the block succeeds."""
    partial = partial_path(path)
    descriptor = os.open(partial, os.O_RDWR | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(descriptor, "w+b") as stream:
            yield stream
        os.chmod(partial, mode)  # os.open's mode is filtered by the umask
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def write_atomically(path: Path, data: bytes | str, mode: int = 0o644) -> None:
    with atomic_output(path, mode) as stream:
        stream.write(data.encode() if isinstance(data, str) else data)

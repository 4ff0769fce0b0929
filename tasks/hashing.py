"""The one hasher: xxh3-128, hex encoded.

Content signatures are not security boundaries (pkgar uses BLAKE3 because its format says so), so the
fastest well-kept 128-bit hash serves every signature, stat-cache entry and output hash; :func:`blake3_file` serves
where one is.
"""
from __future__ import annotations

import os
from pathlib import PurePath

import xxhash

TYPE_CHECKING = False  # typing's, without importing typing: the no-op imports this module
if TYPE_CHECKING:
    from typing import Any

CHUNK = 1 << 20


def new_hasher() -> "xxhash.xxh3_128":
    return xxhash.xxh3_128()


def hash_bytes(data: bytes) -> str:
    return xxhash.xxh3_128_hexdigest(data)


def hash_text(text: str) -> str:
    return hash_bytes(text.encode())


def hash_file(path: str | os.PathLike[str]) -> str:
    hasher = new_hasher()
    with open(path, "rb") as stream:
        while chunk := stream.read(CHUNK):
            hasher.update(chunk)
    return hasher.hexdigest()


def blake3_file(path: str | os.PathLike[str]) -> str:
    """A file's BLAKE3, where a format or a trust boundary asks for a cryptographic hash (a recipe's tarball, a
    blob of the shared cache): read through a memory map, on every core."""
    import blake3  # here: the no-op imports this module and never needs it
    return blake3.blake3(max_threads=blake3.blake3.AUTO).update_mmap(path).hexdigest()


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace: equal values give equal text, whatever their key order."""
    import json  # here: the no-op imports this module and never calls this
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=_json_default)


def hash_value(value: Any) -> str:
    """Hash of a JSON-able value (dicts, lists, strings, numbers, paths) independent of key order."""
    return hash_text(canonical_json(value))


def _json_default(value: Any) -> Any:
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"cannot hash value of type {type(value).__name__}")

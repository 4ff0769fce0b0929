"""Reproducible images: what the installer leaves to chance is fixed by the build's inputs (as mkosi's ``Seed=``).

The pinned installer gives the disk and each GPT partition a random GUID and RedoxFS a random UUID, and takes every
time from the clock. After it ran, this project's ``redox-image reproduce`` (``tools/redox-image/src/reproduce.rs``)
writes the image again with the GUIDs and the UUID derived here from a seed (the image's input signature), and every
time in RedoxFS and in the EFI system partition set to the tree's source date (``SOURCE_DATE_EPOCH``, else its last
commit; :mod:`tasks.revision`). The users' password hashes in ``/etc/shadow`` are salted from the seed too. Two full
builds of the same inputs (the package signing key among them) are then the same bytes.
"""
from __future__ import annotations

import os
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from ..atomic import remove_path
from ..errors import CommandError
from ..process import run
from . import gpt
from .files import ImageFiles, Put, tool_reason

# The namespace of this project's derived identities (uuid5 of the seed and what is named).
NAMESPACE = uuid.UUID("5b0f7a43-3c1e-4f55-9a4e-7a2c1d0e9b61")


@dataclass(frozen=True)
class Identities:
    """The GUIDs and the UUID an image built from ``seed`` gets."""

    disk: uuid.UUID
    filesystem: uuid.UUID
    partitions: tuple[uuid.UUID, ...]  # in the order of the partition entries

    @classmethod
    def of(cls, seed: str, partition_count: int) -> Identities:
        def derive(what: str) -> uuid.UUID:
            return uuid.uuid5(NAMESPACE, f"{seed}/{what}")
        return cls(derive("disk"), derive("redoxfs"),
                   tuple(derive(f"partition/{number}") for number in range(1, partition_count + 1)))


def make_reproducible(image: Path, tool_dir: Path, seed: str, source_date: int,
                      passwords: tuple[str, ...] = ()) -> None:
    """Rewrite ``image`` (the installer's, not yet in place) with the identities of ``seed``, every time
    ``source_date`` and the ``passwords``' hashes salted from the seed; a failure leaves it as the installer wrote
    it."""
    table = gpt.read_table(image)
    with tempfile.TemporaryDirectory(prefix="shadow-") as scratch:
        files = ImageFiles(image, tool_dir)
        if operations := shadow_operations(files, seed, passwords, Path(scratch)):
            files.apply_to(image, operations)
    identities = Identities.of(seed, len(table.partitions))
    output = image.with_name(image.name + ".reproducible")
    remove_path(output)
    argv = [tool_dir / "redox-image", "reproduce", image, output, str(source_date), str(identities.disk),
            str(identities.filesystem), *map(str, identities.partitions)]
    try:
        run(argv, capture=True)
        os.replace(output, image)
    except CommandError as error:
        raise CommandError(f"cannot make the image reproducible: {tool_reason(error)}", path=image) from None
    finally:
        remove_path(output)


def shadow_operations(files: ImageFiles, seed: str, passwords: tuple[str, ...], scratch: Path) -> list[Put]:
    """``/etc/shadow`` again with each password hash salted from the seed instead of at random (the installer's
    redox_users draws the salt), same Argon2 parameters; an entry is rehashed only with the config's password it
    verifies against, so no entry ever changes its password."""
    shadow = next((entry for entry in files.ls("/etc") if entry.path == "shadow"), None) if passwords else None
    if shadow is None:
        return []
    lines = files.read("/etc/shadow").decode().split("\n")
    for index, line in enumerate(lines):
        name, _, hashed = line.partition(";")
        password = next((word for word in passwords if hashed.startswith("$argon2") and _verifies(hashed, word)),
                        None)
        if password is not None:
            lines[index] = f"{name};{_salted_hash(hashed, password, f'{seed}/shadow/{name}')}"
    new = scratch / "shadow"
    new.write_text("\n".join(lines))
    return [Put(new, "/etc/shadow", shadow.mode, shadow.uid, shadow.gid)]


def _verifies(hashed: str, password: str) -> bool:
    import argon2
    try:
        return argon2.PasswordHasher().verify(hashed, password)
    except argon2.exceptions.VerificationError:
        return False


def _salted_hash(hashed: str, password: str, salt_from: str) -> str:
    """``password`` hashed as ``hashed`` was (type, version, costs, hash length), with a salt derived from
    ``salt_from``: 16 hex digits, as redox_users writes a random u64 (it drops leading zeros, so the installer's own
    salts are 16 digits or fewer: the length must not be taken from them, or it would vary from build to build)."""
    import argon2
    from argon2.low_level import hash_secret
    parameters = argon2.extract_parameters(hashed)
    salt = uuid.uuid5(NAMESPACE, salt_from).hex[:16].upper()
    return hash_secret(password.encode(), salt.encode(), time_cost=parameters.time_cost,
                       memory_cost=parameters.memory_cost, parallelism=parameters.parallelism,
                       hash_len=parameters.hash_len, type=parameters.type, version=parameters.version).decode()

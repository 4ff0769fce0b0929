"""One cache entry: a manifest naming a task's outputs by content, signed; each output packed as one blob.

In the store::

    entries/<task>/<signature digest>.json   {"manifest": {...}, "key": <public key, hex>, "signature": <hex>}
    blobs/<blake3 of the blob>               one output: a gzipped tar of it (a file, a symlink or a tree)

The manifest says which task, its signature (digest and components), its output hash, and for each output its path
relative to the build directory, its content digest (as the engine records it) and its blob. The blob is named by
its BLAKE3 hash, which the signed manifest carries: a reader that accepts the signature gets exactly the bytes the
writer packed, and checks the unpacked output's digest too, before anything is put in place.
A writer puts the blobs first and the manifest last, so a manifest never names a blob that is not there yet; two
writers of one entry write the same blobs and each a whole manifest, and either manifest is valid.
"""
from __future__ import annotations

import json
import os
import tarfile
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, ValidationError

from ..hashing import blake3_file, canonical_json

if TYPE_CHECKING:
    from ..formats.pkgkeys import KeyPair

FORMAT = 1
MEMBER = "output"  # the one top-level name inside a blob


class Refused(Exception):
    """An entry that must not be used (unsigned, wrongly signed, tampered, truncated): the message says why."""


class Output(BaseModel):
    model_config = ConfigDict(frozen=True)

    path: str  # relative to the build directory
    digest: str  # as the engine records it (tasks.engine.publish.output_digest)
    blob: str  # BLAKE3 of the packed blob
    size: int


class Manifest(BaseModel):
    model_config = ConfigDict(frozen=True)

    format: int = FORMAT
    task: str
    signature: str
    components: dict[str, str]
    output_hash: str
    outputs: list[Output]

    def text(self) -> bytes:
        return canonical_json(self.model_dump(mode="json")).encode()


def entry_name(task: str, signature: str) -> str:
    return f"entries/{task.replace(':', '/')}/{signature}.json"


def blob_name(blob: str) -> str:
    return f"blobs/{blob}"


def signed(manifest: Manifest, key: KeyPair) -> bytes:
    text = manifest.text()
    return json.dumps({"manifest": json.loads(text), "key": key.public_key.hex(),
                       "signature": key.sign(text).hex()}, sort_keys=True).encode()


def accepted(data: bytes, trusted: set[bytes], task: str, signature: str) -> Manifest:
    """The manifest of an entry's bytes, when one of the ``trusted`` public keys signed it for this task and
    signature; :class:`Refused` says why not."""
    import nacl.exceptions
    import nacl.signing
    try:
        document = json.loads(data)
        manifest = Manifest.model_validate(document["manifest"])
        key, proof = bytes.fromhex(document["key"]), bytes.fromhex(document["signature"])
    except (ValueError, KeyError, TypeError, ValidationError) as error:
        raise Refused(f"not a signed manifest ({type(error).__name__})") from None
    if key not in trusted:
        raise Refused(f"signed by key {key.hex()[:16]}…, which the tree does not pin")
    try:
        nacl.signing.VerifyKey(key).verify(manifest.text(), proof)
    except (nacl.exceptions.BadSignatureError, ValueError):
        raise Refused("its signature does not match its manifest (tampered)") from None
    if manifest.format != FORMAT or manifest.task != task or manifest.signature != signature:
        raise Refused(f"signed for {manifest.task} {manifest.signature[:12]}…, not this task and signature")
    return manifest


def pack(output: Path, blob: Path) -> tuple[str, int]:
    """Pack one output (file, symlink or tree) into ``blob``; its BLAKE3 and size."""
    with tarfile.open(blob, "w:gz", compresslevel=1, format=tarfile.PAX_FORMAT) as archive:
        archive.add(output, arcname=MEMBER, recursive=True)
    return blake3_file(blob), blob.stat().st_size


def unpack(blob: Path, into: Path) -> Path:
    """Unpack a blob into the empty directory ``into``; the output's path there. Nothing is written outside
    ``into`` (tarfile's ``tar`` filter: no absolute names, no ``..``, no writing through a link; and no hard link,
    device or FIFO, which no output holds), but each member keeps its full mode, which an output's digest counts."""
    def keep_mode(member: tarfile.TarInfo, destination: str) -> tarfile.TarInfo:
        if not (member.isreg() or member.isdir() or member.issym()):
            raise Refused(f"a blob holds {member.name}, neither a file, a directory nor a symlink")
        checked = tarfile.tar_filter(member, destination)
        return checked.replace(mode=member.mode, deep=False) if member.isreg() or member.isdir() else checked
    try:
        with tarfile.open(blob, "r:gz") as archive:
            if any(name.split("/", 1)[0] != MEMBER for name in archive.getnames()):
                raise Refused(f"a blob holds more than its output ({MEMBER}/…)")
            archive.extractall(into, filter=keep_mode)
    except (tarfile.TarError, OSError, EOFError) as error:
        raise Refused(f"a blob cannot be unpacked: {error}") from None
    if not os.path.lexists(into / MEMBER):
        raise Refused("a blob holds no output")
    return into / MEMBER

"""pkgar key files in the upstream TOML format (``pkgar-keys``, spec §2.6).

A public key file holds ``pkey`` (32 bytes, hex). A secret key file holds ``salt`` (32 bytes), ``nonce`` (24 bytes)
and ``skey``: either the plaintext libsodium secret key ``seed ‖ public key`` (64 bytes) or that key sealed with
``crypto_secretbox_easy`` (80 bytes) under a key derived from a passphrase with Argon2id. The build writes
plaintext keys (as upstream's cookbook does); encrypted keys are read when a passphrase is given.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import tomli_w

from ..atomic import write_atomically
from ..errors import FormatError, InputError
from ..hashing import hash_file

if TYPE_CHECKING:
    import nacl.signing

# libsodium (PyNaCl, argon2) is imported where keys are made, read or used: a build that only hashes the public key
# for its signatures does not load it.

PUBLIC_KEY_FILE = "id_ed25519.pub.toml"
SECRET_KEY_FILE = "id_ed25519.toml"

PUBLIC_KEY_SIZE = 32
SEED_SIZE = 32
SECRET_KEY_SIZE = SEED_SIZE + PUBLIC_KEY_SIZE
SECRETBOX_MAC_SIZE = 16  # crypto_secretbox_MACBYTES (xsalsa20poly1305), as nacl.secret.SecretBox.MACBYTES
SEALED_SECRET_KEY_SIZE = SECRETBOX_MAC_SIZE + SECRET_KEY_SIZE
SALT_SIZE = 32
NONCE_SIZE = 24  # crypto_secretbox_NONCEBYTES, as nacl.secret.SecretBox.NONCE_SIZE
SECRETBOX_KEY_SIZE = 32  # crypto_secretbox_KEYBYTES, as nacl.secret.SecretBox.KEY_SIZE

# libsodium's crypto_pwhash "interactive" limits as pkgar-keys passes them to dryoc: Argon2id v1.3,
# 2 passes over 64 MiB, one lane. libsodium itself only takes 16-byte salts, hence raw Argon2.
ARGON2_TIME_COST = 2
ARGON2_MEMORY_KIB = 64 * 1024
ARGON2_PARALLELISM = 1
ARGON2_VERSION = 0x13


@dataclass(frozen=True)
class KeyPair:
    """An Ed25519 key pair, kept as its 32-byte seed (everything else derives from it)."""

    seed: bytes

    @property
    def signing_key(self) -> nacl.signing.SigningKey:
        import nacl.signing
        return nacl.signing.SigningKey(self.seed)

    @property
    def public_key(self) -> bytes:
        return bytes(self.signing_key.verify_key)

    @property
    def secret_key(self) -> bytes:
        """The 64-byte libsodium form stored in key files: seed ‖ public key."""
        return self.seed + self.public_key

    def sign(self, message: bytes) -> bytes:
        return self.signing_key.sign(message).signature


def generate() -> KeyPair:
    import nacl.utils
    return KeyPair(nacl.utils.random(SEED_SIZE))


def load_public_key(path: Path) -> bytes:
    return _hex_field(_load_toml(path), "pkey", PUBLIC_KEY_SIZE, path)


def load_secret_key(path: Path, passphrase: str | None = None) -> KeyPair:
    """The key pair of a secret key file; an encrypted one needs ``passphrase``."""
    document = _load_toml(path)
    salt = _hex_field(document, "salt", SALT_SIZE, path)
    nonce = _hex_field(document, "nonce", NONCE_SIZE, path)
    stored = _hex_field(document, "skey", (SECRET_KEY_SIZE, SEALED_SECRET_KEY_SIZE), path)
    if len(stored) == SEALED_SECRET_KEY_SIZE:
        stored = _open_sealed(stored, salt, nonce, passphrase, path)
    pair = KeyPair(stored[:SEED_SIZE])
    if pair.secret_key != stored:
        raise FormatError("the public half of skey does not belong to its seed", path=path, key="skey")
    return pair


def write_key_files(pair: KeyPair, public_path: Path, secret_path: Path) -> None:
    """Write both files atomically, the secret one first and private (a crash never leaves a lone public key)."""
    import nacl.utils
    secret = {"salt": nacl.utils.random(SALT_SIZE).hex(), "nonce": nacl.utils.random(NONCE_SIZE).hex(),
              "skey": pair.secret_key.hex()}
    write_atomically(secret_path, tomli_w.dumps(secret), mode=0o600)
    _write_public_key(pair, public_path)


def ensure_keys(build_dir: Path) -> KeyPair:
    """The project key pair under ``build_dir``, generated (plaintext, as upstream's cookbook does) when missing."""
    public_path, secret_path = build_dir / PUBLIC_KEY_FILE, build_dir / SECRET_KEY_FILE
    if secret_path.exists():
        pair = load_secret_key(secret_path)
        if not public_path.exists():
            _write_public_key(pair, public_path)
        elif load_public_key(public_path) != pair.public_key:
            raise InputError(f"does not hold the public key of {secret_path.name}; delete both files to start "
                             "over (packages signed with the old key will no longer verify)", path=public_path)
        return pair
    if public_path.exists():
        raise InputError(f"exists but its secret key {secret_path.name} is missing, so nothing can be signed for "
                         "it; restore the secret key, or delete the public key to generate a new pair",
                         path=public_path)
    build_dir.mkdir(parents=True, exist_ok=True)
    pair = generate()
    write_key_files(pair, public_path, secret_path)
    return pair


def public_key_digest(build_dir: Path) -> str:
    """The hash of the public key under ``build_dir`` (what signatures of signed packages include), the pair made
    first when there is none: made by the first package's action instead, it would change between one build's
    signatures and the next."""
    public = build_dir / PUBLIC_KEY_FILE
    if not public.exists():
        ensure_keys(build_dir)
    return hash_file(public)


def _write_public_key(pair: KeyPair, path: Path) -> None:
    write_atomically(path, tomli_w.dumps({"pkey": pair.public_key.hex()}), mode=0o644)


def _open_sealed(sealed: bytes, salt: bytes, nonce: bytes, passphrase: str | None, path: Path) -> bytes:
    import nacl.exceptions
    import nacl.secret
    from argon2.low_level import Type, hash_secret_raw
    if not passphrase:
        raise FormatError("the secret key is encrypted; give its passphrase, or use a plaintext key "
                          "(`pkgar-keys gen --plaintext`)", path=path, key="skey")
    box_key = hash_secret_raw(passphrase.encode(), salt, time_cost=ARGON2_TIME_COST,
                              memory_cost=ARGON2_MEMORY_KIB, parallelism=ARGON2_PARALLELISM,
                              hash_len=SECRETBOX_KEY_SIZE, type=Type.ID, version=ARGON2_VERSION)
    try:
        return nacl.secret.SecretBox(box_key).decrypt(sealed, nonce)
    except nacl.exceptions.CryptoError:
        raise FormatError("wrong passphrase for the encrypted secret key", path=path, key="skey") from None


def _load_toml(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise InputError("key file not found", path=path) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise FormatError(f"not a TOML key file: {error}", path=path) from None


def _hex_field(document: dict, name: str, sizes: int | tuple[int, ...], path: Path) -> bytes:
    sizes = (sizes,) if isinstance(sizes, int) else sizes
    value = document.get(name)
    if not isinstance(value, str):
        raise FormatError("missing (a hex string is expected)", path=path, key=name)
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise FormatError("not a hex string", path=path, key=name) from None
    if len(raw) not in sizes:
        expected = " or ".join(str(size) for size in sizes)
        raise FormatError(f"holds {len(raw)} bytes, expected {expected}", path=path, key=name)
    return raw


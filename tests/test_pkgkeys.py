"""pkgar key files: our reader and writer, the project key under build/, and the real ``pkgar-keys``."""
from __future__ import annotations

import stat
import tomllib
from pathlib import Path

import pexpect
import pytest

from tasks.errors import FormatError, InputError
from tasks.formats import pkgkeys
from tasks.process import run
from tasks.toolchain import hosttools

BUILD = Path(__file__).resolve().parents[1] / "build"


def test_written_keys_load_back_and_the_secret_file_is_private(tmp_path: Path) -> None:
    pair = pkgkeys.generate()
    pkgkeys.write_key_files(pair, tmp_path / "k.pub.toml", tmp_path / "k.toml")
    assert pkgkeys.load_secret_key(tmp_path / "k.toml") == pair
    assert pkgkeys.load_public_key(tmp_path / "k.pub.toml") == pair.public_key
    assert stat.S_IMODE((tmp_path / "k.toml").stat().st_mode) == 0o600
    assert (tmp_path / "k.pub.toml").read_text() == f'pkey = "{pair.public_key.hex()}"\n'
    assert [line.split(" = ")[0] for line in (tmp_path / "k.toml").read_text().splitlines()] == \
        ["salt", "nonce", "skey"]


def test_ensure_keys_generates_once_and_then_reuses(tmp_path: Path) -> None:
    first = pkgkeys.ensure_keys(tmp_path / "build")
    assert sorted(path.name for path in (tmp_path / "build").iterdir()) == ["id_ed25519.pub.toml",
                                                                          "id_ed25519.toml"]
    assert pkgkeys.ensure_keys(tmp_path / "build") == first
    (tmp_path / "build" / "id_ed25519.pub.toml").unlink()
    assert pkgkeys.ensure_keys(tmp_path / "build") == first  # the public key is derived again
    assert pkgkeys.load_public_key(tmp_path / "build" / "id_ed25519.pub.toml") == first.public_key


def test_ensure_keys_refuses_a_public_key_without_its_secret_key(tmp_path: Path) -> None:
    pkgkeys.ensure_keys(tmp_path)
    (tmp_path / "id_ed25519.toml").unlink()
    with pytest.raises(InputError, match="secret key id_ed25519.toml is missing"):
        pkgkeys.ensure_keys(tmp_path)


def test_ensure_keys_refuses_a_mismatched_pair(tmp_path: Path) -> None:
    pkgkeys.ensure_keys(tmp_path)
    other = pkgkeys.generate()
    (tmp_path / "id_ed25519.pub.toml").write_text(f'pkey = "{other.public_key.hex()}"\n')
    with pytest.raises(InputError, match="does not hold the public key"):
        pkgkeys.ensure_keys(tmp_path)


@pytest.mark.parametrize("text, key, message", [
    ('pkey = "abcd"\n', "pkey", "holds 2 bytes"),
    ('pkey = "zz"\n', "pkey", "not a hex string"),
    ("other = 1\n", "pkey", "missing"),
    ("pkey = \n", None, "not a TOML key file"),
])
def test_malformed_public_key_files_are_rejected(tmp_path: Path, text: str, key: str | None, message: str) -> None:
    (tmp_path / "k.pub.toml").write_text(text)
    with pytest.raises(FormatError, match=message) as error:
        pkgkeys.load_public_key(tmp_path / "k.pub.toml")
    assert error.value.key == key and error.value.path == tmp_path / "k.pub.toml"


def test_secret_key_whose_public_half_does_not_match_its_seed_is_rejected(tmp_path: Path) -> None:
    pair, other = pkgkeys.generate(), pkgkeys.generate()
    pkgkeys.write_key_files(pair, tmp_path / "k.pub.toml", tmp_path / "k.toml")
    text = (tmp_path / "k.toml").read_text().replace(pair.public_key.hex(), other.public_key.hex())
    (tmp_path / "k.toml").write_text(text)
    with pytest.raises(FormatError, match="does not belong to its seed"):
        pkgkeys.load_secret_key(tmp_path / "k.toml")


def test_signatures_are_deterministic_ed25519() -> None:
    pair = pkgkeys.KeyPair(bytes(range(32)))
    assert pair.sign(b"message") == pair.sign(b"message") and len(pair.sign(b"message")) == 64
    assert pair.secret_key[32:] == pair.public_key


# --- interoperability with the real pkgar-keys ------------------------------------------------------------------

@pytest.fixture(scope="session")
def pkgar_keys() -> Path:
    return hosttools.ensure("pkgar-keys-0.1", BUILD) / "pkgar-keys"


@pytest.mark.slow
def test_we_read_plaintext_keys_written_by_pkgar_keys(tmp_path: Path, pkgar_keys: Path) -> None:
    run([pkgar_keys, "-s", tmp_path / "k.toml", "gen", "-p", tmp_path / "k.pub.toml", "--plaintext"],
        capture=True)
    assert pkgkeys.load_secret_key(tmp_path / "k.toml").public_key == \
        pkgkeys.load_public_key(tmp_path / "k.pub.toml")


@pytest.mark.slow
def test_pkgar_keys_reads_our_secret_key(tmp_path: Path, pkgar_keys: Path) -> None:
    pair = pkgkeys.ensure_keys(tmp_path)
    exported = run([pkgar_keys, "-s", tmp_path / "id_ed25519.toml", "export"], capture=True)
    assert exported == (tmp_path / "id_ed25519.pub.toml").read_text() == f'pkey = "{pair.public_key.hex()}"\n'


@pytest.mark.slow
def test_we_decrypt_secret_keys_encrypted_by_pkgar_keys(tmp_path: Path, pkgar_keys: Path) -> None:
    # pkgar-keys reads the passphrase from a terminal, so it runs under a pseudo-terminal here.
    child = pexpect.spawn(str(pkgar_keys), ["-s", str(tmp_path / "k.toml"), "gen", "-p", str(tmp_path / "k.pub.toml")],
                          timeout=60)
    for prompt in ("passphrase", "passphrase"):
        child.expect(prompt)
        child.sendline("correct horse")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert len(tomllib.loads((tmp_path / "k.toml").read_text())["skey"]) == 2 * pkgkeys.SEALED_SECRET_KEY_SIZE
    pair = pkgkeys.load_secret_key(tmp_path / "k.toml", "correct horse")
    assert pair.public_key == pkgkeys.load_public_key(tmp_path / "k.pub.toml")
    with pytest.raises(FormatError, match="wrong passphrase"):
        pkgkeys.load_secret_key(tmp_path / "k.toml", "wrong")
    with pytest.raises(FormatError, match="encrypted; give its passphrase"):
        pkgkeys.load_secret_key(tmp_path / "k.toml")


def test_the_secretbox_sizes_are_libsodiums() -> None:
    """pkgkeys spells them out so that hashing a public key does not load libsodium; they must be its own."""
    import nacl.secret
    assert (pkgkeys.SECRETBOX_MAC_SIZE, pkgkeys.NONCE_SIZE, pkgkeys.SECRETBOX_KEY_SIZE) == (
        nacl.secret.SecretBox.MACBYTES, nacl.secret.SecretBox.NONCE_SIZE, nacl.secret.SecretBox.KEY_SIZE)

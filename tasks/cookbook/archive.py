"""Tarball sources: download, BLAKE3 check (the recipe format demands BLAKE3), safe extraction.

Extraction behaves like ``tar --extract --no-same-owner --strip-components 1`` but refuses any member that would
land outside the destination: absolute names, ``..``, and symlinks or hardlinks whose target escapes.
"""
from __future__ import annotations

import posixpath
import tarfile
import urllib.error
import urllib.request
from http.client import HTTPException
from pathlib import Path

from ..atomic import atomic_path
from ..errors import FormatError, InputError
from ..hashing import blake3_file, hash_text

CHUNK = 1 << 20
DOWNLOAD_TIMEOUT = 60


def cached_tar_path(cache_dir: Path, url: str, expected: str | None) -> Path:
    """Where a download is kept: by its BLAKE3 when the recipe gives one, else by URL."""
    return cache_dir / (f"{expected}.tar" if expected else f"url-{hash_text(url)}.tar")


def download(url: str, destination: Path, *, key: str = "source.tar", not_found: str | None = None) -> None:
    """Fetch ``url`` into ``destination`` (via ``.partial``; a failure leaves nothing behind). A download that
    breaks off (fewer bytes than the server announced, a connection lost) is an error; ``not_found`` is the message
    for HTTP 404, ``key`` the setting or recipe key the errors name."""
    with atomic_path(destination) as partial:
        try:
            with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as response, open(partial, "wb") as out:
                expected, received = response.headers.get("Content-Length"), 0
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    received += len(chunk)
                if expected is not None and received != int(expected):
                    raise InputError(f"the download of {url} broke off after {received} of {expected} bytes",
                                     key=key)
        except urllib.error.HTTPError as error:
            if error.code == 404 and not_found:
                raise InputError(not_found, key=key) from None
            raise InputError(f"cannot download {url}: HTTP {error.code} {error.reason}", key=key) from None
        except urllib.error.URLError as error:
            raise InputError(f"cannot download {url}: {error.reason}", key=key) from None
        except (OSError, HTTPException) as error:  # after the connection was made
            raise InputError(f"the download of {url} broke off: {error or type(error).__name__}", key=key) from None


def verify_blake3(path: Path, expected: str | None, url: str, recipe_file: Path) -> str:
    """The file's BLAKE3; a missing or different ``blake3`` in the recipe is an error that shows the right value."""
    actual = blake3_file(path)
    if expected is None:
        raise InputError(f"missing; {url} has blake3 = \"{actual}\" (add it to the recipe)", path=recipe_file,
                         key="source.blake3")
    if actual != expected.lower():
        path.unlink()
        raise InputError(f"mismatch for {url}: expected {expected}, downloaded {actual}", path=recipe_file,
                         key="source.blake3")
    return actual


def _stripped(name: str, strip: int) -> str | None:
    parts = [part for part in name.split("/") if part not in ("", ".")]
    return "/".join(parts[strip:]) or None


def _check_inside(member: str, target: str, archive: Path) -> None:
    """``target`` is a path relative to the destination root; it must not leave it."""
    if posixpath.isabs(target) or posixpath.normpath(target).split("/")[0] == "..":
        raise FormatError(f"member {member!r} escapes the source directory", path=archive)


def _plan(archive: Path, tar: tarfile.TarFile, strip: int) -> list[tarfile.TarInfo]:
    """The members to extract, renamed with the leading components stripped; escaping ones raise."""
    planned = []
    for member in tar.getmembers():
        if member.name.startswith("/") or ".." in member.name.split("/"):
            raise FormatError(f"member {member.name!r} escapes the source directory", path=archive)
        name = _stripped(member.name, strip)
        if name is None:
            continue
        if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
            raise FormatError(f"member {member.name!r} is a device or fifo, which a source must not hold",
                              path=archive)
        if member.issym():
            if posixpath.isabs(member.linkname):
                raise FormatError(f"symlink {member.name!r} points outside the source: {member.linkname}",
                                  path=archive)
            _check_inside(member.name, posixpath.join(posixpath.dirname(name), member.linkname), archive)
        if member.islnk():
            linkname = _stripped(member.linkname, strip)
            if linkname is None or member.linkname.startswith("/") or ".." in member.linkname.split("/"):
                raise FormatError(f"hardlink {member.name!r} points outside the source: {member.linkname}",
                                  path=archive)
            member.linkname = linkname
        member.name = name
        planned.append(member)
    return planned


def extract(archive: Path, destination: Path, strip: int = 1) -> None:
    """Extract ``archive`` (any compression tarfile reads) into the new directory ``destination``."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = _plan(archive, tar, strip)
            destination.mkdir(parents=True)
            # The data filter re-checks every path and drops owners and special bits (--no-same-owner).
            tar.extractall(destination, members=members, filter="data")
    except tarfile.ReadError:  # tarfile's message lists each compression it tried, over several lines
        raise FormatError("not a tar archive (plain, gzip, bzip2 or xz)", path=archive) from None
    except (tarfile.TarError, EOFError) as error:
        raise FormatError(f"cannot read tar archive: {error}", path=archive) from None

"""The object store behind ``cache=URL``: ``s3://BUCKET/PREFIX`` (credentials, endpoint and region from the standard
``AWS_*`` environment, never from the URL or a file of ours) or ``file:///DIR``. obstore (the Rust object_store
crate) speaks S3; every fault of the store (down, slow, refused, full) reaches the build as :class:`Unavailable`."""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import InputError

CONNECT_TIMEOUT = "3s"
# A request's whole time: a manifest or a listing is small, so a store that stops answering is given up in seconds;
# a blob may be hundreds of megabytes.
SMALL_TIMEOUT = "10s"
BULK_TIMEOUT = "600s"
RETRIES = {"max_retries": 2, "retry_timeout": timedelta(seconds=10),
           "backoff": {"init_backoff": timedelta(milliseconds=100), "max_backoff": timedelta(seconds=1), "base": 2}}
S3_ENVIRONMENT = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL")


class Unavailable(Exception):
    """The store cannot answer: the build goes on without it."""


class Missing(Exception):
    """No object under this key."""


@dataclass(frozen=True)
class Listed:
    key: str
    size: int
    modified: datetime


def check_url(url: str) -> str | None:
    """Why ``url`` cannot name a cache, or None."""
    parts = urlsplit(url)
    if parts.scheme == "s3":
        if not parts.hostname:
            return "s3:// needs a bucket: s3://BUCKET/PREFIX"
        if parts.username or parts.password:
            return "credentials do not belong in the URL: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        return None
    if parts.scheme == "file":
        return None if parts.path.startswith("/") and not parts.netloc else "file:// needs an absolute path: " \
            "file:///DIR"
    return "not s3://BUCKET/PREFIX or file:///DIR"


class Store:
    """Objects under one prefix of one store."""

    def __init__(self, url: str):
        if (problem := check_url(url)) is not None:
            raise InputError(f"{url!r}: {problem}", key="cache")
        self.url = url
        parts = urlsplit(url)
        self.prefix = parts.path.strip("/") if parts.scheme == "s3" else ""
        if parts.scheme == "s3":
            self._small, self._bulk = _s3(parts.hostname or "", SMALL_TIMEOUT), _s3(parts.hostname or "", BULK_TIMEOUT)
        else:
            self._small = self._bulk = _directory(Path(parts.path))

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def get(self, name: str) -> bytes:
        import obstore
        with _answer(name):
            return bytes(obstore.get(self._small, self.key(name)).bytes())

    def download(self, name: str, path: Path) -> None:
        """The object into the new file ``path``, streamed."""
        import obstore
        with _answer(name), path.open("xb") as out:
            for chunk in obstore.get(self._bulk, self.key(name)):
                out.write(chunk)

    def put(self, name: str, data: bytes | Path) -> None:
        import obstore
        with _answer(name):
            obstore.put(self._bulk if isinstance(data, Path) else self._small, self.key(name), data)

    def exists(self, name: str) -> bool:
        import obstore
        try:
            with _answer(name):
                obstore.head(self._small, self.key(name))
        except Missing:
            return False
        return True

    def list(self, under: str) -> Iterator[Listed]:
        import obstore
        with _answer(under):
            for chunk in obstore.list(self._small, self.key(under)):
                for meta in chunk:
                    key = meta["path"].removeprefix(f"{self.prefix}/") if self.prefix else meta["path"]
                    yield Listed(key, meta["size"], meta["last_modified"].astimezone(UTC))

    def delete(self, name: str) -> None:
        import obstore
        with _answer(name):
            obstore.delete(self._small, self.key(name))


@contextmanager
def _answer(name: str) -> Iterator[None]:
    """obstore's errors as the store's: no such object is :class:`Missing`; anything else (the network, the
    permissions, the server) :class:`Unavailable`."""
    try:
        yield
    except FileNotFoundError:
        raise Missing(name) from None
    except Exception as error:
        raise Unavailable(_reason(error)) from None


def s3_region() -> str:
    """The S3 region of the standard environment (``us-east-1`` when it names none, as the AWS tools take it)."""
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def _s3(bucket: str, timeout: str):
    from obstore.store import S3Store
    env = {name: value for name in S3_ENVIRONMENT if (value := os.environ.get(name))}
    options = {"connect_timeout": CONNECT_TIMEOUT, "timeout": timeout,
               "allow_http": env.get("AWS_ENDPOINT_URL", "").startswith("http://")}
    config = {"access_key_id": env.get("AWS_ACCESS_KEY_ID"), "secret_access_key": env.get("AWS_SECRET_ACCESS_KEY"),
              "token": env.get("AWS_SESSION_TOKEN"), "endpoint": env.get("AWS_ENDPOINT_URL"),
              "region": s3_region()}
    # path-style requests (endpoint/bucket/key): what Garage, MinIO and Ceph answer without DNS of their own
    return S3Store(bucket, virtual_hosted_style_request=False, client_options=options, retry_config=RETRIES,
                   **{name: value for name, value in config.items() if value is not None})


def _directory(path: Path):
    from obstore.store import LocalStore
    path.mkdir(parents=True, exist_ok=True)
    return LocalStore(path, automatic_cleanup=True, mkdir=True)


def _reason(error: Exception) -> str:
    """The first line of obstore's message (its later lines are a debug dump)."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:300]

"""The local platform's own credentials: a bearer token and an AK/SK pair, made at its first start.

A platform on 127.0.0.1 is reachable by every process of every user of the machine, so it never runs open:
``credentials.json`` in its home (mode 0600, in a 0700 folder) holds a token for qfrun and a key pair for
the official SDK, whose console and chat requests are signed bce-auth-v1 and cannot carry a bearer token.
qfrun's launcher and client read the file themselves; ``qfrun platform env`` prints the SDK's variables.
``QFRUN_LOCAL_TOKEN`` and ``QFRUN_LOCAL_ACCESS_KEY``/``QFRUN_LOCAL_SECRET_KEY`` in the environment take the
place of the file's token and pair, for a user who manages credentials elsewhere.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from runner.errors import PlatformError
from runner.local.home import Home
from runner.platform.settings import ENV_LOCAL_ACCESS_KEY as ACCESS_KEY_ENV
from runner.platform.settings import ENV_LOCAL_SECRET_KEY as SECRET_KEY_ENV
from runner.platform.settings import ENV_LOCAL_TOKEN

FILE_NAME = "credentials.json"
MAX_FILE_BYTES = 4096  # three short strings; anything larger was not written by qfrun


@dataclass(frozen=True)
class LocalKeys:
    """The one AK/SK pair the local platform accepts signatures from (the secret hidden from repr)."""

    access_key: str
    secret_key: str = field(repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> LocalKeys | None:
        """The pair from the environment, None when neither is set, an error when only one is."""
        ak = environ.get(ACCESS_KEY_ENV, "").strip()
        sk = environ.get(SECRET_KEY_ENV, "").strip()
        if bool(ak) != bool(sk):
            missing = SECRET_KEY_ENV if ak else ACCESS_KEY_ENV
            raise PlatformError(
                f"The local platform's key pair is incomplete: {missing} is not set; set both "
                f"{ACCESS_KEY_ENV} and {SECRET_KEY_ENV}, or neither."
            )
        return cls(ak, sk) if ak else None


@dataclass(frozen=True)
class LocalCredentials:
    """What the platform accepts: the bearer token and the key pair (both hidden from repr)."""

    token: str = field(repr=False)
    keys: LocalKeys

    def sdk_environment(self, url: str) -> dict[str, str]:
        """The official SDK's variables that point it at the platform at ``url`` (docs/sdk-compat.md)."""
        return {
            "QIANFAN_CONSOLE_API_BASE_URL": url,
            "QIANFAN_BASE_URL": url,
            "QIANFAN_ACCESS_KEY": self.keys.access_key,
            "QIANFAN_SECRET_KEY": self.keys.secret_key,
        }


def credentials_path(home: Home) -> Path:
    return home.root / FILE_NAME


def load_or_create(home: Home) -> LocalCredentials:
    """The home's credentials, made on the first call (two first starts at once agree on one file)."""
    path = credentials_path(home)
    home.ensure()
    if not path.exists() and not path.is_symlink():
        _create(path)
    return _read(path)


def effective(home: Home, environ: Mapping[str, str]) -> LocalCredentials:
    """The credentials a platform of ``home`` started under ``environ`` accepts: the environment's token and
    pair where set, the file's otherwise."""
    stored = load_or_create(home)
    token = environ.get(ENV_LOCAL_TOKEN, "").strip() or stored.token
    return LocalCredentials(token, LocalKeys.from_env(environ) or stored.keys)


def _create(path: Path) -> None:
    fresh = {
        "token": secrets.token_urlsafe(32),
        "access_key": secrets.token_hex(16),
        "secret_key": secrets.token_hex(16),
    }
    temporary = path.with_name(f".{FILE_NAME}.{secrets.token_hex(8)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(fresh, handle)
        # link() never replaces a file: when another process made one first, both use that one.
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _read(path: Path) -> LocalCredentials:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise PlatformError(
            f"The local platform's credentials file {path} cannot be read ({exc.strerror}); "
            "it must be a regular file, not a link."
        ) from exc
    # Checked before the descriptor becomes a file object: opening a folder as one raises IsADirectoryError.
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_FILE_BYTES:
        os.close(fd)
        raise PlatformError(f"The local platform's credentials file {path} is not one qfrun wrote.")
    with os.fdopen(fd, "rb") as handle:
        if info.st_uid != os.getuid() or info.st_mode & 0o077:
            # Like ssh with a private key: a token others could read is no token; say how to make it safe.
            raise PlatformError(
                f"The local platform's credentials file {path} is readable by other users "
                f"(mode {stat.S_IMODE(info.st_mode):o}); run `chmod 600 {path}` or delete it for new ones."
            )
        raw = handle.read(MAX_FILE_BYTES + 1)
    try:
        data = json.loads(raw)
        token, access_key, secret_key = data["token"], data["access_key"], data["secret_key"]
    except (ValueError, TypeError, KeyError) as exc:
        raise PlatformError(
            f"The local platform's credentials file {path} is damaged; delete it and restart the platform "
            "to make new credentials."
        ) from exc
    if not all(isinstance(value, str) and value.strip() for value in (token, access_key, secret_key)):
        raise PlatformError(
            f"The local platform's credentials file {path} has an empty field; delete it and restart the "
            "platform to make new credentials."
        )
    return LocalCredentials(token, LocalKeys(access_key, secret_key))

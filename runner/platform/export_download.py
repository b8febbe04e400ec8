"""Fetch an export's file from the ``downloadUrl`` a platform answers, within a byte limit.

The link is the platform's to choose (on Qianfan a link into its storage, on the local platform a path of its
own), so qfrun's credentials go with it only when it points at the console's own origin: a link elsewhere is
fetched bare, as a pre-signed link is meant to be, and never hands the keys or token to another host.
Redirects are not followed (a redirect could lead a signed request elsewhere). The body is read in chunks and
given up past ``max_bytes``, whatever Content-Length says, so a huge or endless answer cannot fill memory.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx

from runner.errors import PlatformStatusError
from runner.platform.auth import auth_for
from runner.platform.borrowed import borrowed
from runner.platform.settings import PlatformSettings


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default


def download(
    settings: PlatformSettings,
    url: str,
    max_bytes: int,
    *,
    transport: httpx.BaseTransport | None = None,
) -> bytes:
    """The bytes at ``url``; a ``PlatformStatusError`` that names the link's host when it fails or is larger
    than ``max_bytes``."""
    scheme, host, _ = _origin(url)
    shown = f"the export link on {host or url!r}"
    if scheme not in ("http", "https") or not host:
        raise PlatformStatusError(f"{shown} is not an http(s) link", platform=settings.display_name)
    own = _origin(url) == _origin(settings.console_base_url)
    auth = auth_for(settings.credentials, expiration_s=settings.sign_expiration_s) if own else None
    timeout = httpx.Timeout(settings.read_timeout_s, connect=settings.connect_timeout_s)
    try:
        with (
            httpx.Client(
                transport=borrowed(transport), auth=auth, timeout=timeout, follow_redirects=False
            ) as client,
            client.stream("GET", url, headers={"User-Agent": "qfrun"}) as response,
        ):
            if response.status_code != 200:
                raise PlatformStatusError(
                    f"{shown} answered HTTP {response.status_code}", platform=settings.display_name
                )
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise _too_large(settings, shown, max_bytes)
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise _too_large(settings, shown, max_bytes)
                chunks.append(chunk)
    except httpx.HTTPError as exc:
        raise PlatformStatusError(
            f"{shown} could not be read ({type(exc).__name__})", platform=settings.display_name
        ) from None
    return b"".join(chunks)


def _too_large(settings: PlatformSettings, shown: str, max_bytes: int) -> PlatformStatusError:
    return PlatformStatusError(
        f"{shown} holds more than {max_bytes} bytes, more than qfrun reads back",
        platform=settings.display_name,
    )

"""The endpoint: the API key and the base URL a call uses, from its arguments or the environment.

:func:`resolve_api_key` reads ``api_key``, else ``CROCT_API_KEY``; :func:`resolve_base_url` reads
``base_url``, else ``CROCT_API_URL``, else :data:`DEFAULT_BASE_URL`, and accepts plain http only for
the loopback hosts :func:`is_loopback` recognises. Reading these two environment variables is the
only I/O. Errors are :class:`~croct_pandas.errors.InvalidArgumentError`; none ever holds the key.
"""

from __future__ import annotations

import ipaddress
import os
from urllib.parse import urlsplit

from croct_pandas.errors import InvalidArgumentError
from croct_pandas.errors import bad_argument as _bad

__all__ = ["DEFAULT_BASE_URL", "is_loopback", "resolve_api_key", "resolve_base_url"]

DEFAULT_BASE_URL = "https://api.croct.io"


def resolve_api_key(api_key: str | None) -> str:
    """The API key: the argument, else the ``CROCT_API_KEY`` environment variable.

    Surrounding whitespace (a stray newline from a ``.env`` file) is removed. The key itself never
    appears in an error message.

    Examples
    --------
    >>> resolve_api_key("  my-key\\n")
    'my-key'
    """
    source = "api_key"
    if api_key is None:
        api_key = os.environ.get("CROCT_API_KEY")
        source = "the CROCT_API_KEY environment variable"
    if api_key is not None and not isinstance(api_key, str):
        raise InvalidArgumentError(f"api_key must be a str, not {type(api_key).__name__}")
    key = (api_key or "").strip()
    if not key:
        raise InvalidArgumentError(
            "no API key: it is read from the api_key= argument, then the CROCT_API_KEY "
            f"environment variable, and {source} is missing or empty"
        )
    if not key.isascii() or not key.isprintable():
        # an HTTP library would echo the header value in its own error; refuse it here instead
        raise InvalidArgumentError(
            f"the API key from {source} holds characters an HTTP header cannot carry "
            "(control or non-ASCII characters); check how it was copied"
        )
    return key


def is_loopback(url: str) -> bool:
    """Whether a URL's host is loopback: ``localhost``, ``127.0.0.0/8`` or ``::1``.

    Examples
    --------
    >>> is_loopback("http://127.0.0.1:8080"), is_loopback("https://api.croct.io")
    (True, False)
    """
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return False
    if not host:
        return False
    host = host.rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_base_url(base_url: str | None) -> str:
    """The API host: the argument, else ``CROCT_API_URL``, else ``https://api.croct.io``.

    A trailing ``/`` or ``/export`` is removed, so requests go to ``{base}/export/events`` and the
    ``/export`` is never doubled. Plain ``http`` is accepted for loopback hosts only.

    Examples
    --------
    >>> resolve_base_url("https://api.croct.io/export/")
    'https://api.croct.io'
    >>> resolve_base_url("http://127.0.0.1:4000")
    'http://127.0.0.1:4000'
    """
    if base_url is None:
        base_url = os.environ.get("CROCT_API_URL") or DEFAULT_BASE_URL
    what = f"base_url accepts an http(s) URL with a host, such as {DEFAULT_BASE_URL!r}"
    if not isinstance(base_url, str):
        raise _bad("base_url", base_url, what)
    if "@" in base_url:
        # never echo it: a user:password part may hold a secret
        raise InvalidArgumentError(
            "base_url must not carry credentials (user:password@); pass the key as api_key"
        )
    try:
        parts = urlsplit(base_url.strip())
        parts.port  # noqa: B018  (raises ValueError for a bad port)
    except ValueError:
        raise _bad("base_url", base_url, what) from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise _bad("base_url", base_url, what)
    if parts.query or parts.fragment:
        raise _bad("base_url", base_url, "base_url takes no query string or fragment")
    path = parts.path.rstrip("/")
    if path.lower().endswith("/export"):
        path = path[: -len("/export")]
    path = path.rstrip("/")
    normalised = f"{scheme}://{parts.netloc.lower()}{path}"
    if scheme == "http" and not is_loopback(normalised):
        raise _bad(
            "base_url",
            base_url,
            "plain http would send the API key unencrypted; use https (http is accepted only "
            "for loopback hosts such as 127.0.0.1 or localhost)",
        )
    return normalised

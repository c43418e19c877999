"""Where the cache lives by default."""

from __future__ import annotations

import os
from typing import Any

from croct_pandas.errors import InvalidArgumentError

__all__ = ["cache_dir", "default_cache_dir"]


def default_cache_dir() -> str:
    """``CROCT_PANDAS_CACHE`` when set, else the platform's user cache dir for croct-pandas.

    Examples
    --------
    >>> import os
    >>> os.environ["CROCT_PANDAS_CACHE"] = "/tmp/croct-cache"
    >>> default_cache_dir()
    '/tmp/croct-cache'
    >>> del os.environ["CROCT_PANDAS_CACHE"]
    """
    configured = os.environ.get("CROCT_PANDAS_CACHE")
    if configured:
        return configured
    from platformdirs import user_cache_dir

    return user_cache_dir("croct-pandas", appauthor=False)


def cache_dir(cache: Any, *, may_be_off: bool = False) -> str | None:
    """The folder the ``cache`` argument names: ``True`` the default one, a path that path;
    ``False`` means no cache (None) where ``may_be_off``, and anything else is refused.

    Examples
    --------
    >>> cache_dir("some/dir"), cache_dir(False, may_be_off=True)
    ('some/dir', None)
    """
    if cache is False and may_be_off:
        return None
    if cache is True:
        return default_cache_dir()
    if isinstance(cache, (str, os.PathLike)) and os.fspath(cache):
        return os.fspath(cache)
    off = "False (no cache), " if may_be_off else ""
    raise InvalidArgumentError(
        f"cache={cache!r}: cache accepts True (the user cache dir or CROCT_PANDAS_CACHE), "
        f"{off}or a folder path"
    )

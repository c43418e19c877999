"""Where the cache lives by default."""

from __future__ import annotations

import os

__all__ = ["default_cache_dir"]


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

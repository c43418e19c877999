"""Where the cache lives: the default folder, and the folder a ``cache`` argument names.

A bad ``cache`` argument is refused here, as an :class:`~croct_pandas.errors.InvalidArgumentError`
naming ``cache``, before any request is sent: a path that is a file (or runs through one), and,
for a read that writes the cache, a folder that cannot be created or written.
"""

from __future__ import annotations

import os
import tempfile
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


def cache_dir(cache: Any, *, may_be_off: bool = False, writable: bool | None = None) -> str | None:
    """The folder the ``cache`` argument names, checked: ``True`` the default one
    (:func:`default_cache_dir`), a path that path; ``False`` means no cache (None) where
    ``may_be_off``. Anything else raises :class:`~croct_pandas.errors.InvalidArgumentError`.

    Parameters
    ----------
    cache : bool or path
        The argument as the user gave it.
    may_be_off : bool
        Whether ``False`` (no cache) is accepted: ``read_croct_events``, not ``cache_info``.
    writable : bool, optional
        Whether the folder will be written. If so it is created when missing and must take a
        file; if not (``cache_info``, and ``clear_cache`` until it finds a folder to clear), a
        missing folder is fine (an empty cache) and only a path that is, or runs through, a file
        is refused. ``None`` means ``may_be_off``: only ``read_croct_events`` both accepts
        ``False`` and writes.

    Returns
    -------
    str or None
        The folder, as given (not made absolute); None for no cache.

    Raises
    ------
    InvalidArgumentError
        ``cache`` is of the wrong kind, names a file, or (``writable``) a folder that cannot be
        created or written; the message says what ``cache`` accepts.

    Examples
    --------
    >>> import os, tempfile
    >>> folder = os.path.join(tempfile.mkdtemp(), "cache")
    >>> cache_dir(folder) == folder, os.path.isdir(folder)  # a missing folder is an empty cache
    (True, False)
    >>> cache_dir(folder, may_be_off=True) == folder, os.path.isdir(folder)  # made for a read
    (True, True)
    >>> cache_dir(False, may_be_off=True) is None
    True
    >>> open(os.path.join(folder, "notes.txt"), "w").close()
    >>> try:
    ...     cache_dir(os.path.join(folder, "notes.txt"))
    ... except InvalidArgumentError as error:
    ...     print(str(error).split("; ")[0].split(": ", 1)[1])
    the path exists and is not a folder
    """
    if writable is None:
        writable = may_be_off
    if cache is False and may_be_off:
        return None
    if cache is True:
        folder = default_cache_dir()
    elif isinstance(cache, (str, os.PathLike)) and os.fspath(cache):
        folder = os.fspath(cache)
    else:
        raise InvalidArgumentError(f"cache={cache!r}: {_accepts(may_be_off)}")
    problem = _check_folder(folder, writable)
    if problem is not None:
        where = "" if cache is not True else f"the default cache folder {folder!r} ({_origin()}): "
        raise InvalidArgumentError(f"cache={cache!r}: {where}{problem}; {_accepts(may_be_off)}")
    return folder


def _check_folder(folder: str, writable: bool) -> str | None:
    """What is wrong with ``folder`` as a cache, or None."""
    try:
        if not os.path.isdir(folder) and os.path.lexists(folder):
            return "the path exists and is not a folder"
        if not writable:
            # runs through a file? then it can never be a folder; missing is just empty
            os.stat(folder)
            return None
        os.makedirs(folder, exist_ok=True)
        # a real file, not os.access: root passes access() on folders it cannot write to
        # (/sys), and O_TMPFILE (when the system has it) leaves no name behind even on a crash
        with tempfile.TemporaryFile(dir=folder, prefix="_probe-"):
            pass
    except FileNotFoundError:
        if not writable:
            return None
        return "the folder cannot be created (No such file or directory)"
    except NotADirectoryError:
        return "a part of the path is a file, not a folder"
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        if not writable:
            return f"the folder cannot be read ({why})"
        doing = "written to" if os.path.isdir(folder) else "created"
        return f"the folder cannot be {doing} ({why})"
    return None


def _origin() -> str:
    if os.environ.get("CROCT_PANDAS_CACHE"):
        return "from CROCT_PANDAS_CACHE"
    return "the user cache dir"


def _accepts(may_be_off: bool) -> str:
    off = "False (no cache), " if may_be_off else ""
    return (
        "cache accepts True (the user cache dir, or CROCT_PANDAS_CACHE when set), "
        f"{off}or the path of a folder that exists or can be created, and can be written"
    )

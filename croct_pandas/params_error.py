"""The error every argument check raises: the parameter, its value shown short, and why.

Shared by :mod:`croct_pandas.params`, :mod:`croct_pandas.params_time` and
:mod:`croct_pandas.params_endpoint`, so that every bad argument reads the same way.
"""

from __future__ import annotations

from typing import Any

from croct_pandas.errors import InvalidArgumentError

__all__ = ["bad_argument"]


def bad_argument(name: str, value: Any, why: str) -> InvalidArgumentError:
    """An :class:`~croct_pandas.errors.InvalidArgumentError` for ``name=value``, not raised.

    The value's repr is cut to 60 characters so a huge argument cannot flood the message.

    Examples
    --------
    >>> str(bad_argument("workers", 0, "workers accepts an int from 1 to 64"))
    'workers=0: workers accepts an int from 1 to 64'
    """
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return InvalidArgumentError(f"{name}={shown}: {why}")

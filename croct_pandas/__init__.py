"""croct-pandas: Croct's event data in pandas.

Importing the package registers the ``df.croct`` accessor.
"""

from __future__ import annotations

from croct_pandas import accessor as _accessor  # noqa: F401  (registers df.croct)
from croct_pandas.client import Client, Page
from croct_pandas.errors import CroctError
from croct_pandas.export import read_croct_events

__version__ = "0.1.0"

__all__ = [
    "Client",
    "CroctError",
    "Page",
    "__version__",
    "read_croct_events",
]

"""croct-pandas: Croct's event data in pandas.

Importing the package registers the ``df.croct`` accessor. Matplotlib and ipywidgets are imported
only when a chart or the explorer is asked for.

Examples
--------
>>> import croct_pandas as cp
>>> from croct_pandas.emulator import Emulator
>>> with Emulator(users=20, days=1) as emu:
...     df = cp.read_croct_events("2026-01-01", "2026-01-02", api_key=emu.api_key,
...                               base_url=emu.url, cache=False, progress=False)
>>> bool(df.croct.funnel(["pageOpened", "productViewed"]).table["entities"].iloc[0] > 0)
True
"""

from __future__ import annotations

from croct_pandas import accessor as _accessor  # noqa: F401  (registers df.croct)
from croct_pandas.cache import cache_info, clear_cache
from croct_pandas.client import Client, Page
from croct_pandas.errors import CroctError
from croct_pandas.export import read_croct_events
from croct_pandas.funnel import FunnelResult, Step

__version__ = "0.1.0"

__all__ = [
    "Client",
    "CroctError",
    "FunnelResult",
    "Page",
    "Step",
    "__version__",
    "cache_info",
    "clear_cache",
    "read_croct_events",
]

"""A local stand-in for Croct's Export API, for tests, demos and benchmarks.

:class:`Emulator` serves ``GET /export/events`` and ``GET /export/events/{id}`` on 127.0.0.1 over
real HTTP, in either wire dialect, with optional :class:`Faults`; :func:`generate_events` makes
the believable, seeded e-commerce store it serves by default.

Examples
--------
>>> from croct_pandas.emulator import Emulator
>>> with Emulator(users=10, days=1, seed=1) as emu:
...     emu.url.startswith("http://127.0.0.1:"), len(emu.events) > 0
(True, True)
"""

from __future__ import annotations

from croct_pandas.emulator.catalog import APP_METADATA
from croct_pandas.emulator.faults import Faults
from croct_pandas.emulator.generator import generate_events
from croct_pandas.emulator.server import Emulator, RequestRecord

__all__ = ["APP_METADATA", "Emulator", "Faults", "RequestRecord", "generate_events"]

"""``df.croct``: a thin accessor that checks the frame and hands off to the modules that work.

Registered when :mod:`croct_pandas` is imported.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from croct_pandas.funnel import FunnelResult, StepSpec

__all__ = ["CroctAccessor"]


@pd.api.extensions.register_dataframe_accessor("croct")
class CroctAccessor:
    """Croct-aware operations on an event frame (see ``docs/event-frame.md``).

    Examples
    --------
    >>> import croct_pandas, pandas as pd
    >>> df = pd.DataFrame({"type": ["pageOpened"], "timestamp": [pd.Timestamp(0, tz="UTC")],
    ...                    "userId": ["u1"]})
    >>> df.croct.require("type", "timestamp")
    """

    def __init__(self, frame: pd.DataFrame) -> None:
        self._frame = frame

    def require(self, *columns: str) -> None:
        """Raise ``ValueError`` naming every column the frame lacks."""
        missing = [c for c in columns if c not in self._frame.columns]
        if missing:
            raise ValueError(
                "this frame lacks the column(s) "
                + ", ".join(repr(c) for c in missing)
                + "; df.croct expects a frame from croct_pandas.read_croct_events()"
            )

    # -- funnels and sessions ------------------------------------------------------------

    def funnel(
        self,
        steps: Sequence[StepSpec],
        *,
        within: str | pd.Timedelta | None = "7D",
        by: str = "userId",
        order: str = "ordered",
        exclude: Iterable[StepSpec] | None = None,
        breakdown: str | None = None,
        breakdown_limit: int = 10,
    ) -> FunnelResult:
        """Count a funnel as ``docs/funnels.md`` defines; see :func:`croct_pandas.funnel.funnel`."""
        from croct_pandas.funnel import funnel

        self.require("type", "timestamp")  # by and breakdown: funnel() names the parameter
        return funnel(
            self._frame,
            steps,
            within=within,
            by=by,
            order=order,
            exclude=exclude,
            breakdown=breakdown,
            breakdown_limit=breakdown_limit,
        )

    def sessions(self) -> pd.DataFrame:
        """One row per session; see :func:`croct_pandas.sessions.sessions`."""
        from croct_pandas.sessions import sessions

        self.require("type", "timestamp", "sessionId", "userId")
        return sessions(self._frame)

    def with_sessions(self, columns: Iterable[str] = ("device", "country")) -> pd.DataFrame:
        """A copy with ``session.<column>`` on every row; see :func:`.sessions.with_sessions`."""
        from croct_pandas.sessions import with_sessions

        self.require("type", "timestamp", "sessionId", "userId")
        return with_sessions(self._frame, columns)

    # -- wire form -----------------------------------------------------------------------

    def items(self) -> pd.DataFrame:
        """One row per cart or order item; see :func:`croct_pandas.items.explode_items`."""
        from croct_pandas.items import explode_items

        self.require("id", "type", "timestamp", "sessionId", "userId")
        return explode_items(self._frame)

    def to_events(self) -> list[dict[str, Any]]:
        """The wire events (spec 0.7.1 form) of the frame; see :func:`.wire.to_events`."""
        from croct_pandas.wire import to_events

        self.require("id", "type", "timestamp", "sessionId", "userId")
        return to_events(self._frame)

    # -- looking ---------------------------------------------------------------------------

    def plot_events(self, *, freq: str = "D", ax: Axes | None = None) -> Axes:
        """Events over time by type; see :func:`croct_pandas.plotting.plot_events`."""
        from croct_pandas.plotting_events import plot_events

        self.require("type", "timestamp")
        return plot_events(self._frame, freq=freq, ax=ax)

    def explore(self) -> Any:
        """An interactive explorer; see :func:`croct_pandas.widgets.explore`."""
        from croct_pandas.widgets import explore

        self.require("type", "timestamp", "userId", "sessionId")
        return explore(self._frame)

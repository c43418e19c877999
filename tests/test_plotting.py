"""Charts drawn on the Agg backend: assertions are on the artists, never on pixels."""

from __future__ import annotations

import itertools
import subprocess
import sys
from collections.abc import Iterator

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

import croct_pandas  # noqa: F401  (registers df.croct)
from croct_pandas import plotting

T0 = pd.Timestamp("2026-01-05", tz="UTC")  # a Monday


@pytest.fixture(autouse=True)
def _close_figures() -> Iterator[None]:
    yield
    plt.close("all")


def _frame(rows: list[tuple[str, str, float, str | None]]) -> pd.DataFrame:
    """(user, type, minutes after T0, device) rows as an event frame."""
    users, types, minutes, devices = zip(*rows)
    return pd.DataFrame(
        {
            "type": pd.Categorical(types),
            "timestamp": [T0 + pd.Timedelta(minutes=m) for m in minutes],
            "sessionId": [f"s-{u}" for u in users],
            "userId": list(users),
            "device": pd.array(devices, dtype="string"),
        }
    )


@pytest.fixture
def shop() -> pd.DataFrame:
    # five viewers; three add to cart; two order (one after 2 min, one after 3 days)
    rows = [(u, "productViewed", 0.0, d) for u, d in zip("abcde", ["mobile"] * 3 + ["desktop"] * 2)]
    rows += [("a", "cartModified", 1, "mobile"), ("b", "cartModified", 5, "mobile")]
    rows += [("d", "cartModified", 10, "desktop")]
    rows += [("a", "orderPlaced", 2, "mobile"), ("d", "orderPlaced", 3 * 24 * 60, "desktop")]
    return _frame(rows)


STEPS = ["productViewed", "cartModified", "orderPlaced"]


def _texts(ax: matplotlib.axes.Axes) -> list[str]:
    return [t.get_text() for t in ax.texts]


def test_funnel_bars_are_the_entities_with_count_conversion_and_drop_off(shop):
    result = shop.croct.funnel(STEPS)
    ax = plotting.plot_funnel(result)
    assert [p.get_height() for p in ax.patches] == [5.0, 3.0, 2.0]
    assert _texts(ax) == ["5\n100.0%", "3\n60.0%", "2\n40.0%"]
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks[0] == "1. productViewed"
    assert ticks[1].endswith("−2 (40.0% drop)")
    assert ticks[2].endswith("−1 (33.3% drop)")
    assert ax.get_ylabel() == "people"
    assert ax.get_title() == "Funnel (within 7 days)"
    assert ax.get_ylim()[1] > 5  # room above the tallest bar for its label


def test_funnel_draws_on_the_given_axes_and_result_plot_is_the_same_chart(shop):
    _fig, ax = plt.subplots()
    result = shop.croct.funnel(STEPS, by="sessionId", within=None)
    assert plotting.plot_funnel(result, ax=ax) is ax
    assert ax.get_ylabel() == "sessions"
    assert ax.get_title() == "Funnel"
    again = result.plot()
    assert [p.get_height() for p in again.patches] == [p.get_height() for p in ax.patches]


def test_funnel_with_breakdown_groups_bars_per_step(shop):
    result = shop.croct.funnel(STEPS, breakdown="device")
    ax = plotting.plot_funnel(result)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["mobile", "desktop"]
    heights = [p.get_height() for p in ax.patches]
    assert heights == [3.0, 2.0, 1.0, 2.0, 1.0, 1.0]  # mobile's three steps, then desktop's
    # the groups sit side by side around each step's tick
    xs = [p.get_x() + p.get_width() / 2 for p in ax.patches]
    assert xs[0] < 0 < xs[3] and xs[1] < 1 < xs[4]
    assert _texts(ax) == ["100.0%", "66.7%", "33.3%", "100.0%", "50.0%", "50.0%"]
    assert ax.get_title() == "Funnel by device (within 7 days)"


def test_funnel_null_group_has_a_readable_legend_entry(shop):
    shop.loc[shop["userId"] == "e", "device"] = pd.NA
    ax = plotting.plot_funnel(shop.croct.funnel(STEPS, breakdown="device"))
    assert "(null)" in [t.get_text() for t in ax.get_legend().get_texts()]


def _overlaps(boxes: list) -> list[tuple[int, int]]:
    return [
        (i, j) for (i, a), (j, b) in itertools.combinations(enumerate(boxes), 2) if a.overlaps(b)
    ]


def test_funnel_labels_do_not_overlap_with_many_steps_and_groups():
    # eight long camelCase step names and four groups: the crowded case
    names = [
        "pageOpened",
        "productViewed",
        "cartModified",
        "cartViewed",
        "checkoutStarted",
        "userSignedUp",
        "leadGenerated",
        "orderPlaced",
    ]
    rows = []
    for u in range(40):
        device = ["mobile", "desktop", "tablet", "bot"][u % 4]
        reach = 1 + u % len(names)
        rows += [(f"u{u}", name, k, device) for k, name in enumerate(names[:reach])]
    frame = _frame(rows)
    for breakdown in (None, "device"):
        ax = plotting.plot_funnel(frame.croct.funnel(names, breakdown=breakdown))
        fig = ax.get_figure()
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        ticks = [t.get_window_extent(renderer) for t in ax.get_xticklabels()]
        assert _overlaps(ticks) == []
        labels = [t.get_window_extent(renderer) for t in ax.texts if t.get_text()]
        assert _overlaps(labels) == []
        plt.close(fig)


def test_time_to_convert_is_a_histogram_of_the_entities_that_reached(shop):
    result = shop.croct.funnel(STEPS, within="7D")
    ax = plotting.plot_time_to_convert(result)
    assert sum(p.get_height() for p in ax.patches) == 2  # a and d ordered
    assert ax.get_title() == "Time from 1. productViewed to 3. orderPlaced"
    # 2 minutes and 3 days: more than two orders of magnitude, so a log axis
    assert ax.get_xscale() == "log"
    (median,) = [line for line in ax.lines if line.get_linestyle() == "--"]
    assert median.get_label().startswith("median ")


def test_time_to_convert_between_chosen_steps_in_a_unit_that_fits(shop):
    result = shop.croct.funnel(STEPS)
    ax = plotting.plot_time_to_convert(result, from_step=1, to_step=2)
    assert ax.get_xlabel() == "minutes"
    assert ax.get_xscale() == "linear"
    assert sum(p.get_height() for p in ax.patches) == 3
    assert sorted(ax.lines[0].get_xdata()) == [5.0, 5.0]  # the median of 1, 5 and 10 minutes


def test_time_to_convert_says_so_when_nobody_reached(shop):
    result = shop.croct.funnel(["productViewed", "checkoutStarted"])
    ax = plotting.plot_time_to_convert(result)
    assert _texts(ax) == ["no entity reached step 2"]
    assert len(ax.patches) == 0


@pytest.mark.parametrize("bad", [0, 4, -4, 1.5, True])
def test_time_to_convert_rejects_a_step_that_does_not_exist(shop, bad):
    result = shop.croct.funnel(STEPS)
    with pytest.raises((ValueError, TypeError), match="to_step"):
        plotting.plot_time_to_convert(result, to_step=bad)


def test_conversion_over_time_is_a_percent_line(shop):
    later = shop.assign(timestamp=shop["timestamp"] + pd.Timedelta(days=7))
    later["userId"] += "-2"
    result = pd.concat([shop, later], ignore_index=True).croct.funnel(STEPS, within="1D")
    ax = plotting.plot_conversion_over_time(result, freq="W")
    expected = result.conversion_over_time("W")["conversion"].to_numpy()
    np.testing.assert_allclose(ax.lines[0].get_ydata(), expected)
    assert list(expected) == [0.2, 0.2]  # d's order came after the one-day window
    assert isinstance(ax.yaxis.get_major_formatter(), matplotlib.ticker.PercentFormatter)
    assert ax.get_title() == "Conversion by week of first step"
    assert ax.get_ylabel() == "conversion, productViewed → orderPlaced"


def test_conversion_over_time_rejects_a_bad_freq(shop):
    with pytest.raises(ValueError, match="freq"):
        plotting.plot_conversion_over_time(shop.croct.funnel(STEPS), freq="fortnightly")


def test_events_over_time_draws_the_top_types_then_other():
    types = [f"type{i:02d}" for i in range(12)]
    rows = [
        ("u", t, day * 24 * 60 + k, None)
        for day in range(3)
        for i, t in enumerate(types)
        for k in range(12 - i)  # type00 is the most frequent
    ]
    frame = _frame(rows)
    ax = frame.croct.plot_events(freq="D")
    labels = [line.get_label() for line in ax.lines]
    assert labels == [*types[: plotting.TOP_TYPES], "other"]
    total = sum(line.get_ydata().sum() for line in ax.lines)
    assert total == len(frame)
    assert list(ax.lines[0].get_ydata()) == [12, 12, 12]
    assert ax.lines[-1].get_color() == "grey"
    assert len({line.get_color() for line in ax.lines}) == len(ax.lines)
    assert ax.get_ylabel() == "events per day"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == labels


def test_events_rejects_bad_input(shop):
    with pytest.raises(ValueError, match="freq"):
        plotting.plot_events(shop, freq="often")
    with pytest.raises(ValueError, match="'type' and 'timestamp'"):
        plotting.plot_events(shop.drop(columns="type"))


def test_importing_the_package_loads_neither_matplotlib_nor_ipywidgets():
    code = (
        "import sys, croct_pandas, croct_pandas.accessor\n"
        "heavy = [m for m in ('matplotlib', 'ipywidgets') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "import croct_pandas.plotting, croct_pandas.widgets\n"
        "assert 'matplotlib' not in sys.modules and 'ipywidgets' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr

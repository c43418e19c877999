"""The export's progress bar adds up to the window, whatever order pages arrive in."""

from __future__ import annotations

import warnings

from croct_pandas.progress import Progress
from croct_pandas.slices import Slice, plan_slices


def test_the_bar_ends_exactly_at_the_window(capsys):
    start, end = 1767225600000, 1767225600000 + 7 * 86_400_000 + 123
    slices = plan_slices(start, end, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # tqdm warns when a bar overshoots its total
        bar = Progress(start, end, enabled=True)
        bar.skip_covered(slices)
        for task in slices:
            position = task.start
            for fraction in (0.3, 0.3, 0.7):  # a repeated page does not move the bar back
                last = task.start + int((task.end - task.start) * fraction)
                bar.advance(task, position, last, 10)
                position = max(position, last)
            bar.on_wait(1.5, "rate limited")
            bar.finish(task, position)
        assert bar._bar.n == bar._bar.total == end - start
        bar.close()
    assert bar.events == 30 * len(slices)
    assert "events" in capsys.readouterr().err


def test_a_window_the_cache_covers_counts_as_done():
    bar = Progress(0, 1_000_000, enabled=True)
    bar.skip_covered(plan_slices(0, 400_000, 1))
    assert bar._bar.n == 600_000
    bar.close()


def test_disabled_is_silent(capsys):
    bar = Progress(None, 10, enabled=False)
    bar.advance(plan_slices(None, 10, 1)[0], None, 5, 3)
    bar.close()
    assert capsys.readouterr().err == ""


def test_after_the_last_page_the_bar_says_so_and_ends_on_the_count(capsys):
    start = 1767225600000
    bar = Progress(start, start + 1000, enabled=True)
    bar.advance(plan_slices(start, start + 1000, 1)[0], start, start + 1000, 5)
    bar.on_wait(0.01, "rate limited")  # too short to show
    bar.note("building the frame")
    bar.close()
    frames = [f.strip() for f in capsys.readouterr().err.replace("\r", "\n").splitlines()]
    frames = [f for f in frames if f]
    assert any(f.endswith("5 events · building the frame") for f in frames)
    assert frames[-1].endswith("5 events")  # the final line drops the note
    assert not any("waiting" in f for f in frames)


def test_the_final_line_gives_the_frame_rows_and_what_the_cache_gave(capsys):
    start = 1767225600000
    window = plan_slices(start, start + 1000, 1)[0]
    bar = Progress(start, start + 1000, enabled=True)
    bar.advance(window, start, start + 1000, 12)  # a boundary event the API sent twice
    bar.close(11)
    assert _last_frame(capsys).endswith(", 11 events")

    bar = Progress(start, start + 2000, enabled=True)
    bar.skip_covered([Slice(start + 1000, start + 2000)])
    bar.advance(Slice(start + 1000, start + 2000), start + 1000, start + 2000, 7)
    bar.close(30)
    assert _last_frame(capsys).endswith("30 events (7 fetched, the rest from the cache)")

    bar = Progress(start, start + 1000, enabled=True)
    bar.skip_covered([])
    bar.close(30)
    assert _last_frame(capsys).endswith("30 events read from the cache")

    bar = Progress(start, start + 1000, enabled=True)
    bar.advance(window, start, start + 500, 4)
    bar.close()  # failed or interrupted: the events fetched so far
    assert _last_frame(capsys).endswith("4 events")


def _last_frame(capsys) -> str:
    frames = [f.strip() for f in capsys.readouterr().err.replace("\r", "\n").splitlines()]
    return [f for f in frames if f][-1]

"""Random sequences of cached reads, interrupts, faults and refreshes, checked against a model.

Each sequence makes seeded random ``read_croct_events`` calls on one cache folder: windows of
whole days and odd milliseconds (some without ``start``), random event types, workers and page
sizes; some calls stopped by KeyboardInterrupt or an exception from the sink, some failed by the
emulator's faults, some retried through faults, some with ``refresh=True`` or a ``settle`` that
makes everything held provisional, a few with a second API key (another application on the same
cache folder). A small model says which intervals the cache holds for which types.

After every completed read the frame must equal the ground truth, built from the served store by
croct_pandas' own normaliser, and the requests must match the model: none when the window is
held, otherwise only the missing intervals, and exactly their events (repeats and failed
answers aside). A stopped call is usually followed by identical calls until one completes, and
that one may send no request for a page already stored, and fetch exactly the events that were
not.

The defects the sequences found have tests of their own at the end, each with its minimal
sequence; the random steps still keep stopped calls away from refresh and provisional windows,
which those tests cover.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import random
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import orjson
import pandas as pd
import pytest

import croct_pandas as cp
import croct_pandas.cache as cache_module
import croct_pandas.export as export_module
from croct_pandas.cache import cache_info
from croct_pandas.client import Client
from croct_pandas.emulator import Emulator, Faults, RequestRecord, generate_events
from croct_pandas.emulator.faults import Injector
from croct_pandas.errors import APIError, RetriesExhaustedError, TransportError
from croct_pandas.frame import build_frame
from croct_pandas.normalize import normalize_items

DAY = 86_400_000
T0 = 1767225600000  # 2026-01-01T00:00:00Z: every window ends long before any run, so is final
BEGIN = -(2**62)  # the start of a window without one
HUGE_SETTLE = "3650D"  # every interval held is provisional under it
Interval = tuple[int, int]


# -- intervals (the model's own, not the cache's) ----------------------------------------------


def union(intervals: list[Interval]) -> list[Interval]:
    out: list[Interval] = []
    for start, end in sorted(i for i in intervals if i[0] < i[1]):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def minus(intervals: list[Interval], cuts: list[Interval]) -> list[Interval]:
    out = union(intervals)
    for cut_start, cut_end in union(cuts):
        pieces = [p for s, e in out for p in ((s, min(e, cut_start)), (max(s, cut_end), e))]
        out = [p for p in pieces if p[0] < p[1]]
    return out


# -- the served applications ---------------------------------------------------------------


class Host:
    """One application's store, served by one emulator for the whole module: its cursors are
    sealed with a secret of the instance, so a chain stopped under one instance cannot resume
    under another. Faults are swapped in for one call."""

    def __init__(self, store: list[dict[str, Any]], key: str) -> None:
        self.key = key
        self.emu = Emulator(store, api_key=key).start()
        self.url = self.emu.url
        events = self.emu.events
        self.tables = normalize_items(events).tables
        self.ts = np.array([e["timestamp"] for e in events], dtype=np.int64)
        self.type = np.array([e["payload"]["@type"] for e in events])
        self.types = sorted(set(self.type.tolist()))

    @contextlib.contextmanager
    def serving(self, faults: Faults | None) -> Iterator[Emulator]:
        # the emulator has no public way to change the faults of a running instance
        self.emu._injector = Injector(faults)
        self.emu.reset_log()
        try:
            yield self.emu
        finally:
            self.emu._injector = Injector(None)

    def truth(self, call: Call) -> pd.DataFrame:
        start = None if call.window[0] == BEGIN else call.window[0]
        return build_frame(self.tables.items(), events=call.types, start=start, end=call.window[1])

    def count(self, intervals: list[Interval], types: tuple[str, ...] | None) -> int:
        held = np.zeros(len(self.ts), dtype=bool)
        for start, end in intervals:
            held |= (self.ts >= start) & (self.ts < end)
        if types is not None:
            held &= np.isin(self.type, list(types))
        return int(held.sum())


@pytest.fixture(scope="module")
def hosts() -> Iterator[list[Host]]:
    main = Host(generate_events(users=40, days=3, seed=5), "model-key-main-R4t8")
    other = Host(generate_events(users=10, days=2, seed=77), "model-key-other-Jw2c")
    yield [main, other]
    for host in (main, other):
        host.emu.stop()


# -- the model ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    window: Interval
    types: tuple[str, ...] | None
    workers: int
    page_size: int
    refresh: bool = False
    settle: str = "2h"

    def __str__(self) -> str:
        start = "None" if self.window[0] == BEGIN else self.window[0] - T0
        return (
            f"T0+[{start}, {self.window[1] - T0}) types={self.types} workers={self.workers} "
            f"page_size={self.page_size} refresh={self.refresh} settle={self.settle}"
        )


@dataclass
class Model:
    """What one application's folder holds: intervals for every type, and per type."""

    host: Host
    every: list[Interval] = field(default_factory=list)
    by_type: dict[str, list[Interval]] = field(default_factory=dict)
    key_known: bool | None = False  # None: a failed call may or may not have learnt it
    dirty: bool = False  # a stopped call was left unresumed: its staged pages may be used later

    def held(self, types: tuple[str, ...] | None) -> list[Interval]:
        if types is None:
            return union(self.every)
        out = [(BEGIN, 2**62)]
        for t in types:
            out = minus(out, minus(out, self.every + self.by_type.get(t, [])))
        return out

    def need(self, call: Call) -> list[Interval]:
        if call.refresh or call.settle == HUGE_SETTLE:
            return [call.window]
        return minus([call.window], self.held(call.types))

    def add(self, call: Call) -> None:
        if call.types is None:
            self.every = union([*self.every, call.window])
        for t in call.types or ():
            self.by_type[t] = union([*self.by_type.get(t, []), call.window])

    def rows_on_disk(self) -> int:
        return sum(self.host.count(self.held((t,)), (t,)) for t in self.host.types)


@dataclass(frozen=True)
class Sent:
    """An event-list request as the emulator logged it."""

    start: int | None
    end: int
    cursor: str | None
    page_size: int
    types: tuple[str, ...] | None
    new_items: int  # items answered, minus those repeated from the previous page
    good: bool  # answered in full (not refused, reset or truncated)


def sent(records: list[RequestRecord]) -> list[Sent]:
    out = []
    for r in records:
        if not r.path.rstrip("/").endswith("/export/events"):
            continue
        params = dict(r.params)
        types = tuple(sorted(v for k, v in r.params if k == "events")) or None
        repeated = sum(int(f.split(":")[1]) for f in r.faults if f.startswith("repeat:"))
        good = r.status == 200 and not {"reset", "truncate"} & set(r.faults)
        start = int(params["start"]) if "start" in params else None
        out.append(
            Sent(start, int(params["end"]), params.get("cursor"), int(params["pageSize"]),
                 types, r.items - repeated, good)
        )  # fmt: skip
    return out


# -- stopping a call from the sink ------------------------------------------------------------


class Stop(RuntimeError):
    """The exception a sink hook raises to stop a call."""


class Hook:
    """Counts what the sink stores and stops the call at page (or slice) ``stop_at``."""

    def __init__(self, stop_at: int | None = None, where: str = "after", error: type = Stop):
        self.stop_at, self.where, self.error = stop_at, where, error
        self.pages = self.slices = 0
        self.fired = False
        self.stored: set[tuple[int | None, int, str | None]] = set()
        self.ids: set[str] = set()
        self._lock = threading.Lock()

    def _stop(self, count: int, where: str) -> None:
        if self.where == where and count == self.stop_at:
            self.fired = True
            raise self.error(f"stopped at {where} {count}")

    def on_page(self, inner: Callable[..., None], task: Any, page: Any) -> None:
        with self._lock:
            self.pages += 1
            n = self.pages
        self._stop(n, "before")
        inner(task, page)
        ids = [item["id"] for item in orjson.loads(page.body)["items"]]
        with self._lock:
            self.stored.add((task.start, task.end, page.cursor))
            self.ids.update(ids)
        self._stop(n, "after")

    def on_slice_done(self, inner: Callable[..., None], task: Any) -> None:
        with self._lock:
            self.slices += 1
            n = self.slices
        self._stop(n, "slice")
        inner(task)
        self._stop(n, "slice done")


def join_workers() -> None:
    for thread in threading.enumerate():
        if thread.name.startswith("croct") and thread is not threading.current_thread():
            thread.join(timeout=30)


# -- the sequences --------------------------------------------------------------------------


@dataclass
class Outcome:
    frame: pd.DataFrame | None
    requests: list[Sent]
    hook: Hook


#: What a step does, and how often: a read that completes, one retried through faults, one
#: stopped from the sink, one failed by faults it may not retry, clear_cache.
KINDS = {"plain": 45, "retried": 15, "stopped": 27, "failed": 10, "clear": 3}


class RandomRun:
    """One seeded sequence of steps on one cache folder, and the models it is checked against."""

    def __init__(self, hosts: list[Host], cache: str, rng: random.Random, settings: dict) -> None:
        self.cache, self.rng, self.settings = cache, rng, settings
        self.models = [Model(h) for h in hosts]
        self.bounds = [T0 + d * DAY for d in range(-1, 5)]
        self.log: list[str] = []

    # -- random calls --

    def window(self) -> Interval:
        rng = self.rng
        r = rng.random()
        if r < 0.08:
            start = BEGIN
        elif r < 0.45:
            start = rng.choice(self.bounds[:-1])
        elif r < 0.7:
            start = T0 + rng.randrange(-1, 4) * DAY
        else:
            start = T0 + rng.randrange(-DAY // 2, 7 * DAY // 2)
        low = max(start, T0 - DAY)
        later = [b for b in self.bounds if b > low]
        r = rng.random()
        if r < 0.4 and later:
            end = rng.choice(later)
        elif r < 0.6:
            end = low - low % DAY + rng.randrange(1, 4) * DAY
        elif r < 0.66:
            end = low + rng.randrange(1, 120_000)
        else:
            end = low + rng.randrange(1, 2 * DAY)
        self.bounds = sorted({*self.bounds, *(b for b in (start, end) if b != BEGIN)})
        return start, end

    def call(self, model: Model) -> Call:
        rng = self.rng
        types = None
        if rng.random() < 0.55:
            types = tuple(sorted(rng.sample(model.host.types, rng.randrange(1, 4))))
        r = rng.random()
        return Call(
            self.window(),
            types,
            workers=rng.randrange(1, 5),
            page_size=rng.choices([7, 40, 150, 1000], [1, 3, 3, 3])[0],
            refresh=r < 0.1,
            settle=HUGE_SETTLE if 0.1 <= r < 0.17 else rng.choice(["2h", "0s"]),
        )

    def faults(self, failing: bool) -> Faults:
        seed = self.rng.randrange(2**30)
        if failing:
            return Faults(seed=seed, error_rate=0.12, reset_rate=0.04, truncate_rate=0.04)
        return Faults(seed=seed, error_rate=0.08, reset_rate=0.04, truncate_rate=0.04,
                      repeat_rate=0.3)  # fmt: skip

    def stopper(self) -> Hook:
        rng = self.rng
        where = rng.choice(["before", "after", "after", "slice", "slice done"])
        stop_at = rng.randrange(1, 6) if where.startswith("slice") else rng.randrange(1, 14)
        return Hook(stop_at, where, rng.choice([KeyboardInterrupt, Stop]))

    # -- running --

    def attempt(self, model: Model, call: Call, hook: Hook, faults: Faults | None,
                retries: int) -> Outcome:  # fmt: skip
        self.settings["hook"], self.settings["retries"] = hook, retries
        host = model.host
        frame = None
        with host.serving(faults) as emu:
            try:
                frame = cp.read_croct_events(
                    None if call.window[0] == BEGIN else call.window[0], call.window[1],
                    None if call.types is None else list(call.types), api_key=host.key,
                    base_url=host.url, cache=self.cache, progress=False, workers=call.workers,
                    page_size=call.page_size, refresh=call.refresh, settle=call.settle,
                )  # fmt: skip
            except (KeyboardInterrupt, Stop):
                if not hook.fired:
                    raise
            except (RetriesExhaustedError, APIError, TransportError):
                if retries != 0:
                    raise
            finally:
                join_workers()
            requests = sent(emu.requests)
        what = "completed" if frame is not None else "stopped" if hook.fired else "failed"
        self.log.append(f"  host {self.models.index(model)}: {call} faults={faults} -> {what}")
        if frame is None and (hook.stored or any(r.good and r.page_size == 1 for r in requests)):
            model.key_known = True
        elif frame is None and model.key_known is False:
            model.key_known = None
        return Outcome(frame, requests, hook)

    def step(self) -> None:
        rng = self.rng
        model = self.models[1] if rng.random() < 0.15 else self.models[0]
        call = self.call(model)
        kind = rng.choices(list(KINDS), list(KINDS.values()))[0]
        if kind == "clear":
            self.clear(model if rng.random() < 0.5 else None)
            return
        if kind in ("plain", "retried"):
            faults = self.faults(False) if kind == "retried" else None
            self.complete(model, call, self.attempt(model, call, Hook(), faults, 8), [])
            return
        # a stopped call that refreshes, or whose window is provisional, is repeated by the
        # tests of those defects below
        call = dataclasses.replace(call, refresh=False, settle=rng.choice(["2h", "0s"]))
        need = model.need(call)
        failing = kind == "failed"
        hook = Hook() if failing else self.stopper()
        before: list[Hook] = []
        outcome = self.attempt(model, call, hook, self.faults(True) if failing else None, 0)
        while outcome.frame is None:
            before.append(outcome.hook)
            r = rng.random()
            if r < 0.15:
                self.log.append("  (left unresumed)")
                model.dirty |= any(h.stored for h in before)
                return
            if r < 0.4 and len(before) < 4:
                outcome = self.attempt(model, call, self.stopper(), None, 8)
            else:
                faults = self.faults(False) if r < 0.6 else None
                outcome = self.attempt(model, call, Hook(), faults, 8)
        self.complete(model, call, outcome, before, need)

    def clear(self, model: Model | None) -> None:
        """clear_cache: one application's folder (by its name), or everything."""
        if model is not None and model.key_known is not True:
            return
        name = None
        if model is not None:
            prefix = model.host.url.split("//")[1].replace(":", "_") + "~"
            name = next(n for n in os.listdir(self.cache) if n.startswith(prefix))
        self.log.append(f"  clear_cache(application={name})")
        cache_info_before = cache_info(self.cache)
        cp.clear_cache(self.cache, application=name)
        for cleared in self.models if model is None else [model]:
            cleared.every, cleared.by_type = [], {}
            cleared.key_known, cleared.dirty = False, False
        info = cache_info(self.cache)
        if model is None:
            assert info.empty
        else:
            kept = cache_info_before[cache_info_before["base_url"] != model.host.url]
            assert info["rows"].sum() == kept["rows"].sum()

    def complete(self, model: Model, call: Call, outcome: Outcome, before: list[Hook],
                 need: list[Interval] | None = None) -> None:  # fmt: skip
        frame = outcome.frame
        assert frame is not None
        pd.testing.assert_frame_equal(frame, model.host.truth(call))
        assert frame.attrs["croct"]["provisional"] is (call.settle == HUGE_SETTLE)
        need = model.need(call) if need is None else need
        probes = [r for r in outcome.requests if r.page_size == 1]
        data = [r for r in outcome.requests if r.page_size != 1]
        if model.key_known is True:
            assert probes == [], "a known key is not probed again"
        else:
            good = sum(r.good for r in probes)
            assert good == 1 if model.key_known is False else good <= 1, probes
        for r in data:
            start = BEGIN if r.start is None else r.start
            assert not minus([(start, r.end)], need), f"{r} is outside the missing {need}"
            assert (r.types, r.page_size) == (call.types, call.page_size), r
        stored = set().union(*(h.stored for h in before))
        refetched = {(r.start, r.end, r.cursor) for r in data} & stored
        assert not refetched, f"stored pages fetched again: {refetched}"
        if not model.dirty:
            ids = set().union(*(h.ids for h in before))
            expected = model.host.count(need, call.types) - len(ids)
            assert sum(r.new_items for r in data if r.good) == expected, (need, data)
        model.key_known = True
        model.add(call)

    def check_folder(self) -> None:
        """The files hold each event once, and (when no stopped call was left) exactly what the
        model says is held."""
        pattern = os.path.join(self.cache, "**", "*.parquet")
        with contextlib.suppress(duckdb.IOException):  # raised when there is no file yet
            rows, ids = duckdb.execute(
                f"select count(*), count(distinct id) from read_parquet('{pattern}', "
                "hive_partitioning=true, union_by_name=true)"
            ).fetchall()[0]
            assert rows == ids
        info = cache_info(self.cache)
        for model in self.models:
            if model.key_known and not model.dirty:
                mine = info[info["base_url"] == model.host.url]
                assert mine["rows"].sum() == model.rows_on_disk(), mine


@pytest.fixture
def settings(monkeypatch) -> dict:
    """Hooks the cache's sink and the export's client: waits between retries are short, and
    retries can be turned off."""
    state: dict[str, Any] = {"hook": Hook(), "retries": 8}
    real_open = cache_module.open_sink

    def open_sink(*args: Any, **kwargs: Any) -> Any:
        sink = real_open(*args, **kwargs)
        hook = state["hook"]
        sink.on_page = functools.partial(hook.on_page, sink.on_page)
        sink.on_slice_done = functools.partial(hook.on_slice_done, sink.on_slice_done)
        return sink

    def client(*args: Any, **kwargs: Any) -> Client:
        return Client(*args, max_retries=state["retries"], backoff=0.002, max_backoff=0.02,
                      **kwargs)  # fmt: skip

    monkeypatch.setattr(cache_module, "open_sink", open_sink)
    monkeypatch.setattr(export_module, "Client", client)
    return state


#: More seeds for a longer search: CACHE_MODEL_SEEDS="1 2 3 ... 80" (one sequence each).
SEEDS = [int(s) for s in os.environ.get("CACHE_MODEL_SEEDS", "1 2 3 4").split()]
STEPS = 45


@pytest.mark.parametrize("seed", SEEDS)
def test_random_sequences_match_the_model(hosts, settings, tmp_path, seed):
    run = RandomRun(hosts, str(tmp_path), random.Random(seed), settings)
    for n in range(STEPS):
        run.log.append(f"step {n}:")
        try:
            run.step()
            if n % 5 == 4 or n == STEPS - 1:
                run.check_folder()
        except Exception as exc:
            history = "\n".join(run.log)
            raise AssertionError(f"{exc!r}\nsequence {seed}:\n{history}") from exc


# -- the defects the sequences found, pinned one by one ----------------------------------------


def stop_then_repeat(settings: dict, emu: Emulator, cache: str, start: int, end: int,
                     **kw: Any) -> tuple[int, int]:  # fmt: skip
    """One slice at a time (workers=1, one page per slice): stop right after the third page is
    stored, then make the identical call. Returns the events fetched again, and those that were
    not stored: they must be equal."""
    args = dict(api_key=emu.api_key, base_url=emu.url, cache=cache, progress=False, workers=1,
                **kw)  # fmt: skip
    settings["hook"] = hook = Hook(3, "after", KeyboardInterrupt)
    with pytest.raises(KeyboardInterrupt):
        cp.read_croct_events(start, end, **args)
    join_workers()
    assert len(hook.stored) >= 3  # the slice after may store its first page before the stop
    settings["hook"] = Hook()
    emu.reset_log()
    frame = cp.read_croct_events(start, end, **args)
    fetched = sum(r.new_items for r in sent(emu.requests) if r.page_size != 1)
    assert len(frame) == sum(start <= e["timestamp"] < end for e in emu.events)
    return fetched, len(frame) - len(hook.ids)


def test_a_stopped_refresh_resumes_its_complete_slices_too(hosts, settings, tmp_path):
    host = hosts[0]
    fetched, missing = stop_then_repeat(settings, host.emu, str(tmp_path), T0, T0 + DAY,
                                        refresh=True)  # fmt: skip
    assert fetched == missing


def test_a_stopped_call_over_a_provisional_window_resumes_its_complete_slices(settings, tmp_path):
    now = int(pd.Timestamp.now(tz="UTC").value // 1_000_000)
    recent = generate_events(users=40, days=1, seed=3)
    shift = now - 60_000 - max(e["timestamp"] for e in recent)
    for event in recent:
        event["timestamp"] += shift
    # four slices of an hour: the third, complete when the call stops, is provisional
    start, end = now - 4 * 3_600_000, now
    with Emulator(recent, api_key="model-key-recent-P0q7") as emu:
        fetched, missing = stop_then_repeat(settings, emu, str(tmp_path), start, end)
    assert fetched == missing


def test_refresh_after_a_stopped_call_fetches_the_stored_pages_again(hosts, settings, tmp_path):
    host = hosts[0]
    args = dict(api_key=host.key, base_url=host.url, cache=str(tmp_path), progress=False,
                workers=1, page_size=40)  # fmt: skip
    settings["hook"] = hook = Hook(3, "after", KeyboardInterrupt)  # inside the first slice
    with pytest.raises(KeyboardInterrupt):
        cp.read_croct_events(T0 + DAY, T0 + 2 * DAY, **args)
    join_workers()
    assert len(hook.ids) >= 120  # the slice after may store its first page before the stop
    settings["hook"] = Hook()
    host.emu.reset_log()
    frame = cp.read_croct_events(T0 + DAY, T0 + 2 * DAY, refresh=True, **args)
    fetched = sum(r.new_items for r in sent(host.emu.requests) if r.page_size != 1)
    assert fetched == len(frame)


def test_a_stored_cursor_the_api_rejects_does_not_wedge_the_window(settings, tmp_path):
    store = generate_events(users=20, days=1, seed=11)
    key = "model-key-cursor-Tz5m"
    args = dict(api_key=key, cache=str(tmp_path), progress=False, workers=1, page_size=40)
    settings["hook"] = Hook(2, "after", KeyboardInterrupt)
    with Emulator(store, api_key=key) as first:
        port, url = int(first.url.rsplit(":", 1)[1]), first.url
        with pytest.raises(KeyboardInterrupt):
            cp.read_croct_events(T0, T0 + DAY, base_url=url, **args)
        join_workers()
    settings["hook"] = Hook()
    # the same API on the same address, whose cursors no longer open the stored ones (as an
    # expired cursor would not)
    with Emulator(store, api_key=key, port=port) as again:
        expected = build_frame(normalize_items(again.events).tables.items(), start=T0, end=T0 + DAY)
        for refresh in (False, True):  # the identical call first: it resumes the stopped one
            frame = cp.read_croct_events(T0, T0 + DAY, base_url=url, refresh=refresh, **args)
            pd.testing.assert_frame_equal(frame, expected)

"""The cache under interrupts, kills, crashes mid-move, leftovers, old versions, two processes."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import duckdb
import orjson
import pandas as pd
import pyarrow as pa
import pytest

import croct_pandas as cp
import croct_pandas.cache as cache_module
import croct_pandas.cache_move as move_module
import croct_pandas.cache_sink as sink_module
from croct_pandas.emulator import Emulator, Faults, generate_events
from croct_pandas.errors import CacheWarning

DAY = 86_400_000
T0 = 1767225600000
KEY = "crash-test-key-Pp40vR"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def store() -> list[dict]:
    return generate_events(users=40, days=1, seed=8)


@pytest.fixture(scope="module")
def emu(store):
    with Emulator(store, api_key=KEY) as emulator:
        yield emulator


def read(emu: Emulator, cache, **kw) -> pd.DataFrame:
    kw.setdefault("progress", False)
    return cp.read_croct_events(
        T0, T0 + DAY, api_key=emu.api_key, base_url=emu.url, cache=cache, **kw
    )


@pytest.fixture(scope="module")
def truth(emu) -> pd.DataFrame:
    frame = read(emu, False)
    emu.reset_log()
    return frame


def page_requests(emu: Emulator) -> list[tuple[int | None, int, str | None, int]]:
    """(start, end, cursor, items) of each event-list request of a chain (not the 1-item probe)."""
    out = []
    for record in emu.requests:
        params = dict(record.params)
        if record.path.endswith("/export/events") and params.get("pageSize") != "1":
            start = int(params["start"]) if "start" in params else None
            out.append((start, int(params["end"]), params.get("cursor"), record.items))
    return out


def dataset_ids(root) -> tuple[int, int]:
    """Rows and distinct ids over every committed file, as DuckDB sees the cache folder."""
    pattern = os.path.join(root, "**", "*.parquet")
    con = duckdb.connect()
    try:
        n, ids = con.execute(
            f"select count(*), count(distinct id) from read_parquet('{pattern}', "
            "hive_partitioning=true, union_by_name=true)"
        ).fetchall()[0]
    except duckdb.IOException:  # no file yet
        return 0, 0
    return n, ids


def staged_pages(root) -> tuple[set[tuple[int | None, int, str | None]], int]:
    """The requests whose pages are stored in staging, and their rows."""
    keys, rows = set(), 0
    for ns in (n for n in os.listdir(root) if not n.startswith("_")):
        staging = os.path.join(root, ns, "_staging")
        for chain in os.listdir(staging) if os.path.isdir(staging) else []:
            cursor = None
            for seq in itertools.count():
                path = os.path.join(staging, chain, f"page-{seq:06d}")
                if not os.path.exists(path):
                    break
                with pa.memory_map(path) as source:
                    meta = orjson.loads(pa.ipc.open_file(source).schema.metadata[b"croct_pandas"])
                keys.add((meta["start"], meta["end"], cursor))
                rows += meta["rows"]
                cursor = meta["next_cursor"]
    return keys, rows


def join_workers() -> None:
    for thread in threading.enumerate():
        if thread.name.startswith("croct") and thread is not threading.current_thread():
            thread.join(timeout=30)


def test_keyboard_interrupt_at_page_k_resumes_without_refetching_stored_pages(
    emu, truth, tmp_path, monkeypatch
):
    stored: set[tuple[int | None, int, str | None]] = set()
    stored_rows = [0]
    counter = itertools.count(1)
    lock = threading.Lock()
    real_open = cache_module.open_sink

    def open_sink(*args, **kwargs):
        sink = real_open(*args, **kwargs)
        inner = sink.on_page

        def on_page(task, page):
            with lock:
                n = next(counter)
            if n == 9:
                raise KeyboardInterrupt
            inner(task, page)
            with lock:
                stored.add((task.start, task.end, page.cursor))
                stored_rows[0] += len(page.items)

        sink.on_page = on_page
        return sink

    monkeypatch.setattr(cache_module, "open_sink", open_sink)
    with pytest.raises(KeyboardInterrupt):
        read(emu, tmp_path, page_size=40, workers=2)
    join_workers()
    monkeypatch.setattr(cache_module, "open_sink", real_open)
    assert len(stored) >= 8
    emu.reset_log()
    frame = read(emu, tmp_path, page_size=40, workers=2)
    pd.testing.assert_frame_equal(frame, truth)
    requests = page_requests(emu)
    assert not {(s, e, c) for s, e, c, _ in requests} & stored
    assert sum(items for *_, items in requests) == len(truth) - stored_rows[0]
    assert dataset_ids(tmp_path) == (len(truth), len(truth))


_CHILD = textwrap.dedent(
    """
    import sys
    import croct_pandas as cp
    url, key, root = sys.argv[1:4]
    frame = cp.read_croct_events({start}, {end}, api_key=key, base_url=url, cache=root,
                                 page_size=20, workers=2, progress=False)
    print(len(frame), flush=True)
    """
).format(start=T0, end=T0 + DAY)


def child(url: str, key: str, root) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": REPO}
    return subprocess.Popen(
        [sys.executable, "-c", _CHILD, url, key, str(root)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )


def test_a_process_killed_mid_export_resumes_without_refetching_stored_pages(
    store, truth, tmp_path
):
    with Emulator(store, api_key=KEY, faults=Faults(latency_s=0.08)) as slow:
        proc = child(slow.url, KEY, tmp_path)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if staged_pages(tmp_path)[1] >= 200:
                break
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        proc.stdout.close()
        assert proc.returncode == -signal.SIGKILL, "the export ended before it could be killed"
        stored, stored_rows = staged_pages(tmp_path)
        assert 0 < stored_rows < len(truth)
        time.sleep(0.5)  # the dead child's requests in flight are logged after the latency
        slow.reset_log()
        frame = read(slow, tmp_path, page_size=20, workers=2)
        requests = page_requests(slow)
    pd.testing.assert_frame_equal(frame, truth)
    assert not {(s, e, c) for s, e, c, _ in requests} & stored
    assert sum(items for *_, items in requests) == len(truth) - stored_rows
    assert dataset_ids(tmp_path) == (len(truth), len(truth))
    with open(os.path.join(tmp_path, "_keys.json"), "rb") as fh:
        assert KEY.encode() not in fh.read()


@pytest.mark.parametrize("fail_after", [0, 7])
def test_a_crash_in_the_middle_of_a_move_leaves_a_cache_that_reads_correctly(
    emu, truth, tmp_path, monkeypatch, fail_after
):
    real_write = move_module.write_partition
    calls = itertools.count()

    def write_partition(*args, **kwargs):
        if next(calls) >= fail_after:
            raise OSError("disk gone")
        real_write(*args, **kwargs)

    monkeypatch.setattr(move_module, "write_partition", write_partition)
    with pytest.raises(OSError, match="disk gone"):
        read(emu, tmp_path)
    join_workers()
    rows, ids = dataset_ids(tmp_path)
    assert rows == ids  # each event id in exactly one committed file, even now
    monkeypatch.setattr(move_module, "write_partition", real_write)
    emu.reset_log()
    frame = read(emu, tmp_path)
    assert page_requests(emu) == []  # every chain was complete: moved again, nothing fetched
    pd.testing.assert_frame_equal(frame, truth)
    assert dataset_ids(tmp_path) == (len(truth), len(truth))


def test_a_crash_between_the_move_and_the_manifest_is_redone_without_duplicates(
    emu, truth, tmp_path, monkeypatch
):
    real_write = sink_module.write_json

    def write_json(path, doc, tmp_dir):
        if doc.get("coverage"):
            raise OSError("killed before the manifest")
        real_write(path, doc, tmp_dir)

    monkeypatch.setattr(sink_module, "write_json", write_json)
    with pytest.raises(OSError, match="before the manifest"):
        read(emu, tmp_path)
    join_workers()
    assert dataset_ids(tmp_path) == (len(truth), len(truth))
    monkeypatch.setattr(sink_module, "write_json", real_write)
    emu.reset_log()
    frame = read(emu, tmp_path)
    assert page_requests(emu) == []
    pd.testing.assert_frame_equal(frame, truth)
    assert dataset_ids(tmp_path) == (len(truth), len(truth))


def test_leftover_temporary_and_staging_files_are_ignored_and_cleaned(emu, truth, tmp_path):
    read(emu, tmp_path)
    ns = next(os.path.join(tmp_path, n) for n in os.listdir(tmp_path) if not n.startswith("_"))
    old = time.time() - 3 * 86_400
    planted = {
        "tmp": os.path.join(ns, "_tmp", "_tmp-0123"),
        "trash": os.path.join(ns, "_trash-4567", "all~5~6", "page-000000"),
        "half page": os.path.join(ns, "_staging", "all~1~2", "_tmp-89ab"),
        "bad page": os.path.join(ns, "_staging", "all~3~4", "page-000000"),
    }
    for path in planted.values():
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as fh:
            fh.write(b"PAR1 half written")
        os.utime(path, (old, old))
    for folder in ("all~1~2", "all~3~4"):
        os.utime(os.path.join(ns, "_staging", folder), (old, old))
    # the readers list only complete files inside events/
    assert dataset_ids(tmp_path) == (len(truth), len(truth))
    emu.reset_log()
    pd.testing.assert_frame_equal(read(emu, tmp_path), truth)
    assert page_requests(emu) == []
    for name, path in planted.items():
        assert not os.path.exists(path), name
    assert not os.path.exists(os.path.join(ns, "_trash-4567"))


def test_a_cache_of_another_schema_version_is_rebuilt_with_a_warning(emu, truth, tmp_path):
    read(emu, tmp_path)
    ns = next(os.path.join(tmp_path, n) for n in os.listdir(tmp_path) if not n.startswith("_"))
    manifest_path = os.path.join(ns, "_manifest.json")
    with open(manifest_path, "rb") as fh:
        doc = orjson.loads(fh.read())
    doc["version"] = "0-old"
    with open(manifest_path, "wb") as fh:
        fh.write(orjson.dumps(doc))
    emu.reset_log()
    with pytest.warns(CacheWarning, match="another cache version"):
        frame = read(emu, tmp_path)
    assert sum(items for *_, items in page_requests(emu)) == len(truth)
    pd.testing.assert_frame_equal(frame, truth)
    assert dataset_ids(tmp_path) == (len(truth), len(truth))
    with open(manifest_path, "rb") as fh:
        assert orjson.loads(fh.read())["version"] == sink_module.SCHEMA_VERSION


def test_two_processes_on_one_cache_folder_do_not_corrupt_it(store, truth, tmp_path):
    with Emulator(store, api_key=KEY, faults=Faults(latency_s=0.02)) as slow:
        procs = [child(slow.url, KEY, tmp_path) for _ in range(2)]
        outputs = [p.communicate(timeout=120)[0] for p in procs]
        assert [p.returncode for p in procs] == [0, 0]
        assert [int(out.strip()) for out in outputs] == [len(truth)] * 2
        slow.reset_log()
        frame = read(slow, tmp_path, page_size=20, workers=2)
        assert page_requests(slow) == []
    pd.testing.assert_frame_equal(frame, truth)
    assert dataset_ids(tmp_path) == (len(truth), len(truth))

"""Hot swap: a stream finishes on the generation it started on; rollback; and swapping v1 and v2
of swap_demo 50+ times, by admin call and by replacing a watched file, under a bounded load with
slow streams that span swaps: no failed request, both versions served, retired generations
unloaded and unmapped, file descriptors and memory back near where they started."""
import asyncio
import collections
import concurrent.futures
import os
import threading
import time

import pytest

from h2util import H2Client
from harness import LOCALHOST, RawClient, raw_request, request, until
from modules_util import (fd_count, loaded_generations, mapped_images, module_entry,
                          reload_module, replace_atomically, sha256_file, swap_demo_file,
                          with_filters)


def swap_config(upstream_port, path, watch, delay_ms):
    cfg = with_filters(upstream_port,
                       [{"module": "swap_demo", "config": {"delay_ms": delay_ms}}],
                       modules=[{"name": "swap_demo", "path": str(path), "watch": watch}])
    # Idle upstream connections go quickly, so that the fd count can come back to its baseline.
    cfg["clusters"][0]["idle_timeout"] = "1s"
    return cfg


def version_of(port, path="/echo"):
    r = request(port, "GET", path)
    assert r.status == 200, r
    return r.header("x-swap-version")


def test_stream_finishes_on_the_generation_it_started_on(upstream, switchyard):
    v1, v2 = swap_demo_file(1), swap_demo_file(2)
    sy = switchyard(swap_config(upstream.port, v1, False, 50))
    port = sy.port("ingress")
    assert version_of(port) == "1"
    with RawClient(port, timeout=60) as slow:
        slow.send(raw_request("GET", "/slow?hold=span"))
        until(lambda: upstream.stats()["held"] == 1, what="the slow request upstream")
        resp = reload_module(sy, "swap_demo", v2)
        assert resp.status == 200, resp
        assert version_of(port) == "2"
        old = module_entry(sy, "swap_demo")
        assert any(p.get("streams_active", 0) >= 1 for p in old.get("previous") or []), old
        upstream.release("span")
        r = slow.read_response()
    assert r.status == 200 and r.header("x-swap-version") == "1", r
    until(lambda: all(p.get("streams_active", 0) == 0
                      for p in module_entry(sy, "swap_demo").get("previous") or []),
          what="the old generation's last stream to end")


def test_rollback_makes_previous_generation_current(upstream, switchyard):
    v1, v2 = swap_demo_file(1), swap_demo_file(2)
    sy = switchyard(swap_config(upstream.port, v1, False, 0))
    port = sy.port("ingress")
    first = module_entry(sy, "swap_demo")
    resp = reload_module(sy, "swap_demo", v2)
    assert resp.status == 200, resp
    assert resp.json()["generation"] > first["generation"]
    assert version_of(port) == "2"
    resp = sy.admin("POST", "/modules/swap_demo/rollback")
    assert resp.status == 200, resp
    assert version_of(port) == "1"
    assert module_entry(sy, "swap_demo")["module_version"] == "1.0.0"


def mapped_paths(pid):
    """The files mapped into PID, as /proc/PID/maps names them."""
    with open(f"/proc/{pid}/maps") as maps:
        return {line.split(None, 5)[5].strip() for line in maps if len(line.split(None, 5)) == 6}


class IdleHttp1:
    """A keep-alive HTTP/1.1 connection: one GET /echo at a time, x-swap-version of each."""

    def __init__(self, port):
        self.client = RawClient(port, timeout=30)

    def version(self):
        self.client.send(raw_request("GET", "/echo"))
        r = self.client.read_response()
        assert r.status == 200, r
        return r.header("x-swap-version")

    def close(self):
        self.client.close()


class IdleHttp2:
    """One HTTP/2 connection (prior knowledge): a stream per GET /echo."""

    def __init__(self, port):
        self.client = H2Client(port)

    def version(self):
        r = self.client.get("/echo")
        assert r.status == 200, r
        return r.header("x-swap-version")

    def close(self):
        self.client.close()


@pytest.mark.parametrize("protocol,conn", [("http1", IdleHttp1), ("http2", IdleHttp2)])
def test_idle_keepalive_connection_does_not_hold_a_generation(tmp_path, upstream, switchyard,
                                                              protocol, conn):
    # Only streams (and their timers, callouts and posts) hold a generation: a keep-alive
    # connection idling between requests must not keep a retired one mapped.
    first = tmp_path / "libsy_swap_demo_first.so"
    first.write_bytes(swap_demo_file(1).read_bytes())  # its own private copy name
    cfg = swap_config(upstream.port, first, False, 0)
    cfg["listeners"][0]["protocols"] = [protocol]
    sy = switchyard(cfg)
    gen1 = module_entry(sy, "swap_demo")
    assert gen1["copy_path"] in mapped_paths(sy.pid), gen1
    idle = conn(sy.port("ingress"))
    try:
        assert idle.version() == "1"
        # Two swaps: generation 1 is then neither current nor kept for rollback.
        for path in (swap_demo_file(1), swap_demo_file(2)):
            resp = reload_module(sy, "swap_demo", path)
            assert resp.status == 200, resp
        entry = module_entry(sy, "swap_demo")
        assert entry["generation"] == gen1["generation"] + 2, entry
        until(lambda: gen1["copy_path"] not in mapped_paths(sy.pid), timeout=15,
              what="generation 1 to be unmapped while the idle connection is open")
        # The connection still serves, now on the current generation.
        assert idle.version() == "2"
    finally:
        idle.close()


def watch_lines(sy):
    """Log lines of the watcher waiting for an incomplete file, or of a refused watched swap."""
    log = sy.log_path.read_text(errors="replace").splitlines()
    return [line for line in log if "not complete yet" in line or "not swapped" in line]


def test_watch_waits_for_a_file_written_in_place(tmp_path, upstream, switchyard):
    # Compilers and linkers rewrite their output in place: truncate, then write. The watcher
    # must wait for the whole file, without a refusal in the log, then swap once.
    live = tmp_path / "live" / "libsy_swap_demo.so"
    live.parent.mkdir()
    replace_atomically(swap_demo_file(1), live)
    sy = switchyard(swap_config(upstream.port, live, True, 0))
    port = sy.port("ingress")
    assert version_of(port) == "1"
    before = module_entry(sy, "swap_demo")["generation"]
    data = swap_demo_file(2).read_bytes()
    with open(live, "r+b") as f:
        # Each step waits for the watcher to have looked at the file as it then is.
        pieces = [b"", data[:len(data) // 2], data[len(data) // 2:]]
        for step, piece in enumerate(pieces):
            seen = len(watch_lines(sy))
            if piece:
                f.write(piece)
            else:
                f.truncate(0)
            f.flush()
            os.fsync(f.fileno())
            if step < len(pieces) - 1:
                until(lambda: len(watch_lines(sy)) > seen, timeout=15,
                      what="the watcher to look at the incomplete file")

    def swapped():
        e = module_entry(sy, "swap_demo")
        return e["generation"] > before and e["module_version"] == "2.0.0"

    until(swapped, timeout=20, what="the watcher to swap in the complete file")
    assert version_of(port) == "2"
    log = sy.log_path.read_text(errors="replace")
    refusals = [line for line in log.splitlines()
                if "not swapped" in line or "swap refused" in line or "not an ELF" in line]
    assert not refusals, "\n".join(refusals)
    assert module_entry(sy, "swap_demo")["generation"] == before + 1


# --- under load ------------------------------------------------------------------------------

DURATION = 20.0  # seconds of load
CONNECTIONS = 200  # concurrent keep-alive connections, each sending requests back to back
# Odd, so that after the admin swaps v2 is current while the watched file still holds v1: the
# switch back to that file is then a swap too, and the versions keep alternating.
ADMIN_SWAPS = 25
FILE_SWAPS = 25
SLOW_HOLD = 1.2  # seconds upstream holds a slow request; swap_demo then adds its delay_ms


async def read_response(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif "chunked" in headers.get("transfer-encoding", "").lower():
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            body += await reader.readexactly(size + 2)
            if size == 0:
                break
    else:
        body = await reader.read()
    return status, headers, body


class Load:
    """CONNECTIONS keep-alive connections on an asyncio loop in a thread of its own, each sending
    GET /echo back to back until stopped; counts the x-swap-version of each response and keeps
    every failure."""

    def __init__(self, port, connections):
        self.port = port
        self.connections = connections
        self.versions = collections.Counter()
        self.failures = []
        self._loop = None
        self._stop = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    def start(self):
        self._thread.start()
        assert self._started.wait(10)

    def stop(self):
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)
        assert not self._thread.is_alive(), "the load did not stop"

    async def _main(self):
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._started.set()
        await asyncio.gather(*(self._client(i) for i in range(self.connections)))

    async def _client(self, i):
        writer = None
        n = 0
        while not self._stop.is_set():
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection(LOCALHOST, self.port)
                writer.write(f"GET /echo?c={i}&n={n} HTTP/1.1\r\nHost: load\r\n\r\n".encode())
                status, headers, _ = await asyncio.wait_for(read_response(reader), 30)
                n += 1
                if status != 200:
                    self.failures.append(f"connection {i} request {n}: status {status}")
                else:
                    self.versions[headers.get("x-swap-version")] += 1
                if "close" in headers.get("connection", "").lower():
                    writer.close()
                    writer = None
            except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError,
                    asyncio.LimitOverrunError, ValueError) as e:
                self.failures.append(f"connection {i} request {n}: {e!r}")
                if writer is not None:
                    writer.close()
                writer = None
        if writer is not None:
            writer.close()


class Swapper:
    """Swaps swap_demo between v1 and v2, and knows which version is current: each swap returns
    once the new generation is published."""

    def __init__(self, sy, files, live):
        self.sy = sy
        self.files = files  # {"1": path, "2": path}
        self.live = live
        self.version = "1"
        self.swaps = 0

    def other(self):
        return "2" if self.version == "1" else "1"

    def by_admin(self, path=None):
        target = self.other()
        resp = reload_module(self.sy, "swap_demo", path or self.files[target])
        assert resp.status == 200, resp
        assert module_entry(self.sy, "swap_demo")["module_version"] == f"{target}.0.0"
        self.version = target
        self.swaps += 1

    def by_file(self):
        target = self.other()
        before = module_entry(self.sy, "swap_demo")["generation"]
        replace_atomically(self.files[target], self.live)

        def published():
            e = module_entry(self.sy, "swap_demo")
            return e["generation"] > before and e["module_version"] == f"{target}.0.0"

        until(published, timeout=20, what=f"the watcher to swap in v{target}")
        self.version = target
        self.swaps += 1


def settle(predicate, what, state, timeout=30):
    """until(), with the state that kept PREDICATE false in the failure message."""
    try:
        until(predicate, timeout=timeout, what=what)
    except AssertionError as e:
        raise AssertionError(f"{e}; now: {state()}") from None


@pytest.mark.measures_memory
def test_hot_swap_under_load(tmp_path, upstream, switchyard):
    files = {"1": swap_demo_file(1), "2": swap_demo_file(2)}
    shas = {sha256_file(p) for p in files.values()}
    live = tmp_path / "live" / "libsy_swap_demo.so"
    live.parent.mkdir()
    replace_atomically(files["1"], live)
    sy = switchyard(swap_config(upstream.port, live, True, 300))
    port = sy.port("ingress")
    assert version_of(port) == "1"
    base_fds = fd_count(sy.pid)
    base_rss = sy.memory_kib("VmRSS")

    swapper = Swapper(sy, files, live)
    load = Load(port, CONNECTIONS)
    slow_results, slow_keys, releases = [], [], []
    pool = concurrent.futures.ThreadPoolExecutor(32)

    def finish_slow(client, expected, key):
        try:
            with client:
                r = client.read_response()
        except AssertionError as e:  # RawClient's way of saying closed, reset or timed out
            return key, expected, repr(e), None
        return key, expected, r.status, r.header("x-swap-version")

    def start_slow():
        # Called between swaps, by the thread that swaps: the version current now is the one
        # the new stream binds to. Once upstream has the request, the proxy has made the
        # stream, so the next swap cannot come before it.
        key = f"slow-{len(slow_keys)}"
        client = RawClient(port, timeout=60)
        client.send(raw_request("GET", f"/slow?hold={key}&ms=30000"))
        until(lambda: upstream.stats()["paths"].get("/slow", 0) >= len(slow_keys) + 1,
              what=f"{key} to reach upstream")
        slow_keys.append(key)
        slow_results.append(pool.submit(finish_slow, client, swapper.version, key))
        # Held upstream for a while, the stream stays open across the next few swaps.
        release = threading.Timer(SLOW_HOLD, upstream.release, args=[key])
        release.start()
        releases.append(release)

    load.start()
    try:
        start = time.monotonic()
        plan = ["admin"] * ADMIN_SWAPS + ["to-live"] + ["file"] * FILE_SWAPS
        for k, how in enumerate(plan):
            # Pace the swaps over the load's duration (a pace, not a synchronisation).
            time.sleep(max(0.0, start + DURATION * k / len(plan) - time.monotonic()))
            if how == "admin":
                swapper.by_admin()
            elif how == "to-live":
                # Point the module back at the watched file, untouched so far and holding v1, so
                # that from here on replacing that file is what swaps it.
                assert swapper.other() == "1"
                swapper.by_admin(live)
            else:
                swapper.by_file()
            # Every third swap (an odd step, so successive slow requests start on alternate
            # versions), a slow request that stays open over the next few swaps.
            if k % 3 == 0:
                start_slow()
        time.sleep(max(0.0, start + DURATION - time.monotonic()))
    finally:
        slow = [f.result(timeout=60) for f in slow_results]
        load.stop()
        for release in releases:
            release.join()
        for key in slow_keys:  # nothing stays held whatever happened
            upstream.release(key)
        pool.shutdown(wait=True)

    assert swapper.swaps >= 50
    assert not load.failures, f"{len(load.failures)} failed requests, e.g. {load.failures[:10]}"
    assert load.versions["1"] > 0 and load.versions["2"] > 0, load.versions
    assert set(load.versions) <= {"1", "2"}, load.versions
    assert len(slow) >= 10, slow
    bad = [s for s in slow if s[2] != 200 or s[3] != s[1]]
    assert not bad, f"slow requests not served by the generation they started on: {bad}"
    assert {s[3] for s in slow} == {"1", "2"}, slow

    # Retired generations go once their last stream has: /modules and the process's maps.
    settle(lambda: loaded_generations(module_entry(sy, "swap_demo")) <= 2,
           "at most the current and previous generations loaded",
           lambda: module_entry(sy, "swap_demo"))
    settle(lambda: len(mapped_images(sy.pid, shas)) <= 2, "no retired copy still mapped",
           lambda: mapped_images(sy.pid, shas))
    settle(lambda: fd_count(sy.pid) <= base_fds + 8, f"fd count back near {base_fds}",
           lambda: f"{fd_count(sy.pid)} open")
    rss = sy.memory_kib("VmRSS")
    assert rss <= base_rss + 96 * 1024, f"RSS grew from {base_rss} KiB to {rss} KiB"
    assert version_of(port) == swapper.version

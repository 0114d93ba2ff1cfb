"""Fixtures for the integration suite: the real switchyard binary against real peers.

    upstream        one upstream.py (asyncio HTTP/1.1 origin) on its own port
    make_upstream   a factory for more of them: make_upstream("b")
    nginx           nginx with /small, /file16k, /file4m and /big (100 MiB)
    switchyard      a factory: switchyard(config_dict) starts the proxy and waits for /ready
    free_port       a factory for free ports: free_port()

Every process is stopped at teardown; when a test fails, the tail of each one's log is printed.
"""
import os
from pathlib import Path

import pytest

import harness

SANITIZER_REPORTS = harness.SANITIZER_REPORTS


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    # Keep each phase's report on the item so fixtures can tell, at teardown, whether it failed.
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def pytest_collection_modifyitems(config, items):
    """On the sanitizer build, the tests parametrised to run a scenario on real Envoy alone (a
    differential test's Envoy half, e.g. test_wasm_sdk.py[envoy-...]) are deselected: they check
    Envoy, not our instrumented code, and the Release run has already run them. pytest's summary
    counts them as deselected; the Switchyard half of each still runs."""
    if not SANITIZER_REPORTS:
        return
    keep, envoy_only = [], []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        (envoy_only if "envoy" in params.values() else keep).append(item)
    if envoy_only:
        config.hook.pytest_deselected(items=envoy_only)
        items[:] = keep


def _failed(request):
    return any(getattr(getattr(request.node, "rep_" + when, None), "failed", False)
               for when in ("setup", "call"))


@pytest.fixture
def peers(request):
    """Every process a test started, so that a failure shows their logs."""
    started = []
    yield started
    if _failed(request):
        for p in started:
            print(p.log_tail())


@pytest.fixture
def free_port():
    return harness.free_port


@pytest.fixture
def make_upstream(tmp_path, peers):
    made = []

    def make(name="upstream"):
        up = harness.Upstream(tmp_path / "upstreams", name)
        made.append(up)
        peers.append(up)
        return up

    yield make
    dirty = []
    for up in made:
        if up.running() and up.expect_clean:
            try:
                stats = up.stats()
                if stats["protocol_errors"]:
                    dirty.append(f"{up.name}: {stats['protocol_errors']} malformed requests "
                                 f"received, last: {stats['last_protocol_error']}")
            except OSError:
                pass
        up.stop()
    assert not dirty, "the proxy sent malformed HTTP upstream: " + "; ".join(dirty)


@pytest.fixture
def upstream(make_upstream):
    return make_upstream("upstream")


@pytest.fixture
def nginx(tmp_path, peers):
    n = harness.Nginx(tmp_path / "nginx")
    peers.append(n)
    yield n
    n.stop(timeout=10)


@pytest.fixture
def switchyard(tmp_path, peers):
    """switchyard(config, start=True, name="switchyard") -> harness.Switchyard, ready."""
    started = []

    def start(config, start=True, name="switchyard"):
        sy = harness.Switchyard(tmp_path, config, name)
        started.append(sy)
        peers.append(sy)
        if start:
            sy.start()
        return sy

    yield start
    for sy in started:
        sy.stop(timeout=30)


def _sanitizer_reports():
    return set(Path(SANITIZER_REPORTS).glob("*")) if SANITIZER_REPORTS else set()


def _ubsan_reports(folder):
    found = []
    for log in sorted(folder.rglob("*.log")):
        try:
            found += [f"UBSan, in {log}: {r}" for r in harness.ubsan_reports(log.read_bytes())]
        except OSError:
            pass
    return found


@pytest.fixture(autouse=True)
def sanitizer_clean(request, monkeypatch, tmp_path):
    """Under `make test-asan`, fails the test during which any process (the proxy, a module
    preflight child, sy-module) wrote a sanitizer report: with halt_on_error a report ends the
    process, but a test that stops the proxy need not notice how it ended, and LSan only reports
    at exit. Autouse fixtures are set up first, so this one is torn down after the processes
    the test started have been stopped and have written their reports (ASan's and LSan's in
    SY_SANITIZER_REPORTS, UBSan's in the processes' logs under the test's tmp_path)."""
    if not SANITIZER_REPORTS:
        yield
        return
    if request.node.get_closest_marker("measures_memory"):
        # ASan's quarantine keeps freed memory for a while (256 MiB by default) to catch
        # use-after-free; a test that bounds the proxy's resident memory would measure the
        # quarantine instead. Only these tests turn it off, so every other one still catches
        # use-after-free of recently freed memory.
        monkeypatch.setenv("ASAN_OPTIONS",
                           os.environ.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=0")
    if request.node.get_closest_marker("crashes_on_purpose"):
        # The proxy's crash handler passes the signal on to the action before it: ASan's own
        # handler, which would report the (deliberate) crash and exit 1 instead of dying of the
        # signal. Without it, the proxy dies as it does in production; the crash happens in a
        # fixture built without sanitizers, and the rest of the process stays instrumented.
        monkeypatch.setenv("ASAN_OPTIONS", os.environ.get("ASAN_OPTIONS", "")
                           + ":handle_segv=0:handle_sigbus=0:handle_abort=0")
    before = _sanitizer_reports()
    yield
    new = sorted(_sanitizer_reports() - before)
    # A report's head says what and where; a leak report can run to thousands of lines.
    texts = [f"----- {p} -----\n" + "\n".join(p.read_text(errors="replace").splitlines()[:80])
             for p in new] + _ubsan_reports(tmp_path)
    if texts:
        pytest.fail(f"{len(texts)} sanitizer report(s) during this test:\n" + "\n".join(texts),
                    pytrace=False)

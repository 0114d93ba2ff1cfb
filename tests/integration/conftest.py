"""Fixtures for the integration suite: the real switchyard binary against real peers.

    upstream        one upstream.py (asyncio HTTP/1.1 origin) on its own port
    make_upstream   a factory for more of them: make_upstream("b")
    nginx           nginx with /small, /file16k, /file4m and /big (100 MiB)
    switchyard      a factory: switchyard(config_dict) starts the proxy and waits for /ready
    free_port       a factory for free ports: free_port()

Every process is stopped at teardown; when a test fails, the tail of each one's log is printed.
"""
import pytest

import harness


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    # Keep each phase's report on the item so fixtures can tell, at teardown, whether it failed.
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


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

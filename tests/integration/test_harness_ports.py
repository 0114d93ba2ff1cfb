"""The harness itself: a proxy whose port another process took between free_port() and its
bind is started again on a new port, instead of failing the test it was started for."""
import socket

import pytest

import harness
from harness import LOCALHOST, proxy_all, request


@pytest.mark.parametrize("lost", ["admin", "listener"])
def test_a_port_taken_before_the_proxy_binds_it_is_picked_again(lost, upstream, switchyard,
                                                                 monkeypatch, capfd):
    """complete() picks the admin port first, then each listener's. The Nth pick is handed a
    port this test already listens on, as if another process had taken it in the meantime:
    the proxy exits with "Address already in use", and start() must start it again on a fresh
    port (before the retry, start() raised and the test failed)."""
    with socket.socket() as taken:
        taken.bind((LOCALHOST, 0))
        taken.listen()
        busy = taken.getsockname()[1]
        picks = iter([None, busy] if lost == "listener" else [busy])
        real = harness.free_port
        monkeypatch.setattr(harness, "free_port", lambda: next(picks, None) or real())

        sy = switchyard(proxy_all(upstream.port))

        assert busy not in (sy.admin_port, sy.port("ingress"))
        assert request(sy.port("ingress"), "GET", "/echo").status == 200
        assert f"{LOCALHOST}:{busy}: Address already in use" in sy.log_path.read_text()
        assert f"harness: {sy.name} lost a port" in capfd.readouterr().err

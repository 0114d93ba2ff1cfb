"""ABI 1.2 flow for network filters on a TCP proxy listener, with real sockets on both ends: a
filter holds bytes (SY_STOP_AND_WATERMARK) and passes them on later with conn_resume, in order;
100 MiB through a filter that holds and releases pass with bounded memory; reading from a side
is paused and resumed (conn_pause_reading); each direction ends on its own (a FIN is passed on
as a FIN, the other way keeps flowing), also when a filter half-closes (conn_shutdown_write).
The filter is tests/abi/fx_netflow.c."""
import hashlib
import socket
import threading

import pytest

from harness import RawClient, cluster, until
from modules_util import fixture_file
from tcppeer import Peer, recv_queue

MiB = 1024 * 1024
RSS_BUDGET_KIB = 32 * 1024


@pytest.fixture
def peer():
    p = Peer()
    yield p
    p.close()


def start(switchyard, peer, mode):
    return switchyard({
        "modules": [{"name": "netflow", "path": str(fixture_file("netflow"))}],
        "listeners": [{"name": "tcp", "tcp_proxy": {"cluster": "backend"},
                       "network_filters": [{"module": "netflow", "config": {"mode": mode}}]}],
        "clusters": [cluster("backend", peer.port)],
    })


def log_has(sy, text):
    with open(sy.log_path, errors="replace") as f:
        return text in f.read()


def test_held_bytes_are_released_in_order_by_a_timer(switchyard, peer):
    sy = start(switchyard, peer, "trigger")
    with RawClient(sy.port("tcp")) as c:
        peer.accept()
        c.send(b"one")
        until(lambda: log_has(sy, "netflow holding 3"), what="the filter holds 'one'")
        c.send(b"two")
        # Called again with what it holds plus the new bytes, which it holds too.
        until(lambda: log_has(sy, "netflow holding 6"), what="the filter holds 'onetwo'")
        # Held, not passed: had the proxy written 'one' on, it would be readable here already
        # (it is written before the next bytes are even read).
        assert peer.nothing_readable()
        c.send(b"GO")
        assert peer.read_exact(8) == b"onetwoGO"
        # Bytes after a release are held again, and the client's FIN with them.
        c.send(b"tail")
        c.sock.shutdown(socket.SHUT_WR)
        assert peer.read_exact(4) == b"tail"
        assert peer.conn.recv(1) == b"", "the client's FIN reaches the upstream after its bytes"
        # Half-closed: the other direction still flows.
        peer.conn.sendall(b"answer")
        assert c.read_exact(6) == b"answer"
        peer.conn.shutdown(socket.SHUT_WR)
        assert c.read_until_close() == b""


@pytest.mark.measures_memory
def test_100mib_through_a_holding_filter_with_bounded_memory(switchyard, peer):
    sy = start(switchyard, peer, "trickle")
    before = sy.memory_kib("VmHWM")
    total = 100 * MiB
    piece = bytes(range(256)) * 1024  # 256 KiB
    want = hashlib.sha256()
    got = {"n": 0, "sha": hashlib.sha256()}

    def sink():
        conn = peer.accept()
        conn.settimeout(120)
        while True:
            data = conn.recv(1 << 16)
            if not data:
                return
            got["n"] += len(data)
            got["sha"].update(data)

    reader = threading.Thread(target=sink)
    with RawClient(sy.port("tcp"), timeout=120) as c:
        reader.start()
        sent = 0
        while sent < total:
            n = min(len(piece), total - sent)
            c.send(piece[:n])
            want.update(piece[:n])
            sent += n
        c.sock.shutdown(socket.SHUT_WR)
        reader.join(180)
    assert not reader.is_alive(), "the upstream never saw the end"
    assert got["n"] == total
    assert got["sha"].hexdigest() == want.hexdigest()
    growth = sy.memory_kib("VmHWM") - before
    assert growth < RSS_BUDGET_KIB, f"peak RSS grew by {growth} KiB for 100 MiB"


def test_reading_from_the_upstream_is_paused_and_resumed(switchyard, peer):
    sy = start(switchyard, peer, "pause")
    with RawClient(sy.port("tcp")) as c:
        conn = peer.accept()
        proxy_port = conn.getpeername()[1]
        conn.sendall(b"abc")
        # The proxy does not read: the bytes wait in its socket's receive queue, so they
        # cannot have reached the client.
        until(lambda: recv_queue(proxy_port, peer.port) == 3,
              what="3 bytes unread in the proxy's upstream socket")
        c.sock.setblocking(False)
        with pytest.raises(BlockingIOError):
            c.sock.recv(1)
        c.sock.setblocking(True)
        c.send(b"R")
        assert c.read_exact(3) == b"abc"
        assert log_has(sy, "netflow reading upstream again")


def test_the_upstream_half_closes_first_and_the_client_still_sends(switchyard, peer):
    sy = start(switchyard, peer, "pause")
    with RawClient(sy.port("tcp")) as c:
        conn = peer.accept()
        c.send(b"R")  # the filter reads the upstream again (and drops this byte)
        until(lambda: log_has(sy, "netflow reading upstream again"))
        conn.sendall(b"bye")
        conn.shutdown(socket.SHUT_WR)
        assert c.read_until_close() == b"bye", "the upstream's FIN reaches the client"
        # The client's side is still open toward the upstream.
        c.send(b"still here")
        assert peer.read_exact(10) == b"still here"
        c.sock.shutdown(socket.SHUT_WR)
        assert conn.recv(1) == b""


def test_a_filter_half_closes_toward_the_client(switchyard, peer):
    sy = start(switchyard, peer, "trigger")
    with RawClient(sy.port("tcp")) as c:
        peer.accept()
        c.send(b"BYE")
        assert peer.read_exact(3) == b"BYE"
        assert c.read_until_close() == b"", "conn_shutdown_write sends the client a FIN"
        # Only that direction ended: the client still reaches the upstream (held until "GO").
        c.send(b"moreGO")
        assert peer.read_exact(6) == b"moreGO"
        peer.conn.sendall(b"dropped")  # toward an ended direction: discarded, not an error
        c.sock.shutdown(socket.SHUT_WR)
        assert peer.conn.recv(1) == b""


def test_a_plain_tunnel_passes_the_clients_fin_and_the_upstream_still_answers(switchyard, peer):
    # No filter at all: the client's FIN goes on as a FIN (it used to close both sides), and
    # the answer the upstream sends afterwards still reaches the client.
    sy = switchyard({"listeners": [{"name": "tcp", "tcp_proxy": {"cluster": "backend"}}],
                     "clusters": [cluster("backend", peer.port)]})
    with RawClient(sy.port("tcp")) as c:
        conn = peer.accept()
        c.send(b"question")
        c.sock.shutdown(socket.SHUT_WR)
        assert peer.read_exact(8) == b"question"
        assert conn.recv(1) == b"", "the client's FIN reaches the upstream"
        conn.sendall(b"answer after the FIN")
        conn.shutdown(socket.SHUT_WR)
        assert c.read_until_close() == b"answer after the FIN"

"""A raw TCP peer for TCP proxy tests: a real listener whose accepted connections the test
drives byte by byte, and what the kernel holds unread on a socket."""
import select
import socket

from harness import LOCALHOST


class Peer:
    """The upstream: a real TCP listener; the test accepts the proxy's connections one by one."""

    def __init__(self):
        self.listener = socket.socket()
        self.listener.bind((LOCALHOST, 0))
        self.listener.listen(4)
        self.port = self.listener.getsockname()[1]
        self.conn = None
        self.accepted = []

    def accept(self):
        """The next connection the proxy makes; it becomes self.conn."""
        self.listener.settimeout(10)
        self.conn, _ = self.listener.accept()
        self.conn.settimeout(15)
        self.accepted.append(self.conn)
        return self.conn

    def read_exact(self, n, conn=None):
        conn = conn or self.conn
        data = b""
        while len(data) < n:
            piece = conn.recv(n - len(data))
            assert piece, f"upstream saw EOF after {data!r}"
            data += piece
        return data

    def nothing_readable(self, conn=None):
        """True when no byte and no EOF is waiting on the upstream's socket right now."""
        readable, _, _ = select.select([conn or self.conn], [], [], 0)
        return not readable

    def close(self):
        for c in self.accepted:
            c.close()
        self.listener.close()


def recv_queue(local_port, remote_port):
    """The receive queue (bytes the kernel holds, unread) of the TCP socket LOCAL -> REMOTE on
    127.0.0.1, from /proc/net/tcp; None when there is no such socket."""
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            local, remote, queues = fields[1], fields[2], fields[4]
            if (int(local.split(":")[1], 16) == local_port
                    and int(remote.split(":")[1], 16) == remote_port):
                return int(queues.split(":")[1], 16)
    return None

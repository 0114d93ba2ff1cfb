"""Helper process for the memory figure: opens N keep-alive connections to a port, makes one
request on each (so that every connection has really been accepted and served), leaves them
idle, prints one JSON line {"reached": n, "error": ..., "seconds": s}, and holds them until its
standard input closes.

The connections come from many loopback source addresses (127.0.1.x) so that N is not limited
by one address's ephemeral ports; the open-file limit is raised to what the kernel allows.
"""
import argparse
import json
import resource
import socket
import sys
import time


def raise_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for limit in (max(hard, want), hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
            return
        except (ValueError, OSError):
            continue


def read_response(sock):
    """Reads one response with a Content-Length body; returns its status."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before the response head")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed in the body")
        rest += chunk
    return status


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", default="/small")
    ap.add_argument("--count", type=int, required=True)
    args = ap.parse_args()
    raise_nofile(args.count + 1024)
    request = f"GET {args.path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode()
    socks, error = [], None
    t0 = time.monotonic()
    try:
        for i in range(args.count):
            s = socket.socket()
            socks.append(s)
            s.settimeout(10)
            s.bind((f"127.0.1.{1 + i % 250}", 0))
            s.connect(("127.0.0.1", args.port))
            s.sendall(request)
            status = read_response(s)
            if status != 200:
                raise ConnectionError(f"status {status} on connection {i + 1}")
    except (OSError, ValueError) as e:
        error = f"connection {len(socks)}: {e!r}"
        socks.pop().close()
    print(json.dumps({"reached": len(socks), "error": error,
                      "seconds": round(time.monotonic() - t0, 2)}), flush=True)
    sys.stdin.read()  # hold the connections until the harness closes our stdin
    for s in socks:
        s.close()


if __name__ == "__main__":
    main()

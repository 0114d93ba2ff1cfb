#!/usr/bin/env python3
"""Round trip of one small gRPC message over a module's streaming callout (ABI 1.2) against a
direct grpcio client to the same server, side by side in one run.

    ~/.cache/switchyard/venv/bin/python bench/grpc_callout_rtt.py [--messages 5000] [--size 16]

Both sides do ping-pong on one bidirectional stream to the same in-process grpcio server
(/switchyard.test.Echo/Bidi, tests/integration/test_grpc.py): send one message, wait for its
echo, send the next. The callout side is tests/abi/fx_stream_callout.c (x-mode: grpc) in
build/switchyard with one worker; it times each message from its send to its echo's arrival
with CLOCK_MONOTONIC inside the module. The direct side times the same with a grpcio
stream_stream call in this process (Python's overhead included: that is what a module
linking the gRPC C++ client with its own threads would trade against).
"""
import argparse
import queue
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "integration"))

import grpc  # noqa: E402

import harness  # noqa: E402
from modules_util import fixture_file  # noqa: E402
from test_grpc import SERVICE, GrpcServer  # noqa: E402


def percentile(values, p):
    values = sorted(values)
    rank = max(1, (len(values) * p + 99) // 100)
    return values[rank - 1]


def direct(port, messages, payload):
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    call = channel.stream_stream(f"/{SERVICE}/Bidi")
    outbox = queue.Queue()

    def requests():
        while True:
            item = outbox.get()
            if item is None:
                return
            yield item

    rtts = []
    replies = call(requests())
    for i in range(messages + 100):  # the first 100 warm the channel up
        start = time.perf_counter_ns()
        outbox.put(payload)
        next(replies)
        if i >= 100:
            rtts.append((time.perf_counter_ns() - start) // 1000)
    outbox.put(None)
    for _ in replies:
        pass
    channel.close()
    return rtts


def via_callout(port, messages, payload):
    cfg = harness.proxy_all(port)
    cfg["workers"] = 1
    cfg["listeners"][0]["filters"] = [{"module": "stream_callout"}]
    cfg["modules"] = [{"name": "stream_callout", "path": str(fixture_file("stream_callout"))}]
    cfg["clusters"].append(harness.cluster("grpc", port, protocol="http2"))
    cfg["access_log"] = {"path": "/dev/null"}
    with tempfile.TemporaryDirectory() as d:
        sy = harness.Switchyard(Path(d), cfg)
        sy.start()
        try:
            headers = {"x-mode": "grpc", "x-cluster": "grpc",
                       "x-callout-path": f"/{SERVICE}/Bidi"}
            # Warm-up: the pooled connection to the server exists afterwards.
            harness.request(sy.port("ingress"), "POST", "/", body=b"\n".join([payload] * 100),
                            headers=headers)
            r = harness.request(sy.port("ingress"), "POST", "/",
                                body=b"\n".join([payload] * messages), headers=headers,
                                timeout=300)
            assert r.status == 200 and r.header("x-callout-messages") == str(messages), r
            return int(r.header("x-callout-rtt-p50-us")), int(r.header("x-callout-rtt-p99-us"))
        finally:
            sy.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=5000)
    ap.add_argument("--size", type=int, default=16, help="message size in bytes")
    args = ap.parse_args()
    payload = b"m" * args.size
    server = GrpcServer()
    try:
        p50, p99 = via_callout(server.port, args.messages, payload)
        rtts = direct(server.port, args.messages, payload)
    finally:
        server.stop()
    print(f"{args.messages} round trips of a {args.size}-byte gRPC message, ping-pong on one "
          f"bidi stream, same grpcio server:")
    print(f"{'':32} {'p50 us':>8} {'p99 us':>8}")
    print(f"{'streaming callout (module)':32} {p50:>8} {p99:>8}")
    print(f"{'direct grpcio client (Python)':32} {percentile(rtts, 50):>8} "
          f"{percentile(rtts, 99):>8}")


if __name__ == "__main__":
    main()

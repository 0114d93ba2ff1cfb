"""gRPC through the proxy: HTTP/2 downstream to an HTTP/2 upstream (cluster protocol http2),
with a Python gRPC client and server (grpcio, generic handlers and raw bytes: no protoc).
Unary and streaming calls in every direction, metadata and trailers (grpc-status,
grpc-message, custom trailing metadata) end to end, errors passed through, deadlines and
cancellation carried upstream; cleartext and TLS on either side.
"""
import hashlib
import json
import queue
import threading
from concurrent import futures

import grpc
import pytest

from harness import LOCALHOST, cluster, to_cluster, until
from tlsutil import certs  # noqa: F401 (fixture)

SERVICE = "switchyard.test.Echo"
MiB = 1024 * 1024
MESSAGE_LIMITS = [("grpc.max_send_message_length", 16 * MiB),
                  ("grpc.max_receive_message_length", 16 * MiB)]
ERROR_MESSAGE = "bad thing: ünïcödé, 100% \"quoted\"\nsecond line"


class GrpcServer:
    """An in-process gRPC server on 127.0.0.1 (cleartext, or TLS with CREDENTIALS) serving
    /switchyard.test.Echo/*:

      Unary          echoes the request; initial metadata x-initial, trailing x-trailer and
                     x-trailer-bin (binary)
      Metadata       JSON: the invocation metadata it received and the deadline's time left
      ServerStream   request b"N:SIZE": N messages of SIZE bytes, b"i:" then filler
      ClientStream   JSON {count, length, sha256} of what was streamed to it
      Bidi           echoes every message as it arrives
      Fail           request b"CODE_NAME": aborts with that status, ERROR_MESSAGE, and the
                     trailing metadata x-why
      FailMidStream  three messages, then INVALID_ARGUMENT
      Hold           one message, then waits until the client cancels (sets self.cancelled)
    """

    def __init__(self, credentials=None):
        self.cancelled = threading.Event()
        self.calls = 0
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=32),
                                  options=MESSAGE_LIMITS)
        handlers = {
            "Unary": grpc.unary_unary_rpc_method_handler(self.unary),
            "Metadata": grpc.unary_unary_rpc_method_handler(self.metadata),
            "ServerStream": grpc.unary_stream_rpc_method_handler(self.server_stream),
            "ClientStream": grpc.stream_unary_rpc_method_handler(self.client_stream),
            "Bidi": grpc.stream_stream_rpc_method_handler(self.bidi),
            "Fail": grpc.unary_unary_rpc_method_handler(self.fail),
            "FailMidStream": grpc.unary_stream_rpc_method_handler(self.fail_mid_stream),
            "Hold": grpc.unary_stream_rpc_method_handler(self.hold),
        }
        self.server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE, handlers),))
        address = f"{LOCALHOST}:0"
        if credentials is None:
            self.port = self.server.add_insecure_port(address)
        else:
            self.port = self.server.add_secure_port(address, credentials)
        self.server.start()

    def stop(self):
        self.server.stop(grace=None).wait(10)

    def unary(self, request, context):
        self.calls += 1
        context.send_initial_metadata((("x-initial", "i"),))
        context.set_trailing_metadata((("x-trailer", "t"), ("x-trailer-bin", b"\x00\x01\xff")))
        return request

    def metadata(self, request, context):
        self.calls += 1
        md = [[k, v if isinstance(v, str) else v.hex()] for k, v in context.invocation_metadata()]
        return json.dumps({"metadata": md, "time_remaining": context.time_remaining(),
                           "peer": context.peer()}).encode()

    def server_stream(self, request, context):
        self.calls += 1
        count, size = (int(x) for x in request.split(b":"))
        for i in range(count):
            head = b"%d:" % i
            yield head + b"x" * max(0, size - len(head))

    def client_stream(self, request_iterator, context):
        self.calls += 1
        digest, count, length = hashlib.sha256(), 0, 0
        for message in request_iterator:
            digest.update(message)
            count += 1
            length += len(message)
        return json.dumps({"count": count, "length": length,
                           "sha256": digest.hexdigest()}).encode()

    def bidi(self, request_iterator, context):
        self.calls += 1
        for message in request_iterator:
            yield message

    def fail(self, request, context):
        self.calls += 1
        context.set_trailing_metadata((("x-why", "because"),))
        context.abort(getattr(grpc.StatusCode, request.decode()), ERROR_MESSAGE)

    def fail_mid_stream(self, request, context):
        self.calls += 1
        for i in range(3):
            yield b"before-%d" % i
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "failed after three")

    def hold(self, request, context):
        self.calls += 1
        context.add_callback(self.cancelled.set)
        yield b"first"
        while context.is_active():
            self.cancelled.wait(0.05)


@pytest.fixture
def grpc_server():
    s = GrpcServer()
    yield s
    s.stop()


def grpc_config(port, protocols=("http2",), cluster_tls=None, **listener_extra):
    extra = {"protocol": "http2"}
    if cluster_tls:
        extra["tls"] = cluster_tls
    return {"listeners": [{"name": "ingress", "protocols": list(protocols),
                           "routes": [to_cluster("grpc", {"prefix": "/"}, "grpc")],
                           **listener_extra}],
            "clusters": [cluster("grpc", port, **extra)]}


def method(channel, name, kind="unary_unary"):
    return getattr(channel, kind)(f"/{SERVICE}/{name}")


def insecure(port):
    return grpc.insecure_channel(f"{LOCALHOST}:{port}", options=MESSAGE_LIMITS)


def exercise_unary(channel):
    reply, call = method(channel, "Unary").with_call(b"hello grpc", timeout=10,
                                                     metadata=[("x-client", "c")])
    assert reply == b"hello grpc"
    assert call.code() == grpc.StatusCode.OK
    assert ("x-initial", "i") in call.initial_metadata(), call.initial_metadata()
    trailing = dict(call.trailing_metadata())
    assert trailing.get("x-trailer") == "t", trailing
    assert trailing.get("x-trailer-bin") == b"\x00\x01\xff", trailing


# --- the peers alone -----------------------------------------------------------------------


def test_peer_grpc_direct(grpc_server):
    # Without the proxy: if this fails, the tests below say nothing about switchyard.
    with insecure(grpc_server.port) as channel:
        exercise_unary(channel)


# --- through the proxy ---------------------------------------------------------------------


@pytest.mark.parametrize("protocols", [["http2"], ["http1", "http2"]], ids=["h2", "h1+h2"])
def test_unary_with_metadata_and_trailers(grpc_server, switchyard, protocols):
    sy = switchyard(grpc_config(grpc_server.port, protocols))
    with insecure(sy.port("ingress")) as channel:
        exercise_unary(channel)
        for size in (0, 1, 100_000, 4 * MiB):
            data = bytes(range(256)) * (size // 256) + b"z" * (size % 256)
            assert method(channel, "Unary")(data, timeout=30) == data, size
    e = sy.wait_access_entry(lambda e: e.get("path") == f"/{SERVICE}/Unary")
    assert e["protocol"] == "HTTP/2" and e["status"] == 200 and e["method"] == "POST", e
    assert e["response_flags"] == "-" and e["details"] == "", e
    until(lambda: sy.stat("listener.ingress.rq_http2") == 5, what="rq_http2 == 5")


def test_request_metadata_and_deadline_reach_the_server(grpc_server, switchyard):
    sy = switchyard(grpc_config(grpc_server.port))
    with insecure(sy.port("ingress")) as channel:
        reply = method(channel, "Metadata")(b"", timeout=20, metadata=[
            ("x-client", "c"), ("x-client-bin", b"\x00\xfe")])
    got = json.loads(reply)
    md = dict((k, v) for k, v in got["metadata"])
    assert md.get("x-client") == "c", md
    assert md.get("x-client-bin") == "00fe", md
    # grpc-timeout was carried upstream: the server knows the deadline. (Not "<= 20": gRPC
    # writes the timeout in whole units of its choosing, rounded up, and the server measures
    # from its own clock, so 20.09 s has been seen; what matters is that it is about 20, not
    # absent and not the server's default.)
    assert got["time_remaining"] is not None and 0 < got["time_remaining"] <= 21, got


def test_server_streaming(grpc_server, switchyard):
    sy = switchyard(grpc_config(grpc_server.port))
    with insecure(sy.port("ingress")) as channel:
        replies = list(method(channel, "ServerStream", "unary_stream")(b"200:1000", timeout=30))
        assert len(replies) == 200
        assert all(r.startswith(b"%d:" % i) and len(r) == 1000 for i, r in enumerate(replies))
        big = list(method(channel, "ServerStream", "unary_stream")(b"20:1000000", timeout=60))
        assert [len(r) for r in big] == [1_000_000] * 20


def test_client_streaming(grpc_server, switchyard):
    sy = switchyard(grpc_config(grpc_server.port))
    messages = [bytes([i % 256]) * (i * 517) for i in range(100)]
    with insecure(sy.port("ingress")) as channel:
        reply = method(channel, "ClientStream", "stream_unary")(iter(messages), timeout=30)
    got = json.loads(reply)
    assert got["count"] == 100 and got["length"] == sum(map(len, messages))
    assert got["sha256"] == hashlib.sha256(b"".join(messages)).hexdigest()


def test_bidi_streaming_ping_pong(grpc_server, switchyard):
    # Each message is sent only once the previous one has come back: a proxy that held either
    # direction until the end of the stream would deadlock this (and time out).
    sy = switchyard(grpc_config(grpc_server.port))
    echoed = queue.Queue()
    received = []

    def requests():
        for i in range(100):
            yield b"message %d" % i
            echoed.get(timeout=10)

    with insecure(sy.port("ingress")) as channel:
        call = method(channel, "Bidi", "stream_stream")(requests(), timeout=60)
        for reply in call:
            received.append(reply)
            echoed.put(reply)
        assert call.code() == grpc.StatusCode.OK
    assert received == [b"message %d" % i for i in range(100)]


def test_bidi_streaming_bulk(grpc_server, switchyard):
    sy = switchyard(grpc_config(grpc_server.port))
    messages = [bytes([i]) * 65536 for i in range(100)]  # 6.4 MB each way, past every window
    with insecure(sy.port("ingress")) as channel:
        replies = list(method(channel, "Bidi", "stream_stream")(iter(messages), timeout=60))
    assert replies == messages


@pytest.mark.parametrize("code", ["INVALID_ARGUMENT", "PERMISSION_DENIED", "UNAVAILABLE",
                                  "NOT_FOUND"])
def test_error_status_and_message_pass_through(grpc_server, switchyard, code):
    sy = switchyard(grpc_config(grpc_server.port))
    with insecure(sy.port("ingress")) as channel:
        with pytest.raises(grpc.RpcError) as info:
            method(channel, "Fail")(code.encode(), timeout=10)
    err = info.value
    assert err.code() == getattr(grpc.StatusCode, code), err
    assert err.details() == ERROR_MESSAGE, err.details()
    assert ("x-why", "because") in err.trailing_metadata(), err.trailing_metadata()
    # The error is gRPC's, in trailers of a 200: the proxy did not turn it into its own.
    e = sy.wait_access_entry(lambda e: e.get("path") == f"/{SERVICE}/Fail")
    assert e["status"] == 200 and e["response_flags"] == "-", e


def test_error_after_messages(grpc_server, switchyard):
    sy = switchyard(grpc_config(grpc_server.port))
    received = []
    with insecure(sy.port("ingress")) as channel:
        call = method(channel, "FailMidStream", "unary_stream")(b"", timeout=10)
        with pytest.raises(grpc.RpcError) as info:
            for reply in call:
                received.append(reply)
    assert received == [b"before-0", b"before-1", b"before-2"]
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details() == "failed after three"


def test_unknown_method_is_unimplemented(grpc_server, switchyard):
    sy = switchyard(grpc_config(grpc_server.port))
    with insecure(sy.port("ingress")) as channel:
        with pytest.raises(grpc.RpcError) as info:
            channel.unary_unary(f"/{SERVICE}/NoSuchMethod")(b"", timeout=10)
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_cancellation_reaches_the_server(grpc_server, switchyard):
    sy = switchyard(grpc_config(grpc_server.port))
    with insecure(sy.port("ingress")) as channel:
        call = method(channel, "Hold", "unary_stream")(b"", timeout=30)
        assert next(call) == b"first"
        call.cancel()
        until(grpc_server.cancelled.is_set, timeout=10,
              what="the server to see the cancellation (RST_STREAM carried upstream)")
        # The connection to the proxy still serves.
        assert method(channel, "Unary")(b"after", timeout=10) == b"after"


def test_many_concurrent_calls_on_one_channel(grpc_server, switchyard):
    sy = switchyard(grpc_config(grpc_server.port))
    with insecure(sy.port("ingress")) as channel:
        unary = method(channel, "Unary")
        pending = [unary.future(b"call %d" % i, timeout=30) for i in range(200)]
        assert [f.result() for f in pending] == [b"call %d" % i for i in range(200)]
    assert sy.stat("listener.ingress.cx_http2") == 1


# --- TLS ---------------------------------------------------------------------------------------


def secure_channel(port, certs):
    creds = grpc.ssl_channel_credentials(root_certificates=certs.ca.read_bytes())
    return grpc.secure_channel(f"{LOCALHOST}:{port}", creds, options=MESSAGE_LIMITS + [
        ("grpc.ssl_target_name_override", "a.test"), ("grpc.default_authority", "a.test")])


def test_grpc_over_tls_downstream(certs, grpc_server, switchyard):
    sy = switchyard(grpc_config(grpc_server.port, tls={
        "certificate": str(certs.a.chain), "private_key": str(certs.a.key)}))
    with secure_channel(sy.port("ingress"), certs) as channel:
        exercise_unary(channel)
        replies = list(method(channel, "Bidi", "stream_stream")(
            iter([b"a", b"b", b"c"]), timeout=10))
        assert replies == [b"a", b"b", b"c"]
    e = sy.wait_access_entry(lambda e: e.get("path") == f"/{SERVICE}/Unary")
    assert e["protocol"] == "HTTP/2" and e["tls_version"] == "TLSv1.3", e


@pytest.fixture
def grpc_tls_server(certs):
    creds = grpc.ssl_server_credentials([(certs.a.key.read_bytes(),
                                           certs.a.chain.read_bytes())])
    s = GrpcServer(creds)
    yield s
    s.stop()


def test_grpc_tls_downstream_and_upstream(certs, grpc_tls_server, switchyard):
    sy = switchyard(grpc_config(
        grpc_tls_server.port, cluster_tls={"ca": str(certs.ca), "sni": "a.test"},
        tls={"certificate": str(certs.a.chain), "private_key": str(certs.a.key)}))
    with secure_channel(sy.port("ingress"), certs) as channel:
        exercise_unary(channel)
        with pytest.raises(grpc.RpcError) as info:
            method(channel, "Fail")(b"PERMISSION_DENIED", timeout=10)
        assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert info.value.details() == ERROR_MESSAGE
    assert grpc_tls_server.calls == 2


def test_grpc_upstream_tls_wrong_ca_is_unavailable(certs, grpc_tls_server, switchyard):
    sy = switchyard(grpc_config(grpc_tls_server.port,
                                cluster_tls={"ca": str(certs.other_ca), "sni": "a.test"}))
    with insecure(sy.port("ingress")) as channel:
        with pytest.raises(grpc.RpcError) as info:
            method(channel, "Unary")(b"x", timeout=10)
    # A 502 from the proxy: gRPC clients map it to UNAVAILABLE.
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE, info.value
    assert grpc_tls_server.calls == 0
    until(lambda: sy.stat("cluster.grpc.tls_handshake_error") >= 1,
          what="cluster.grpc.tls_handshake_error")

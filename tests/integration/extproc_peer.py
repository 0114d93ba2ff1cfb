"""A scripted ext_proc server (envoy.service.ext_proc.v3.ExternalProcessor/Process) on grpcio,
speaking the project's own protos (modules/proto, through protoutil), for test_ext_proc.py and
test_ext_proc_envoy.py.

One server serves many cases: the behaviour of each side stream is chosen by the `x-ep` header
of the HTTP request (looked up in the first message's headers), naming a scenario registered
with `processor.scenario(name)(fn)`. A scenario is a function fn(stream, msg) called for every
ProcessingRequest; it returns a list of ProcessingResponse to send (possibly empty: the server
keeps quiet), or CLOSE to end the call with OK, or calls stream.context.abort(...). Without a
scenario (or x-ep), every message gets a CONTINUE of its own type. An answer may also be raw
bytes, sent as the gRPC message as they are (a processor that speaks garbage). A scenario that
puts a callable in stream.state["after_end"] has it called once the request iterator has run
out, before the call ends (to keep it open, say). The iterator runs out on the proxy's
half-close, but also, with grpcio, on a reset whose empty receive is seen before the cancel; the
two are told apart by stream.terminated, set when the call terminates: a cancelled call
terminates while the handler still runs, a half-closed one only once the handler has returned.

Every stream is recorded (stream.messages, stream.metadata, stream.ended, stream.terminated) so
a test can assert what the proxy sent.
"""
import socket
import threading
from concurrent import futures

import grpc
import h2.config
import h2.connection
import h2.events
import h2.exceptions

import protoutil

pb = protoutil.load("envoy.service.ext_proc.v3.external_processor_pb2")
pb_grpc = protoutil.load("envoy.service.ext_proc.v3.external_processor_pb2_grpc")
core = protoutil.load("envoy.config.core.v3.base_pb2")
mode_pb = protoutil.load("envoy.extensions.filters.http.ext_proc.v3.processing_mode_pb2")

CLOSE = object()
PATH = "/envoy.service.ext_proc.v3.ExternalProcessor/Process"

# ProcessingRequest's oneof name -> ProcessingResponse's field for the answer.
ANSWER = {
    "request_headers": "request_headers",
    "response_headers": "response_headers",
    "request_body": "request_body",
    "response_body": "response_body",
    "request_trailers": "request_trailers",
    "response_trailers": "response_trailers",
}


def kind(msg):
    return msg.WhichOneof("request")


def headers_of(msg):
    """[(name, bytes value)] of a headers or trailers message."""
    k = kind(msg)
    block = getattr(msg, k)
    hm = block.trailers if k.endswith("trailers") else block.headers
    return [(h.key, h.raw_value if h.raw_value else h.value.encode()) for h in hm.headers]


def header(msg, name):
    for n, v in headers_of(msg):
        if n == name:
            return v.decode("latin-1")
    return None


def hvo(key, value, append=None, action=None, raw=True):
    """A HeaderValueOption; the value goes in raw_value (as Envoy's servers do) unless RAW is
    False."""
    h = core.HeaderValueOption()
    h.header.key = key
    if raw:
        h.header.raw_value = value if isinstance(value, bytes) else value.encode()
    else:
        h.header.value = value
    if append is not None:
        h.append.value = append
    if action is not None:
        h.append_action = action
    return h


def mutation(set_headers=(), remove=()):
    m = pb.HeaderMutation()
    for x in set_headers:
        m.set_headers.append(x if isinstance(x, core.HeaderValueOption) else hvo(*x))
    m.remove_headers.extend(remove)
    return m


def answer(msg, set_headers=(), remove=(), body=None, clear_body=False, replace=False,
           clear_route_cache=False):
    """The answer of MSG's own type: CONTINUE (or CONTINUE_AND_REPLACE) with mutations."""
    k = kind(msg)
    r = pb.ProcessingResponse()
    target = getattr(r, ANSWER[k])
    if k.endswith("trailers"):
        target.header_mutation.CopyFrom(mutation(set_headers, remove))
        return r
    common = target.response
    common.SetInParent()
    if set_headers or remove:
        common.header_mutation.CopyFrom(mutation(set_headers, remove))
    if body is not None:
        common.body_mutation.body = body
    if clear_body:
        common.body_mutation.clear_body = True
    if replace:
        common.status = pb.CommonResponse.CONTINUE_AND_REPLACE
    if clear_route_cache:
        common.clear_route_cache = True
    return r


def many_entries(stream, msg):
    """A scenario: the message the request's x-at header names gets a mutation whose lists are
    long but harmless: x-same set_headers all of one name (the block gains one line), x-remove
    remove_headers of names the message does not have. (Envoy's header-count pre-check counts
    each list's entries, not what they do.)"""
    if kind(msg) != stream.first_header("x-at"):
        return [answer(msg)]
    same = int(stream.first_header("x-same") or 0)
    remove = int(stream.first_header("x-remove") or 0)
    return [answer(msg, set_headers=[("x-same", str(i)) for i in range(same)],
                   remove=[f"x-absent-{i}" for i in range(remove)])]


def streamed_chunk(side, body, end_of_stream=False):
    """A FULL_DUPLEX_STREAMED body chunk for SIDE ("request" or "response"):
    body_mutation.streamed_response."""
    r = pb.ProcessingResponse()
    sr = getattr(r, f"{side}_body").response.body_mutation.streamed_response
    sr.body = body
    sr.end_of_stream = end_of_stream
    return r


def immediate(status=None, headers=(), body=b"", grpc_status=None, details=""):
    r = pb.ProcessingResponse()
    ir = r.immediate_response
    ir.SetInParent()
    if status is not None:
        ir.status.code = status
    if headers:
        ir.headers.CopyFrom(mutation(headers))
    ir.body = body
    if grpc_status is not None:
        ir.grpc_status.status = grpc_status
    ir.details = details
    return r


class Stream:
    def __init__(self, context):
        self.context = context
        self.metadata = dict(context.invocation_metadata())
        self.messages = []
        self.name = None
        self.ended = threading.Event()
        self.terminated = threading.Event()
        # add_callback is False when the call has already ended (cancelled before this
        # handler ran): then it is terminated now.
        if not context.add_callback(self.terminated.set):
            self.terminated.set()
        self.state = {}

    def kinds(self):
        return [kind(m) for m in self.messages]

    def first_header(self, name):
        for m in self.messages:
            if kind(m) in ("request_headers", "response_headers"):
                v = header(m, name)
                if v is not None:
                    return v
        return None


def _serialize(m):
    # A scenario may answer raw bytes (not a ProcessingResponse) to play a broken processor.
    return m if isinstance(m, bytes) else m.SerializeToString()


class Processor(pb_grpc.ExternalProcessorServicer):
    def __init__(self, workers=64, port=0):
        self.scenarios = {}
        self.streams = []
        self.lock = threading.Lock()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers),
                                  options=[("grpc.max_receive_message_length", 64 << 20),
                                           ("grpc.max_send_message_length", 64 << 20)])
        self.server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
            "envoy.service.ext_proc.v3.ExternalProcessor",
            {"Process": grpc.stream_stream_rpc_method_handler(
                self.Process, request_deserializer=pb.ProcessingRequest.FromString,
                response_serializer=_serialize)})])
        self.port = self.server.add_insecure_port(f"127.0.0.1:{port}")
        self.server.start()

    def stop(self):
        self.server.stop(grace=None)

    def scenario(self, name):
        def register(fn):
            self.scenarios[name] = fn
            return fn
        return register

    def by_id(self, value, name="x-ep-id"):
        """The recorded streams whose HTTP request carried NAME: VALUE."""
        with self.lock:
            return [s for s in self.streams if s.first_header(name) == value]

    def Process(self, request_iterator, context):
        stream = Stream(context)
        with self.lock:
            self.streams.append(stream)
        try:
            for msg in request_iterator:
                stream.messages.append(msg)
                if stream.name is None:
                    stream.name = stream.first_header("x-ep") or ""
                fn = self.scenarios.get(stream.name)
                out = fn(stream, msg) if fn else [answer(msg)]
                if out is CLOSE:
                    return
                yield from out
            # The iterator ran out: a scenario may keep the call open (state["after_end"]).
            after = stream.state.get("after_end")
            if after:
                after()
        finally:
            stream.ended.set()


class BadFraming:
    """A processor whose gRPC framing is wrong: an HTTP/2 server (the h2 package, h2c) that
    answers every call 200 application/grpc with one DATA frame whose 5-byte message prefix has
    an invalid flag (7). Stop it with stop()."""

    FRAME = b"\x07\x00\x00\x00\x01x"

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def stop(self):
        self.sock.close()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        h2conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        h2conn.initiate_connection()
        with conn:
            try:
                conn.sendall(h2conn.data_to_send())
                while data := conn.recv(65536):
                    for ev in h2conn.receive_data(data):
                        if isinstance(ev, h2.events.RequestReceived):
                            h2conn.send_headers(ev.stream_id, [
                                (":status", "200"), ("content-type", "application/grpc")])
                            h2conn.send_data(ev.stream_id, self.FRAME)
                        elif isinstance(ev, h2.events.DataReceived):
                            h2conn.acknowledge_received_data(ev.flow_controlled_length,
                                                             ev.stream_id)
                    conn.sendall(h2conn.data_to_send())
            except (OSError, h2.exceptions.ProtocolError):
                return

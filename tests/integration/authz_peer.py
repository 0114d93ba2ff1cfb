"""Scripted ext_authz servers for the tests, the differential run against Envoy and the bench:
a grpcio server of envoy.service.auth.v3.Authorization/Check (the project's own protos, through
protoutil) and an HTTP authorization server (http.server). Both are scripted per request by the
request's own headers, so one server serves many cases, and both log what they received.

The script is the JSON in the request header `x-authz` (absent: allow with nothing else):
  {"deny": 401, "headers": [[name, value, append?], ...], "body": "..."}       denied_response
  {"allow": true, "headers": [[name, value, append?|"action"]], "remove": [...],
   "response_headers": [[name, value, append?]], "query_set": [[k, v]], "query_remove": [k],
   "metadata": {...}}                                                           ok_response
  {"error": 503, "headers": [...], "body": "..."}                               error_response
  {"abort": "UNAVAILABLE"}                       the RPC fails with that gRPC status
  {"sleep": 0.5}                                 answer after that long (with the rest)
  {"hold": true}                                 answer once the test sets `released` (gRPC)
  {"hang": true}                                 never answer (until the client gives up)
  {"crash": true}                                close the connection mid-call (HTTP) /
                                                 stop the whole server mid-call (gRPC)
  {"garbage": true}                              answer bytes that are not a CheckResponse
                                                 (gRPC)
`echo` (any value) in allow and deny answers adds the header x-echo: <that value>, so many
concurrent requests can check that each answer is their own.
HTTP mode reads the same script: deny -> that status; error -> that (5xx) status; allow -> 200
with `headers` as response headers.
"""
import json
import socket
import threading
import time
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc

import protoutil
from harness import LOCALHOST

pb = protoutil.load("envoy.service.auth.v3.external_auth_pb2")
core = protoutil.load("envoy.config.core.v3.base_pb2")

# Not a protobuf message: its first byte is a tag with wire type 7, which does not exist.
GARBAGE = b"\x0fnot a CheckResponse"

ACTIONS = {"add_if_absent": 1, "overwrite_if_exists_or_add": 2, "overwrite_if_exists": 3}


def header_options(entries):
    out = []
    for e in entries:
        name, value = e[0], e[1]
        opt = core.HeaderValueOption(header=core.HeaderValue(key=name, value=value))
        if len(e) > 2:
            if isinstance(e[2], bool):
                opt.append.value = e[2]
            else:
                opt.append_action = ACTIONS[e[2]]
        out.append(opt)
    return out


def script_of(headers):
    text = headers.get("x-authz", "")
    return json.loads(text) if text else {}


class GrpcAuthz:
    """The gRPC Check server. `requests` keeps every CheckRequest in arrival order."""

    def __init__(self, credentials=None, workers=64, port=0):
        self.requests = []
        self.lock = threading.Lock()
        self.hung = threading.Event()
        self.released = threading.Event()  # lets every {"hold": true} call answer
        self.cancelled = 0  # calls the client gave up on (RST_STREAM CANCEL seen by grpcio)
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers))
        # The generated servicer's serializer, except that bytes go out as they are: the
        # {"garbage": true} answer.
        check = grpc.unary_unary_rpc_method_handler(
            self.Check, request_deserializer=pb.CheckRequest.FromString,
            response_serializer=lambda r: r if isinstance(r, bytes) else r.SerializeToString())
        self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
            "envoy.service.auth.v3.Authorization", {"Check": check}),))
        address = f"{LOCALHOST}:{port}"
        self.port = (self.server.add_insecure_port(address) if credentials is None
                     else self.server.add_secure_port(address, credentials))
        self.server.start()

    def stop(self):
        self.hung.set()
        self.server.stop(grace=None).wait(10)

    def find(self, test_id):
        """The CheckRequests whose x-test-id header is TEST_ID."""
        with self.lock:
            return [r for r in self.requests
                    if r.attributes.request.http.headers.get("x-test-id") == test_id]

    def Check(self, request, context):
        with self.lock:
            self.requests.append(request)
        http = request.attributes.request.http
        headers = dict(http.headers) or {h.key: h.raw_value.decode("utf-8", "replace")
                                         for h in http.header_map.headers}
        s = script_of(headers)
        if s.get("sleep"):
            time.sleep(s["sleep"])
        if s.get("hold"):
            self.released.wait(30)
        if s.get("hang"):
            done = threading.Event()

            def gone():
                with self.lock:
                    self.cancelled += 1
                done.set()
            # False when the call has already ended: the proxy gave up before this ran (a
            # client that left at once), which is the cancel to count.
            if not context.add_callback(gone):
                gone()
            # Not past the call's deadline (grpc-timeout), so that a cancellation grpcio does
            # not report cannot hold a worker thread for long.
            left = context.time_remaining()
            done.wait(30 if left is None else min(30, left + 1))
            context.abort(grpc.StatusCode.CANCELLED, "gave up")
        if s.get("abort"):
            context.abort(getattr(grpc.StatusCode, s["abort"]), "scripted failure")
        if s.get("crash"):
            # The whole server goes away with this call in flight (as a crashing process
            # would): the proxy sees the stream reset and the connection closed, no answer.
            threading.Thread(target=lambda: self.server.stop(grace=None)).start()
            self.hung.wait(10)
            return pb.CheckResponse()
        if s.get("garbage"):
            return GARBAGE
        echo = [["x-echo", s["echo"], False]] if "echo" in s else []
        resp = pb.CheckResponse()
        if "metadata" in s:
            resp.dynamic_metadata.update(s["metadata"])
        if "deny" in s:
            resp.status.code = 7  # PERMISSION_DENIED
            d = resp.denied_response
            if s["deny"]:
                d.status.code = s["deny"]
            d.headers.extend(header_options(s.get("headers", []) + echo))
            d.body = s.get("body", "")
        elif "error" in s:
            resp.status.code = 13
            e = resp.error_response
            if s["error"]:
                e.status.code = s["error"]
            e.headers.extend(header_options(s.get("headers", [])))
            e.body = s.get("body", "")
        else:
            ok = resp.ok_response
            ok.headers.extend(header_options(s.get("headers", []) + echo))
            ok.headers_to_remove.extend(s.get("remove", []))
            ok.response_headers_to_add.extend(header_options(s.get("response_headers", []) + echo))
            for k, v in s.get("query_set", []):
                ok.query_parameters_to_set.add(key=k, value=v)
            ok.query_parameters_to_remove.extend(s.get("query_remove", []))
        return resp


class HttpAuthz:
    """The HTTP authorization server. `requests` keeps (method, path, headers dict (lower-case
    names, repeated joined with ','), header list, body) in arrival order."""

    def __init__(self):
        self.requests = []
        self.lock = threading.Lock()
        peer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def handle_any(self):
                n = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(n) if n else b""
                pairs = [(k.lower(), v) for k, v in self.headers.items()]
                joined = {}
                for k, v in pairs:
                    joined[k] = f"{joined[k]},{v}" if k in joined else v
                with peer.lock:
                    peer.requests.append({"method": self.command, "path": self.path,
                                          "headers": joined, "list": pairs, "body": body})
                s = script_of(joined)
                if s.get("sleep"):
                    time.sleep(s["sleep"])
                if s.get("hang"):
                    time.sleep(30)
                if s.get("crash"):
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                extra = [(h[0], h[1]) for h in s.get("headers", [])]
                if "echo" in s:
                    extra.append(("x-echo", s["echo"]))
                status, out = 200, b""
                if "deny" in s:
                    status, out = s["deny"] or 403, s.get("body", "").encode()
                elif "error" in s:
                    status, out = s["error"] or 500, s.get("body", "").encode()
                self.send_response(status)
                for k, v in extra:
                    self.send_header(k, v)
                if out:
                    self.send_header("content-type", "text/plain")
                self.send_header("content-length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = handle_any

        class Server(ThreadingHTTPServer):
            # The default listen backlog of 5 refuses connections under a burst.
            request_queue_size = 1024
            daemon_threads = True

        self.server = Server((LOCALHOST, 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def find(self, test_id):
        with self.lock:
            return [r for r in self.requests if r["headers"].get("x-test-id") == test_id]


if __name__ == "__main__":  # an allow-all server for the bench: prints its ports
    g, h = GrpcAuthz(), HttpAuthz()
    print(f"READY {g.port} {h.port}", flush=True)
    threading.Event().wait()

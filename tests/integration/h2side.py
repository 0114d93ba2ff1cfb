"""An in-process HTTP/2 server (the h2 package; h2c with prior knowledge, or TLS with ALPN h2 and
optionally a required client certificate) for the streaming-callout tests. One thread per
connection, flow control honoured both ways. Paths:

  /echo        answers 200 at once and echoes each DATA chunk as it arrives; ends with the request
  /trailers    like /echo, then trailers x-sum: the byte count, x-end: yes
  /count       consumes the body and answers, at its end, {"length", "sha256"} as JSON
  /slowcount   like /count, but opens its receive window slowly (at most SLOW_BYTES_PER_TICK per
               10 ms tick), so a fast sender must be held back
  /hold        answers 200 and one DATA chunk, then waits; records the stream's reset
  /flood       answers 200 and sends FLOOD_BYTES as flow control allows; records how far it got
               and when it found the window closed
  /reset       resets the stream (RST_STREAM INTERNAL_ERROR) on its request headers

Every stream's fate is recorded in .events (thread-safe list of (kind, path, info) tuples):
("open", path, x-fx-id), ("reset", path, error_code), ("blocked", path, bytes_sent),
("closed", path, None), and each DATA frame received: ("data", path, (x-fx-id, length,
whether it carried END_STREAM)).
"""
import hashlib
import json
import select
import socket
import ssl
import threading
import time

import h2.config
import h2.errors
import h2.connection
import h2.events
import h2.exceptions
import h2.settings

from harness import LOCALHOST

FLOOD_BYTES = 100 * 1024 * 1024
SLOW_BYTES_PER_TICK = 64 * 1024
TICK = 0.01


class Stream:
    def __init__(self, sid, headers):
        self.id = sid
        self.headers = dict(headers)
        self.path = self.headers.get(":path", "")
        self.out = bytearray()  # data waiting for window
        self.out_end = False
        self.trailers = None
        self.digest = hashlib.sha256()
        self.length = 0
        self.unacked = 0  # /slowcount: bytes received but not yet given back as window
        self.flood_left = 0
        self.blocked_reported = False
        self.closed = False


class H2Side:
    def __init__(self, tls=None, max_streams=2000):
        """TLS: an ssl.SSLContext for the server side (ALPN h2 is set here)."""
        self.tls = tls
        if tls is not None:
            tls.set_alpn_protocols(["h2"])
        self.max_streams = max_streams
        self.events = []
        self.peer_subjects = []
        self.lock = threading.Lock()
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((LOCALHOST, 0))
        self.listener.listen(512)
        self.port = self.listener.getsockname()[1]
        self.stopping = False
        self.connections = 0
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def stop(self):
        self.stopping = True
        self.listener.close()

    def record(self, kind, path, info=None):
        with self.lock:
            self.events.append((kind, path, info))

    def find(self, kind, path=None):
        with self.lock:
            return [e for e in self.events if e[0] == kind and (path is None or e[1] == path)]

    def _accept(self):
        while not self.stopping:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock):
        try:
            if self.tls is not None:
                sock = self.tls.wrap_socket(sock, server_side=True)
                cert = sock.getpeercert()
                if cert:
                    with self.lock:
                        self.peer_subjects.append(cert.get("subject"))
            with self.lock:
                self.connections += 1
            Connection(self, sock).run()
        except (OSError, ssl.SSLError, h2.exceptions.ProtocolError):
            pass
        finally:
            try:
                sock.close()
            except OSError:
                pass


class Connection:
    def __init__(self, server, sock):
        self.server = server
        self.sock = sock
        self.h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
        self.streams = {}

    def run(self):
        self.h2.initiate_connection()
        self.h2.update_settings({h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS:
                                 self.server.max_streams})
        self.flush()
        while not self.server.stopping:
            ready = self.sock.pending() if isinstance(self.sock, ssl.SSLSocket) else 0
            if not ready:
                r, _, _ = select.select([self.sock], [], [], TICK)
                ready = bool(r)
            if ready:
                data = self.sock.recv(1 << 16)
                if not data:
                    return
                for event in self.h2.receive_data(data):
                    self.handle(event)
            self.tick()
            self.pump()
            self.flush()

    def flush(self):
        out = self.h2.data_to_send()
        if out:
            self.sock.sendall(out)

    def handle(self, ev):
        srv = self.server
        if isinstance(ev, h2.events.RequestReceived):
            st = Stream(ev.stream_id, ev.headers)
            self.streams[ev.stream_id] = st
            srv.record("open", st.path, st.headers.get("x-fx-id"))
            if st.path == "/reset":
                self.h2.reset_stream(ev.stream_id, h2.errors.ErrorCodes.INTERNAL_ERROR)
                return
            if st.path in ("/echo", "/trailers", "/hold", "/flood"):
                self.h2.send_headers(ev.stream_id, [(":status", "200")])
            if st.path == "/hold":
                st.out += b"held"
            if st.path == "/flood":
                st.flood_left = FLOOD_BYTES
        elif isinstance(ev, h2.events.DataReceived):
            st = self.streams.get(ev.stream_id)
            n = ev.flow_controlled_length
            if st is None:
                self.h2.acknowledge_received_data(n, ev.stream_id)
                return
            srv.record("data", st.path,
                       (st.headers.get("x-fx-id"), len(ev.data), ev.stream_ended is not None))
            st.digest.update(ev.data)
            st.length += len(ev.data)
            if st.path == "/slowcount":
                st.unacked += n
            else:
                self.h2.acknowledge_received_data(n, ev.stream_id)
            if st.path in ("/echo", "/trailers"):
                st.out += ev.data
        elif isinstance(ev, h2.events.StreamEnded):
            st = self.streams.get(ev.stream_id)
            if st is None:
                return
            if st.path in ("/count", "/slowcount"):
                body = json.dumps({"length": st.length,
                                   "sha256": st.digest.hexdigest()}).encode()
                self.h2.send_headers(ev.stream_id, [(":status", "200"),
                                                    ("content-type", "application/json")])
                st.out += body
            if st.path == "/trailers":
                st.trailers = [("x-sum", str(st.length)), ("x-end", "yes")]
            if st.path != "/hold":
                st.out_end = True
        elif isinstance(ev, h2.events.StreamReset):
            st = self.streams.pop(ev.stream_id, None)
            srv.record("reset", st.path if st else "?", int(ev.error_code))
        elif isinstance(ev, h2.events.ConnectionTerminated):
            raise OSError("terminated")

    def tick(self):
        for st in self.streams.values():
            if st.unacked:
                n = min(st.unacked, SLOW_BYTES_PER_TICK)
                st.unacked -= n
                try:
                    self.h2.acknowledge_received_data(n, st.id)
                except h2.exceptions.StreamClosedError:
                    st.unacked = 0

    def pump(self):
        for sid, st in list(self.streams.items()):
            try:
                self._pump_one(sid, st)
            except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
                self.streams.pop(sid, None)

    def _pump_one(self, sid, st):
        while st.flood_left and len(st.out) < 65536:
            n = min(st.flood_left, 65536)
            st.out += b"f" * n
            st.flood_left -= n
        while st.out:
            window = min(self.h2.local_flow_control_window(sid), self.h2.max_outbound_frame_size)
            if window <= 0:
                if st.path == "/flood" and not st.blocked_reported:
                    st.blocked_reported = True
                    self.server.record("blocked", st.path, FLOOD_BYTES - st.flood_left - len(st.out))
                return
            chunk = bytes(st.out[:window])
            del st.out[:window]
            self.h2.send_data(sid, chunk)
            while st.flood_left and len(st.out) < 65536:
                n = min(st.flood_left, 65536)
                st.out += b"f" * n
                st.flood_left -= n
        if st.out_end and not st.out and not st.flood_left:
            if st.trailers:
                self.h2.send_headers(sid, st.trailers, end_stream=True)
            else:
                self.h2.end_stream(sid)
            self.streams.pop(sid, None)
            self.server.record("closed", st.path)

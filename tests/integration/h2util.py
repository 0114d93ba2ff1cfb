"""HTTP/2 clients for the tests, on raw sockets (plain h2c or TLS with ALPN h2):

    H2Client  the h2 package's state machine: requests, bodies with flow control, trailers,
              many streams at once; with validate=False it sends headers exactly as given (upper
              case names, connection-specific headers, bad pseudo-headers) so the proxy's own
              validation can be tested.
    RawH2     frames written by hand (hyperframe, hpack) and frames read back: what no state
              machine would let a client do (floods, streams beyond the advertised limit).

Nothing here sleeps to synchronise: reads have deadlines.
"""
import hashlib
import json
import socket
import ssl
import time

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import hpack
from hyperframe.frame import (ContinuationFrame, DataFrame, Frame, GoAwayFrame, HeadersFrame,
                              PingFrame, RstStreamFrame, SettingsFrame, WindowUpdateFrame)

from harness import LOCALHOST

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
ErrorCodes = h2.errors.ErrorCodes


def tls_context(ca=None, alpn=("h2",), cert=None, key=None):
    ctx = ssl.create_default_context(cafile=str(ca) if ca else None)
    if ca is None:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    if cert:
        ctx.load_cert_chain(str(cert), str(key))
    return ctx


def connect(port, host=LOCALHOST, tls=None, server_hostname=None, timeout=15):
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if tls is not None:
        sock = tls.wrap_socket(sock, server_hostname=server_hostname)
        assert sock.selected_alpn_protocol() == "h2", (
            f"ALPN selected {sock.selected_alpn_protocol()!r}, not h2")
    return sock


class H2Response:
    def __init__(self, stream_id, keep_body=True):
        self.stream_id = stream_id
        self.status = None
        self.headers = []  # [(name, value)] as str, pseudo-headers included
        self.interim = []
        self.trailers = []
        self.keep_body = keep_body
        self.chunks = []
        self.length = 0
        self.digest = hashlib.sha256()
        self.ended = False
        self.reset = None  # the error code of a RST_STREAM from the server

    @property
    def body(self):
        return b"".join(self.chunks)

    @property
    def done(self):
        return self.ended or self.reset is not None

    def all(self, name, fields=None):
        return [v for n, v in (self.headers if fields is None else fields) if n == name.lower()]

    def header(self, name):
        values = self.all(name)
        return values[0] if values else None

    def trailer(self, name):
        values = self.all(name, self.trailers)
        return values[0] if values else None

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return (f"<H2Response stream {self.stream_id} status={self.status} reset={self.reset} "
                f"ended={self.ended} {self.headers} {self.body[:200]!r}>")


class H2Closed(AssertionError):
    pass


class H2Client:
    """An HTTP/2 client connection. request() opens a stream; response() waits for it."""

    def __init__(self, port, host=LOCALHOST, tls=None, server_hostname=None, validate=True,
                 timeout=15, settings=None, authority=None):
        self.port = port
        self.timeout = timeout
        self.authority = authority or f"{host}:{port}"
        self.scheme = "https" if tls is not None else "http"
        self.sock = connect(port, host, tls, server_hostname, timeout)
        config = h2.config.H2Configuration(client_side=True, header_encoding="utf-8",
                                           validate_outbound_headers=validate,
                                           normalize_outbound_headers=validate)
        self.conn = h2.connection.H2Connection(config)
        if settings:
            # Sent in the first SETTINGS frame, and in force from the start.
            initial = {code: self.conn.local_settings[code] for code in
                       (h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS,
                        h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE)}
            self.conn.local_settings = h2.settings.Settings(
                client=True, initial_values={**initial, **settings})
        self.conn.initiate_connection()
        self.streams = {}
        self.goaway = None  # h2.events.ConnectionTerminated, if the server sent GOAWAY
        self.closed = False
        self.remote_settings_seen = False
        self.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            if not self.closed:
                self.conn.close_connection()
                self.flush()
        except (OSError, h2.exceptions.ProtocolError):
            pass
        self.sock.close()
        self.closed = True

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            try:
                self.sock.sendall(data)
            except (BrokenPipeError, ConnectionResetError) as e:
                self.closed = True
                raise H2Closed(f"connection closed by the proxy while sending ({e!r}); "
                               f"GOAWAY: {self.goaway}") from e

    # --- sending

    def request(self, method="GET", path="/", headers=(), body=None, end_stream=True,
                authority=None, keep_body=True, pseudo=None):
        """Opens a stream and returns its id. PSEUDO, if given, replaces the pseudo-headers
        entirely (a list of pairs), for requests that must be malformed."""
        sid = self.conn.get_next_available_stream_id()
        if pseudo is None:
            pseudo = [(":method", method), (":scheme", self.scheme),
                      (":authority", authority or self.authority), (":path", path)]
        self.streams[sid] = H2Response(sid, keep_body)
        self.conn.send_headers(sid, list(pseudo) + list(headers),
                               end_stream=end_stream and body is None)
        self.flush()
        if body is not None:
            self.send_body(sid, body, end_stream)
        return sid

    def send_body(self, sid, data, end_stream=True):
        """Sends DATA within the flow-control windows, reading (and so receiving WINDOW_UPDATEs)
        when they are closed."""
        view = memoryview(data)
        while view:
            window = min(self.conn.local_flow_control_window(sid),
                         self.conn.max_outbound_frame_size)
            if window <= 0:
                if self.streams[sid].reset is not None:
                    raise AssertionError(f"stream {sid} reset while sending its body: "
                                         f"{self.streams[sid]!r}")
                self.pump()
                continue
            piece, view = view[:window], view[window:]
            self.conn.send_data(sid, piece.tobytes(), end_stream=end_stream and not view)
            self.flush()
        if end_stream and not data:
            self.conn.end_stream(sid)
            self.flush()

    def send_trailers(self, sid, trailers):
        self.conn.send_headers(sid, list(trailers), end_stream=True)
        self.flush()

    def reset_stream(self, sid, code=ErrorCodes.CANCEL):
        self.conn.reset_stream(sid, code)
        self.flush()

    def ping(self, data=b"12345678"):
        self.conn.ping(data)
        self.flush()

    # --- receiving

    def pump(self, timeout=None):
        """Reads once (waiting up to TIMEOUT) and handles what came. False once closed."""
        if self.closed:
            return False
        self.sock.settimeout(timeout if timeout is not None else self.timeout)
        try:
            data = self.sock.recv(1 << 18)
        except socket.timeout:
            return True
        except (ConnectionResetError, ssl.SSLError, OSError):
            data = b""
        if not data:
            self.closed = True
            return False
        for event in self.conn.receive_data(data):
            self._handle(event)
        try:
            self.flush()
        except H2Closed:
            pass
        return True

    def _handle(self, event):
        stream = self.streams.get(getattr(event, "stream_id", None))
        if isinstance(event, h2.events.ResponseReceived):
            stream.headers = list(event.headers)
            stream.status = int(stream.header(":status"))
        elif isinstance(event, h2.events.InformationalResponseReceived):
            stream.interim.append(list(event.headers))
        elif isinstance(event, h2.events.TrailersReceived):
            stream.trailers = list(event.headers)
        elif isinstance(event, h2.events.DataReceived):
            if event.flow_controlled_length:
                self.conn.acknowledge_received_data(event.flow_controlled_length,
                                                    event.stream_id)
            if stream is not None:
                stream.length += len(event.data)
                stream.digest.update(event.data)
                if stream.keep_body:
                    stream.chunks.append(event.data)
        elif isinstance(event, h2.events.StreamEnded):
            stream.ended = True
        elif isinstance(event, h2.events.StreamReset):
            if stream is not None and event.remote_reset:
                stream.reset = event.error_code
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.goaway = event
        elif isinstance(event, h2.events.RemoteSettingsChanged):
            self.remote_settings_seen = True

    def wait(self, predicate, timeout=None, what="the condition"):
        deadline = time.monotonic() + (timeout or self.timeout)
        while not predicate():
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"gave up waiting for {what}; streams: "
                                     f"{list(self.streams.values())[-5:]}")
            if not self.pump(min(left, 1.0)):
                if predicate():
                    return
                raise H2Closed(f"connection closed while waiting for {what}; GOAWAY: "
                               f"{self.goaway}; streams: {list(self.streams.values())[-5:]}")

    def response(self, sid, timeout=None):
        """The stream's response, once it has ended or was reset."""
        self.wait(lambda: self.streams[sid].done, timeout, f"stream {sid} to end")
        return self.streams[sid]

    def get(self, path="/", method="GET", headers=(), body=None, timeout=None):
        return self.response(self.request(method, path, headers, body), timeout)


# ------------------------------------------------------------------------------------------
# Frames by hand


class RawStream:
    def __init__(self):
        self.headers = None
        self.trailers = None
        self.data = b""
        self.ended = False
        self.reset = None

    @property
    def status(self):
        if self.headers is None:
            return None
        return int(dict(self.headers)[":status"])

    def __repr__(self):
        return (f"<RawStream status={self.status} ended={self.ended} reset={self.reset} "
                f"{self.data[:100]!r}>")


class RawH2:
    """A client connection that writes frames as told and parses what comes back. It answers
    the server's SETTINGS with an ACK (unless ack_settings=False) and returns flow-control
    credit for the DATA it receives; nothing else is automatic."""

    def __init__(self, port, host=LOCALHOST, tls=None, server_hostname=None, timeout=10,
                 settings=None, ack_settings=True, preface=True):
        self.sock = connect(port, host, tls, server_hostname, timeout)
        self.port = port
        self.timeout = timeout
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder()
        self.decoder.max_header_list_size = 1 << 24
        self.buf = b""
        self.frames = []
        self.streams = {}
        self.closed = False
        self.send_failed = False
        self.ack_settings = ack_settings
        self.server_settings = {}
        self.settings_acked = False
        self._block = None  # (stream id, fragments) of a header block awaiting CONTINUATION
        if preface:
            self.send_bytes(PREFACE + SettingsFrame(0, settings or {}).serialize())

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.sock.close()

    # --- sending

    def send_bytes(self, data):
        """Writes DATA; False (and send_failed set) if the proxy has closed the connection."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            self.send_failed = True
            return False

    def send(self, *frames):
        return self.send_bytes(b"".join(f.serialize() for f in frames))

    def block(self, headers):
        """An HPACK header block for HEADERS (name, value pairs as given, no validation)."""
        return self.encoder.encode(list(headers))

    def request_headers(self, path="/", method="GET", extra=()):
        return [(":method", method), (":scheme", "http"),
                (":authority", f"{LOCALHOST}:{self.port}"), (":path", path), *extra]

    def headers_frame(self, sid, headers=None, end_stream=True, end_headers=True, path="/"):
        f = HeadersFrame(sid)
        f.data = self.block(headers if headers is not None else self.request_headers(path))
        if end_stream:
            f.flags.add("END_STREAM")
        if end_headers:
            f.flags.add("END_HEADERS")
        return f

    # --- receiving

    def _parse(self):
        new = []
        while len(self.buf) >= 9:
            frame, length = Frame.parse_frame_header(memoryview(self.buf[:9]))
            if len(self.buf) < 9 + length:
                break
            frame.parse_body(memoryview(self.buf[9:9 + length]))
            self.buf = self.buf[9 + length:]
            new.append(frame)
            self._handle(frame)
        self.frames.extend(new)
        return new

    def _stream(self, sid):
        return self.streams.setdefault(sid, RawStream())

    def _handle(self, frame):
        if isinstance(frame, SettingsFrame):
            if "ACK" in frame.flags:
                self.settings_acked = True
            else:
                self.server_settings.update(frame.settings)
                if self.ack_settings:
                    self.send(SettingsFrame(0, flags=["ACK"]))
        elif isinstance(frame, (HeadersFrame, ContinuationFrame)):
            if isinstance(frame, HeadersFrame):
                self._block = (frame.stream_id, [frame.data], "END_STREAM" in frame.flags)
            else:
                self._block[1].append(frame.data)
            if "END_HEADERS" in frame.flags:
                sid, fragments, end = self._block
                self._block = None
                fields = [(n.decode() if isinstance(n, bytes) else n,
                           v.decode() if isinstance(v, bytes) else v)
                          for n, v in self.decoder.decode(b"".join(fragments))]
                stream = self._stream(sid)
                if stream.headers is None or any(n == ":status" and v.startswith("1")
                                                 for n, v in stream.headers):
                    stream.headers = fields
                else:
                    stream.trailers = fields
                if end:
                    stream.ended = True
        elif isinstance(frame, DataFrame):
            stream = self._stream(frame.stream_id)
            stream.data += frame.data
            if "END_STREAM" in frame.flags:
                stream.ended = True
            if frame.flow_controlled_length:
                credit = frame.flow_controlled_length
                self.send(WindowUpdateFrame(0, window_increment=credit),
                          WindowUpdateFrame(frame.stream_id, window_increment=credit))
        elif isinstance(frame, RstStreamFrame):
            self._stream(frame.stream_id).reset = frame.error_code

    def read(self, timeout=None):
        """Reads once (waiting up to TIMEOUT); returns the frames that completed. Sets closed
        at EOF or reset."""
        if self.closed:
            return []
        self.sock.settimeout(timeout if timeout is not None else self.timeout)
        try:
            data = self.sock.recv(1 << 18)
        except socket.timeout:
            return []
        except (ConnectionResetError, ssl.SSLError, OSError):
            data = b""
        if not data:
            self.closed = True
            return []
        self.buf += data
        return self._parse()

    def wait(self, predicate, timeout=None, what="the condition"):
        deadline = time.monotonic() + (timeout or self.timeout)
        while not predicate():
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"gave up waiting for {what}; last frames: "
                                     f"{self.frames[-5:]}")
            self.read(min(left, 1.0))
            if self.closed and not predicate():
                raise H2Closed(f"connection closed while waiting for {what}; last frames: "
                               f"{self.frames[-5:]}")

    def wait_closed(self, timeout=None):
        """Reads until the proxy closes the connection; fails if it has not within TIMEOUT."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while not self.closed:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"connection still open after {timeout or self.timeout}s; "
                                     f"last frames: {self.frames[-5:]}")
            self.read(min(left, 1.0))
        return True

    def is_open_now(self):
        """Reads what is there without waiting; whether the proxy has not closed."""
        self.read(0.0001)
        return not self.closed

    @property
    def goaway(self):
        return next((f for f in self.frames if isinstance(f, GoAwayFrame)), None)

    def handshake(self, timeout=None):
        """Waits for the server's SETTINGS (acknowledged at once, unless ack_settings=False) and
        its ACK of ours: after this, nothing automatic is left to interleave with what the
        test sends (a header block split over CONTINUATION frames must not be cut by a
        SETTINGS ACK)."""
        self.wait(lambda: self.server_settings and self.settings_acked, timeout,
                  "the SETTINGS exchange")
        return self


__all__ = ["PREFACE", "ErrorCodes", "tls_context", "connect", "H2Response", "H2Closed",
           "H2Client", "RawStream", "RawH2", "ContinuationFrame", "DataFrame", "GoAwayFrame",
           "HeadersFrame", "PingFrame", "RstStreamFrame", "SettingsFrame", "WindowUpdateFrame",
           "h2"]

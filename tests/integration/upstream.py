#!/usr/bin/env python3
"""A real HTTP/1.1 origin server for the integration tests: asyncio streams, no framework.

    python upstream.py [--port 0] [--name NAME]

Prints "READY <port>" on stdout once it accepts connections; logs one line per request to
stderr. It is deliberately strict about what it receives (CRLF line endings, header syntax,
message framing), so a malformed request from the proxy shows up in GET /__stats as a
protocol error instead of passing silently.

Endpoints (any method unless said otherwise; the request body is always read, hashed, dropped):
  /echo                     JSON: server, connection, connection_request, method, path, version,
                            headers [[name, value], ...] as received, trailers, body_length,
                            body_sha256
  /upload[?stall_every=B&stall_ms=D]
                            JSON {length, sha256}; pauses D ms after every B body bytes read,
                            a slow reader to exercise the proxy's back-pressure
  /slow?ms=N[&hold=KEY]     waits N ms (or, with hold, until KEY is released, N=30000 by
                            default as a safety net), then 200 "slow\n"
  /stream?chunks=N&size=S&ms=D[&hold=KEY]
                            chunked response: N chunks of S bytes, D ms apart; chunk i is the
                            byte "a"+i%26 repeated. With hold, stops after the first chunk
                            until KEY is released.
  /trailers                 chunked response with trailers x-checksum (sha256 of the body)
                            and x-extra
  /status?code=N            status N, body "status N\n" (none for 1xx/204/304)
  /eof?size=N               N bytes with neither Content-Length nor chunked: ends at close
  /abort?claim=M&send=N     promises M bytes, sends N < M, then closes
  /hop_response             a 200 carrying hop-by-hop headers the proxy must not pass on
  /ws                       with Upgrade: websocket, 101 then echoes raw bytes until EOF;
                            without it, 426
  /up101[?always=1]         with any Upgrade (h2c included), 101 naming it, then goes on
                            reading HTTP/1.1 requests on the connection, as a lenient server
                            would: whatever a proxy tunnels after the 101 is served, and counted
                            in paths. Without an upgrade, what /echo answers; with always=1,
                            101 (Upgrade: h2c) even to a request that asked for no switch.
  /__stats                  JSON counters (not counted themselves)
  /__release?key=KEY        releases everything held on KEY (and later arrivals on it)
"""
import argparse
import asyncio
import base64
import hashlib
import json
import re
import sys
import urllib.parse

TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Field values: visible ASCII, obs-text, SP and HTAB. No other control bytes.
FIELD_VALUE = re.compile(rb"[\t\x20-\x7e\x80-\xff]*")
MAX_HEAD = 1 << 20


class ProtocolError(Exception):
    """The peer sent something that is not valid HTTP/1.1."""


class Aborted(Exception):
    """The peer closed the connection in the middle of a request (not a protocol error)."""


class Request:
    def __init__(self, method, target, version, headers):
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers  # [(name, value)] as str, names as sent
        parsed = urllib.parse.urlsplit(target)
        self.path = parsed.path
        self.query = {k: v[-1] for k, v in urllib.parse.parse_qs(parsed.query).items()}
        self.trailers = []

    def values(self, name):
        name = name.lower()
        return [v for n, v in self.headers if n.lower() == name]

    def tokens(self, name):
        return {t.strip().lower() for v in self.values(name) for t in v.split(",") if t.strip()}

    def keep_alive(self):
        conn = self.tokens("connection")
        if self.version == "HTTP/1.0":
            return "keep-alive" in conn
        return "close" not in conn


async def read_line(reader):
    """One CRLF-terminated line, without the CRLF. A bare LF is a protocol error."""
    try:
        line = await reader.readuntil(b"\n")
    except asyncio.LimitOverrunError as e:
        raise ProtocolError("line too long") from e
    if not line.endswith(b"\r\n"):
        raise ProtocolError(f"line not ended by CRLF: {line[-20:]!r}")
    return line[:-2]


async def read_fields(reader):
    """Header or trailer fields up to the empty line."""
    fields = []
    total = 0
    while True:
        line = await read_line(reader)
        if not line:
            return fields
        total += len(line)
        if total > MAX_HEAD:
            raise ProtocolError("header section too large")
        if line[:1] in (b" ", b"\t"):
            raise ProtocolError("obs-fold in header section")
        name, sep, value = line.partition(b":")
        if not sep or not TOKEN.fullmatch(name):
            raise ProtocolError(f"bad header line {line[:60]!r}")
        value = value.strip(b" \t")
        if not FIELD_VALUE.fullmatch(value):
            raise ProtocolError(f"control byte in value of {name!r}")
        fields.append((name.decode("latin-1"), value.decode("latin-1")))


async def read_request_head(reader):
    """The next request's head, or None on a clean EOF between requests."""
    try:
        first = await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError as e:
        if not e.partial:
            return None
        raise Aborted("EOF inside the request line") from e
    except asyncio.LimitOverrunError as e:
        raise ProtocolError("request line too long") from e
    if not first.endswith(b"\r\n"):
        raise ProtocolError("request line not ended by CRLF")
    parts = first[:-2].split(b" ")
    if len(parts) != 3 or not TOKEN.fullmatch(parts[0]) or parts[2] not in (b"HTTP/1.1",
                                                                            b"HTTP/1.0"):
        raise ProtocolError(f"bad request line {first[:80]!r}")
    headers = await read_fields(reader)
    return Request(*(p.decode("latin-1") for p in parts), headers)


async def body_chunks(reader, req):
    """Yields the request body in pieces, following its framing; fills req.trailers."""
    te = req.values("transfer-encoding")
    cl = req.values("content-length")
    if te and cl:
        raise ProtocolError("both Transfer-Encoding and Content-Length")
    if te:
        codings = [t.strip().lower() for v in te for t in v.split(",")]
        if codings != ["chunked"]:
            raise ProtocolError(f"unsupported transfer-coding {te}")
        while True:
            size_line = await read_line(reader)
            size_text = size_line.split(b";", 1)[0].strip()
            if not size_text or not re.fullmatch(rb"[0-9A-Fa-f]{1,15}", size_text):
                raise ProtocolError(f"bad chunk size {size_line[:40]!r}")
            size = int(size_text, 16)
            if size == 0:
                req.trailers = await read_fields(reader)
                return
            while size:
                piece = await reader.read(min(size, 256 * 1024))
                if not piece:
                    raise Aborted("EOF inside a chunk")
                size -= len(piece)
                yield piece
            if await reader.readexactly(2) != b"\r\n":
                raise ProtocolError("chunk data not followed by CRLF")
    elif cl:
        if len(set(cl)) != 1 or len(cl) != 1 or not re.fullmatch(r"[0-9]{1,18}", cl[0]):
            raise ProtocolError(f"bad Content-Length {cl}")
        left = int(cl[0])
        while left:
            piece = await reader.read(min(left, 256 * 1024))
            if not piece:
                raise Aborted("EOF inside the body")
            left -= len(piece)
            yield piece


def status_line(code):
    reasons = {100: "Continue", 101: "Switching Protocols", 200: "OK", 204: "No Content",
               304: "Not Modified", 400: "Bad Request", 404: "Not Found",
               426: "Upgrade Required", 500: "Internal Server Error", 502: "Bad Gateway",
               503: "Service Unavailable"}
    return f"HTTP/1.1 {code} {reasons.get(code, 'Status')}\r\n"


def head_bytes(code, headers):
    return (status_line(code) + "".join(f"{n}: {v}\r\n" for n, v in headers) + "\r\n").encode(
        "latin-1")


class Server:
    def __init__(self, name):
        self.name = name
        self.conn_seq = 0
        self.gates = {}
        self.stats = {
            "connections_total": 0,
            "connections_active": 0,
            "requests_total": 0,
            "requests_active": 0,
            "held": 0,
            "aborted": 0,
            "protocol_errors": 0,
            "last_protocol_error": "",
            "paths": {},
        }

    def gate(self, key):
        if key not in self.gates:
            self.gates[key] = asyncio.Event()
        return self.gates[key]

    def log(self, *args):
        print(f"[upstream {self.name}]", *args, file=sys.stderr, flush=True)

    async def handle_connection(self, reader, writer):
        self.conn_seq += 1
        conn_id = self.conn_seq
        self.stats["connections_total"] += 1
        self.stats["connections_active"] += 1
        served = 0
        control = False  # a connection whose first request is /__...: the tests asking, not
        try:             # the proxy; it is left out of the connection counts
            while True:
                req = await read_request_head(reader)
                if req is None:
                    break
                served += 1
                internal = req.path.startswith("/__")
                if served == 1 and internal:
                    control = True
                    self.stats["connections_total"] -= 1
                    self.stats["connections_active"] -= 1
                if not internal:
                    self.stats["requests_total"] += 1
                    self.stats["requests_active"] += 1
                    paths = self.stats["paths"]
                    paths[req.path] = paths.get(req.path, 0) + 1
                try:
                    keep = await self.dispatch(req, reader, writer, conn_id, served)
                finally:
                    if not internal:
                        self.stats["requests_active"] -= 1
                if not keep:
                    break
        except ProtocolError as e:
            self.stats["protocol_errors"] += 1
            self.stats["last_protocol_error"] = str(e)
            self.log(f"conn {conn_id}: protocol error: {e}")
            body = f"upstream.py: {e}\n".encode()
            try:
                writer.write(head_bytes(400, [("Content-Length", len(body)),
                                              ("Connection", "close")]) + body)
                await writer.drain()
            except ConnectionError:
                pass
        except (Aborted, ConnectionError, asyncio.IncompleteReadError) as e:
            self.stats["aborted"] += 1
            self.log(f"conn {conn_id}: closed mid-request ({e!r})")
        finally:
            if not control:
                self.stats["connections_active"] -= 1
            writer.close()

    async def send(self, writer, req, code, headers, body=b""):
        """Writes a complete Content-Length response. Returns whether to keep the connection."""
        keep = req.keep_alive()
        headers = list(headers)
        if code >= 200 and code not in (204, 304):
            headers.append(("Content-Length", len(body)))
        if not keep:
            headers.append(("Connection", "close"))
        elif req.version == "HTTP/1.0":
            headers.append(("Connection", "keep-alive"))
        send_body = req.method != "HEAD" and code not in (204, 304)
        writer.write(head_bytes(code, headers) + (body if send_body else b""))
        await writer.drain()
        self.log(f"{req.method} {req.target} {req.version} -> {code}")
        return keep

    async def consume_body(self, reader, writer, req, stall_every=0, stall_ms=0):
        """Reads the whole request body; returns (length, sha256 hex)."""
        if "100-continue" in req.tokens("expect") and (req.values("content-length") or
                                                       req.values("transfer-encoding")):
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            await writer.drain()
        digest = hashlib.sha256()
        length = 0
        next_stall = stall_every
        async for piece in body_chunks(reader, req):
            digest.update(piece)
            length += len(piece)
            if stall_every and length >= next_stall:
                next_stall += stall_every
                await asyncio.sleep(stall_ms / 1000)
        return length, digest.hexdigest()

    async def wait(self, key, ms):
        """Sleeps MS, or with a KEY waits until it is released (MS then is only a safety net)."""
        if key is None:
            await asyncio.sleep(ms / 1000)
            return
        self.stats["held"] += 1
        try:
            await asyncio.wait_for(self.gate(key).wait(), ms / 1000)
        except asyncio.TimeoutError:
            self.log(f"hold {key!r} not released within {ms} ms")
        finally:
            self.stats["held"] -= 1

    async def dispatch(self, req, reader, writer, conn_id, served):
        path, q = req.path, req.query
        json_type = [("Content-Type", "application/json")]

        if path == "/upload":
            length, sha = await self.consume_body(reader, writer, req,
                                                  int(q.get("stall_every", 0)),
                                                  int(q.get("stall_ms", 0)))
            body = json.dumps({"length": length, "sha256": sha}).encode()
            return await self.send(writer, req, 200, json_type, body)

        length, sha = await self.consume_body(reader, writer, req)

        asked = req.values("upgrade") and "upgrade" in req.tokens("connection")
        if path == "/up101" and (asked or q.get("always")):
            writer.write(head_bytes(101, [("Upgrade", (req.values("upgrade") or ["h2c"])[0]),
                                          ("Connection", "Upgrade")]))
            await writer.drain()
            self.log(f"{req.method} {req.target} -> 101, reading HTTP on")
            return True

        if path in ("/echo", "/up101"):
            body = json.dumps({
                "server": self.name,
                "connection": conn_id,
                "connection_request": served,
                "method": req.method,
                "path": req.target,
                "version": req.version,
                "headers": [[n, v] for n, v in req.headers],
                "trailers": [[n, v] for n, v in req.trailers],
                "body_length": length,
                "body_sha256": sha,
            }).encode()
            return await self.send(writer, req, 200, json_type, body)

        if path == "/slow":
            await self.wait(q.get("hold"), int(q.get("ms", 30000 if "hold" in q else 1000)))
            return await self.send(writer, req, 200, [("Content-Type", "text/plain")], b"slow\n")

        if path == "/stream":
            chunks, size, ms = int(q.get("chunks", 10)), int(q.get("size", 1024)), int(
                q.get("ms", 0))
            keep = req.keep_alive()
            headers = [("Content-Type", "application/octet-stream"),
                       ("Transfer-Encoding", "chunked")]
            if not keep:
                headers.append(("Connection", "close"))
            writer.write(head_bytes(200, headers))
            await writer.drain()
            if req.method != "HEAD":
                for i in range(chunks):
                    data = bytes([97 + i % 26]) * size
                    writer.write(b"%x\r\n%s\r\n" % (size, data))
                    await writer.drain()
                    if i == 0 and "hold" in q:
                        await self.wait(q["hold"], int(q.get("hold_ms", 30000)))
                    elif ms and i + 1 < chunks:
                        await asyncio.sleep(ms / 1000)
                writer.write(b"0\r\n\r\n")
                await writer.drain()
            self.log(f"{req.method} {req.target} -> 200 (chunked)")
            return keep

        if path == "/trailers":
            parts = [b"hello ", b"from ", b"trailers\n"]
            checksum = hashlib.sha256(b"".join(parts)).hexdigest()
            keep = req.keep_alive()
            headers = [("Content-Type", "text/plain"), ("Transfer-Encoding", "chunked"),
                       ("Trailer", "x-checksum, x-extra")]
            if not keep:
                headers.append(("Connection", "close"))
            out = head_bytes(200, headers)
            if req.method != "HEAD":
                out += b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts)
                out += f"0\r\nx-checksum: {checksum}\r\nx-extra: yes\r\n\r\n".encode()
            writer.write(out)
            await writer.drain()
            self.log(f"{req.method} {req.target} -> 200 (trailers)")
            return keep

        if path == "/status":
            code = int(q.get("code", 200))
            body = b"" if code < 200 or code in (204, 304) else f"status {code}\n".encode()
            return await self.send(writer, req, code, [("Content-Type", "text/plain")], body)

        if path == "/eof":
            size = int(q.get("size", 1000))
            writer.write(head_bytes(200, [("Content-Type", "application/octet-stream"),
                                          ("Connection", "close")]))
            if req.method != "HEAD":
                writer.write(b"e" * size)
            await writer.drain()
            self.log(f"{req.method} {req.target} -> 200 (until EOF)")
            return False

        if path == "/abort":
            claim, send = int(q.get("claim", 1000)), int(q.get("send", 100))
            writer.write(head_bytes(200, [("Content-Length", claim)]) + b"x" * send)
            await writer.drain()
            self.log(f"{req.method} {req.target} -> 200 (aborted after {send} bytes)")
            return False

        if path == "/hop_response":
            headers = [("Content-Type", "text/plain"), ("Connection", "x-hop-resp"),
                       ("X-Hop-Resp", "must-not-pass"), ("Keep-Alive", "timeout=5, max=77"),
                       ("Proxy-Connection", "keep-alive"), ("X-End-To-End", "kept")]
            return await self.send(writer, req, 200, headers, b"hop\n")

        if path == "/ws":
            if "websocket" not in req.tokens("upgrade") or "upgrade" not in req.tokens(
                    "connection"):
                return await self.send(writer, req, 426, [("Content-Type", "text/plain")],
                                       b"upgrade required\n")
            key = (req.values("sec-websocket-key") or [""])[0]
            accept = base64.b64encode(
                hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
            writer.write(head_bytes(101, [("Upgrade", "websocket"), ("Connection", "Upgrade"),
                                          ("Sec-WebSocket-Accept", accept.decode())]))
            await writer.drain()
            self.log(f"{req.method} {req.target} -> 101, echoing")
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
            return False

        if path == "/__stats":
            return await self.send(writer, req, 200, json_type, json.dumps(self.stats).encode())

        if path == "/__release":
            self.gate(q.get("key", "")).set()
            return await self.send(writer, req, 200, [("Content-Type", "text/plain")],
                                   b"released\n")

        return await self.send(writer, req, 404, [("Content-Type", "text/plain")],
                               b"upstream.py: no such path\n")


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--name", default="upstream")
    args = parser.parse_args()
    server = Server(args.name)
    srv = await asyncio.start_server(server.handle_connection, args.host, args.port,
                                     limit=MAX_HEAD, backlog=512)
    port = srv.sockets[0].getsockname()[1]
    print(f"READY {port}", flush=True)
    async with srv:
        await srv.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass

"""The scenarios: what is sent, what must come back, and who runs it.

A scenario is a path on the upstream, an optional folder of config snippets
(bench/configs/scenarios/NAME/, one file per system kind), an optional response header that
every filtered entrant must add, and its entrants. An entrant is one system with or without the
scenario's snippet; the one marked `reference` is what the others' ratios are taken against.

Adding a scenario is a few lines here plus its snippet files. The `client` says what load it
gets: "http1" (wrk at saturation, then sy-openloop for latency), "h2c" (h2load, HTTP/2 with
prior knowledge, fixed clients and streams for a duration) or "tls" (h2load over TLS, one
request per new connection, so every request is a full handshake); the HTTP/2 and TLS
scenarios' snippets fill the listeners' protocol and TLS slots. Wasm, ext_proc and ext_authz
are a module plus a snippet, like `hello` below.
"""
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

SNIPPETS = Path(__file__).resolve().parent.parent / "configs" / "scenarios"


@dataclass
class Entrant:
    name: str                       # as shown in the tables: "switchyard+hello"
    system: str                     # a key of systems.SYSTEMS
    filtered: bool = False          # gets the scenario's snippet, must add expect_header
    module: Optional[str] = None    # a Switchyard module this entrant needs (libsy_NAME.so)
    reference: bool = False
    scenario: "Scenario" = None
    # Another scenario's snippet folder and header, for an entrant that runs a different filter
    # in the same rounds (the native `hello` beside the Wasm plugin).
    snippets: Optional[str] = None
    expect_header: Optional[tuple] = None

    def header(self):
        """The (name, value) this entrant's responses must carry, or None."""
        if not self.filtered:
            return None
        return self.expect_header or self.scenario.expect_header

    def snippet_path(self, kind, ext):
        folder = self.snippets or self.scenario.snippets
        if not self.filtered or not folder:
            return None
        path = SNIPPETS / folder / f"{kind}{ext}"
        if not path.exists():
            raise FileNotFoundError(f"scenario {self.scenario.name} has no snippet for "
                                    f"{kind}: {path}")
        return path


@dataclass
class Scenario:
    name: str
    title: str
    path: str                       # on the upstream: /small or /16k
    entrants: list
    snippets: Optional[str] = None  # folder under bench/configs/scenarios/
    expect_header: Optional[tuple] = None  # (name, value) the filtered entrants add
    client: str = "http1"           # "http1", "h2c" or "tls" (see above)
    rss: bool = False               # measure memory with idle connections in this scenario
    # Requests a filtered entrant's filter sends to the upstream per client request (ext_authz's
    # Check goes to the upstream nginx too): the request counts are divided accordingly.
    side_requests: int = 0
    # A request body: the client sends POST with this many bytes (0: GET, no body).
    request_body: int = 0
    # Latency at one fixed rate for every entrant, besides each one's own 25/50/75%: FRACTION of
    # the named entrant's saturation in the same round (see cli.Bench.run_fixed_rate). PAIRS
    # name (with filter, without) per proxy: the report gives each one's added latency.
    fixed_rate: Optional[dict] = None
    # Read every entrant's memory after the rounds, as it is with its filter loaded and warm.
    rss_loaded: bool = False
    needs_extproc: bool = False     # the ext_proc processor (sybench/extproc.py) must run
    notes: list = field(default_factory=list)

    def __post_init__(self):
        for e in self.entrants:
            e.scenario = self

    @property
    def reference(self):
        return next(e for e in self.entrants if e.reference)


def passthrough(name, title, path, rss=False):
    return Scenario(name, title, path, rss=rss, entrants=[
        Entrant("direct", "direct"),
        Entrant("switchyard", "switchyard", reference=True),
        Entrant("envoy", "envoy"),
        Entrant("nginx", "nginx"),
        Entrant("haproxy", "haproxy"),
    ])


ADDED_LATENCY_NOTE = (
    "**Added latency** (the table of that name): every entrant also runs at one fixed rate, "
    "the same for all of them in a round: 25% of that round's saturation rate of the Envoy "
    "entrant with the filter, well under every entrant's saturation. Each proxy's added "
    "latency is its p50 (p99) with the filter minus its p50 (p99) without, at that rate, in the "
    "same round; the ratio Switchyard ÷ Envoy is taken round by round.")


def added_latency(filter_name):
    return {"anchor": f"envoy+{filter_name}", "fraction": 0.25,
            "pairs": [[f"switchyard+{filter_name}", "switchyard"],
                      [f"envoy+{filter_name}", "envoy"]]}


def ext_proc(name, title, body_bytes, header):
    """An ext_proc scenario: the bench's processor (bench/extproc) behind both proxies, each
    beside its unfiltered self."""
    return Scenario(
        name, title, "/ext_proc", snippets=name, expect_header=header,
        request_body=body_bytes, needs_extproc=True, fixed_rate=added_latency("ext_proc"),
        entrants=[
            Entrant("switchyard+ext_proc", "switchyard", filtered=True, module="ext_proc",
                    reference=True),
            Entrant("switchyard", "switchyard"),
            Entrant("envoy+ext_proc", "envoy", filtered=True),
            Entrant("envoy", "envoy"),
        ],
        notes=["The processor is `sy-extproc` (bench/extproc: Go, go-control-plane v1.40.0's "
               "types, google.golang.org/grpc), one process on the load core, the same for "
               "both proxies, reached over h2c (Switchyard: `protocol: http2`; Envoy: "
               "`http2_protocol_options`). It answers every message with CONTINUE and sets "
               "the request header `x-ext-proc` (`seen` on the headers, `body-<bytes it got>` "
               "on a buffered body); the upstream echoes it back, so every response shows that "
               "the processor was consulted (and, with a body, that all of it got there).",
               "Request: " + (f"`POST /ext_proc` with a {body_bytes}-byte body (wrk and "
                              f"sy-openloop send it; Content-Length)" if body_bytes else
                              "`GET /ext_proc`") + "; the unfiltered entrants get the same "
               "request and the same response without the header.",
               ADDED_LATENCY_NOTE])


def protocol(name, title, client, notes):
    """All five on /small, each proxy with the scenario's listener snippet (`filtered`: it gets
    the snippet; there is no header to add)."""
    return Scenario(name, title, "/small", snippets=name, client=client, notes=notes, entrants=[
        Entrant("direct", "direct"),
        Entrant("switchyard", "switchyard", filtered=True, reference=True),
        Entrant("envoy", "envoy", filtered=True),
        Entrant("nginx", "nginx", filtered=True),
        Entrant("haproxy", "haproxy", filtered=True),
    ])


SCENARIOS = [
    passthrough("passthrough-small", "HTTP/1.1 passthrough, 32-byte response body", "/small",
                rss=True),
    passthrough("passthrough-16k", "HTTP/1.1 passthrough, 16 KiB response body", "/16k"),
    Scenario(
        "hello", "A native filter that adds a response header (Switchyard's `hello` module; "
        "each other system's built-in equivalent)", "/small", snippets="hello",
        expect_header=("x-hello", "world"),
        entrants=[
            Entrant("switchyard+hello", "switchyard", filtered=True, module="hello",
                    reference=True),
            Entrant("switchyard", "switchyard"),
            Entrant("envoy+header_mutation", "envoy", filtered=True),
            Entrant("nginx+add_header", "nginx", filtered=True),
            Entrant("haproxy+add-header", "haproxy", filtered=True),
        ],
        notes=["`switchyard` (no filter) is measured in the same rounds, so its ratio is the "
               "filter's cost."]),
    Scenario(
        "hello-chain", "Five native filters in one chain, each adding a response header "
        "(Switchyard's `hello` module five times)", "/small", snippets="hello-chain",
        expect_header=("x-hello", "world"),
        entrants=[
            Entrant("switchyard+5hello", "switchyard", filtered=True, module="hello",
                    reference=True),
            Entrant("switchyard", "switchyard"),
        ],
        notes=["The cost per added filter is this scenario's cost less the `hello` "
               "scenario's, over the four filters it adds. Only Switchyard runs it: the "
               "others' equivalents are built-in header edits, not a chain of modules."]),
    Scenario(
        "lua", "A Lua header filter: the same script (configs/scenarios/lua/filter.lua) on "
        "Switchyard's `lua` module and Envoy's Lua filter", "/small", snippets="lua",
        expect_header=("x-lua", "1"),
        entrants=[
            Entrant("switchyard+lua", "switchyard", filtered=True, module="lua", reference=True),
            Entrant("switchyard", "switchyard"),
            Entrant("envoy+lua", "envoy", filtered=True),
        ],
        notes=["nginx (Debian's nginx-light has no Lua) and HAProxy (its Lua API is not "
               "Envoy's) do not run the same script, so they are not in this scenario."]),
    Scenario(
        "ext_authz", "External authorization over gRPC: every request checked by a trivial "
        "allow-all Check server (Switchyard's `ext_authz` module; Envoy's ext_authz filter)",
        "/small", snippets="ext_authz", expect_header=("x-authz", "ok"), side_requests=1,
        fixed_rate=added_latency("ext_authz"),
        entrants=[
            Entrant("switchyard+ext_authz", "switchyard", filtered=True, module="ext_authz",
                    reference=True),
            Entrant("switchyard", "switchyard"),
            Entrant("envoy+ext_authz", "envoy", filtered=True),
            Entrant("envoy", "envoy"),
        ],
        notes=["The Check server is the upstream nginx's h2c listener answering every "
               "/envoy.service.auth.v3.Authorization/Check with one fixed CheckResponse (OK, "
               "with response header x-authz: ok, which shows the check happened) and "
               "grpc-status 0: a server that costs next to nothing, so the figures are the "
               "proxies' own. Each proxy reaches it over HTTP/2 (cleartext), one pooled "
               "connection, multiplexed.",
               "The unfiltered `switchyard` and `envoy` run in the same rounds: the added "
               "latency of ext_authz is each one's latency minus its unfiltered own.",
               ADDED_LATENCY_NOTE]),
    ext_proc("ext_proc", "External processing over gRPC, headers only: request headers SEND, "
             "every other phase SKIP; the processor answers CONTINUE and sets a request header",
             0, ("x-ext-proc", "seen")),
    ext_proc("ext_proc-body16k", "External processing over gRPC with a buffered 16 KiB request "
             "body: POST of 16 KiB, request headers SEND, request_body_mode BUFFERED, the rest "
             "SKIP/NONE", 16384, ("x-ext-proc", "body-16384")),
    Scenario(
        "wasm", "A Proxy-Wasm filter: the same .wasm (the Go SDK's http_headers example when "
        "SY_BENCH_WASM names it, else tests/wasm/c/host_test.c built with clang) on "
        "Switchyard's `wasm` module (Wasmtime) and Envoy's Wasm filter (V8)", "/small",
        snippets="wasm", expect_header=("x-wasm-bench", "1"), rss_loaded=True,
        entrants=[
            Entrant("switchyard+wasm", "switchyard", filtered=True, module="wasm",
                    reference=True),
            Entrant("switchyard", "switchyard"),
            Entrant("switchyard+hello", "switchyard", filtered=True, module="hello",
                    snippets="hello", expect_header=("x-hello", "world")),
            Entrant("envoy+wasm", "envoy", filtered=True),
        ],
        notes=["The plugin reads and rewrites request headers and adds response headers on "
               "every request; both proxies load the same file.",
               "`switchyard+hello` is the native `hello` module (configs/scenarios/hello) in "
               "the same rounds: Wasm against a native filter doing a similar job."]),
    protocol(
        "h2-small", "HTTP/2 (h2c, prior knowledge) from the client, HTTP/1.1 keep-alive to the "
                    "upstream, 32-byte response body", "h2c",
        notes=["Load: `h2load -t1 -c16 -m10 -D <duration>` (16 connections, 10 concurrent "
               "streams each, closed loop); requests/s is h2load's succeeded requests over its "
               "own elapsed time. Each listener speaks only h2c with prior knowledge "
               "(configs/scenarios/h2-small/); the proxies reach the upstream over the same "
               "HTTP/1.1 keep-alive pool as in the other scenarios. `direct` is the upstream "
               "nginx's own h2c listener. No latency runs: sy-openloop speaks HTTP/1.1 only."]),
    protocol(
        "tls-handshakes",
        "Full TLS 1.3 handshakes: one request per new TLS connection (ECDSA P-256 "
        "certificate, X25519, AES-128-GCM; HTTP/1.1 over TLS)", "tls",
        notes=["Load: bursts of `h2load -t1 -c N -n N --h1` over TLS: N clients, each "
               "opening one connection and sending one request on it, all N at once; bursts "
               "repeat until the run's duration is used up. Handshakes/s is the handshakes of all "
               "bursts over the sum of h2load's own elapsed times (the gaps between bursts are "
               "not counted). Every handshake is full: h2load only offers a session to "
               "resume when one of its clients reconnects, and here none does (Switchyard's "
               "`tls_session_reused` counter is checked to stay at 0 in every run, and its "
               "`tls_handshake` counter to grow by exactly the handshakes counted). N stays "
               "under every system's listen backlog (Switchyard and Envoy: 1024), so no "
               "connection waits for a SYN retransmit.",
               "Every system serves the same certificate and key (made by the harness with "
               "`openssl req` in the workdir) with TLS 1.3 only, offering ALPN h2 and "
               "http/1.1; the client asks for http/1.1 (on h2load's side an HTTP/2 session "
               "costs about as much again as the handshake, and the client is the limit "
               "here), pins the cipher (`--tls13-ciphers TLS_AES_128_GCM_SHA256`) and the "
               "group (`--groups X25519`), and each run checks from h2load's output that "
               "TLS 1.3, that cipher and group, and http/1.1 were negotiated. Session tickets "
               "are left at each system's default (issued), as a deployment would have them.",
               "**The client is the limit.** The client's half of a TLS 1.3 handshake with "
               "ECDSA P-256 costs more than the server's (verifying is slower than signing), "
               "and h2load has one core, shared with the upstream. So the proxies' cores are "
               "not fully busy (see `proxy core busy`) and handshakes/s differ little between "
               "them. The figure that compares the proxies is their **CPU per handshake** "
               "(each handshake carries one proxied request); `per proxy core` is its "
               "inverse, the rate one fully busy proxy core would sustain at that cost (an "
               "extrapolation, not a measurement).",
               "`direct` is the upstream nginx terminating TLS itself, on the load core beside "
               "h2load: here it is not a ceiling but what one core does running both ends of "
               "every handshake."]),
]


def by_name():
    return {s.name: s for s in SCENARIOS}

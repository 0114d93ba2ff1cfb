"""The scenarios: what is sent, what must come back, and who runs it.

A scenario is a path on the upstream, an optional folder of config snippets
(bench/configs/scenarios/NAME/, one file per system kind), an optional response header that
every filtered entrant must add, and its entrants. An entrant is one system with or without the
scenario's snippet; the one marked `reference` is what the others' ratios are taken against.

Adding a scenario is a few lines here plus its snippet files. Later ones slot in the same way:
HTTP/2 and TLS need a `client` other than "http1" (h2load in measure.py) and snippets that fill
the listener's protocol/TLS slots; Wasm, ext_proc and ext_authz are a module plus a snippet,
like `hello` below.
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

    def snippet_path(self, kind, ext):
        if not self.filtered or not self.scenario.snippets:
            return None
        path = SNIPPETS / self.scenario.snippets / f"{kind}{ext}"
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
    client: str = "http1"
    rss: bool = False               # measure memory with idle connections in this scenario
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
]


def by_name():
    return {s.name: s for s in SCENARIOS}

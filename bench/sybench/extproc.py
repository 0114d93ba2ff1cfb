"""The ext_proc scenarios' processor: sy-extproc (bench/extproc, built by bench/setup), one
process on the load core beside the upstream, serving both proxies over h2c. It answers every
message with CONTINUE and sets the request header x-ext-proc (`seen` for the headers, then
`body-<bytes>` for a buffered body), which the upstream echoes back to the client."""
from . import procs
from .systems import SY_CACHE

BINARY = SY_CACHE / "bench-bin" / "sy-extproc"


class Processor:
    def __init__(self, workdir, cores):
        self.proc = None
        self.port = None
        if not BINARY.exists():
            self.unavailable = f"the bench's ext_proc processor {BINARY} is not built " \
                               f"(bench/setup builds it; it needs Go)"
            return
        self.unavailable = None
        self.port = procs.free_port()
        self.proc = procs.spawn([str(BINARY), "--listen", f"{procs.LOCALHOST}:{self.port}"],
                                workdir / "sy-extproc.log", cores=cores.load)
        try:
            procs.until(lambda: self.proc.poll() is not None or procs.port_open(self.port), 10,
                        "sy-extproc to listen")
        except TimeoutError:
            pass
        if self.proc.poll() is not None or not procs.port_open(self.port):
            procs.stop(self.proc)
            self.unavailable = f"sy-extproc did not start: see {workdir / 'sy-extproc.log'}"
            self.proc, self.port = None, None

    def stop(self):
        procs.stop(self.proc)

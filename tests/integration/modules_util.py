"""What the module tests share: where the built modules and ABI fixtures are, config pieces that
use them, and readers for GET /modules, /stats and /proc of the proxy."""
import hashlib
import json
import os
import re
import shutil
from pathlib import Path

import harness

BUILD = harness.BINARY.parent
MODULES = BUILD / "modules"  # the examples (modules/CMakeLists.txt)
FIXTURES = BUILD / "tests" / "abi"  # tests/abi/CMakeLists.txt
HISTORY = FIXTURES / "history"
ABI_HEADER = harness.REPO / "abi" / "include" / "switchyard" / "module.h"


def built(path):
    """PATH, after checking that the build made it."""
    path = Path(path)
    assert path.exists(), (f"{path} is missing: build it first (make build; the root "
                           f"CMakeLists.txt adds modules/ and tests/abi/)")
    return path


def module_file(name):
    return built(MODULES / f"libsy_{name}.so")


def fixture_file(mode):
    return built(FIXTURES / f"libsy_fx_{mode}.so")


def swap_demo_file(version):
    return built(MODULES / f"v{version}" / "libsy_swap_demo.so")


def host_abi():
    """(major, minor) of the ABI header this tree builds against."""
    text = ABI_HEADER.read_text()
    major = int(re.search(r"#define SY_ABI_MAJOR (\d+)", text).group(1))
    minor = int(re.search(r"#define SY_ABI_MINOR (\d+)", text).group(1))
    return major, minor


def with_filters(upstream_port, filters, modules=None, **listener_extra):
    """proxy_all() with FILTERS on the listener, the build's modules on module_path, and
    MODULES declared."""
    cfg = harness.proxy_all(upstream_port, listener_extra={"filters": filters, **listener_extra})
    cfg["module_path"] = [str(MODULES)]
    if modules:
        cfg["modules"] = modules
    return cfg


def sha256_file(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def replace_atomically(src, dst):
    """Puts a copy of SRC at DST the way a deploy does: write a temporary file beside it, then
    rename it over DST, so a watcher never sees a half-written module."""
    dst = Path(dst)
    tmp = dst.with_name(f".{dst.name}.tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


# ------------------------------------------------------------------------------------------
# Admin API


def modules_list(sy):
    resp = sy.admin("GET", "/modules")
    assert resp.status == 200, resp
    data = resp.json()
    return data["modules"] if isinstance(data, dict) else data


def module_entry(sy, name):
    for m in modules_list(sy):
        if m.get("name") == name:
            return m
    raise AssertionError(f"module {name} is not in GET /modules: {modules_list(sy)}")


def reload_module(sy, name, path=None):
    body = json.dumps({"path": str(path)}) if path is not None else None
    return sy.admin("POST", f"/modules/{name}/reload", body=body, timeout=30)


def error_text(resp):
    """The "error" of a JSON error reply (asserting it is one)."""
    try:
        data = resp.json()
    except ValueError as e:
        raise AssertionError(f"error reply is not JSON: {resp!r}") from e
    assert isinstance(data, dict) and data.get("error"), f"no 'error' in {data!r}"
    return str(data["error"])


def loaded_generations(entry):
    """How many generations of a /modules entry are still loaded: the current one and every
    previous one not marked as unloaded."""
    previous = entry.get("previous") or []
    return 1 + sum(1 for p in previous if p.get("loaded", True))


def module_stat(stats, module, name, label=None):
    """The value of module.<module>[.<label values>].<name> in /stats, or None."""
    prefix, suffix = f"module.{module}.", f".{name}"
    hits = [k for k in stats if k.startswith(prefix) and k.endswith(suffix)
            and (label is None or f".{label}." in k[len(prefix) - 1:])]
    if label is None:
        exact = prefix + name
        if exact in stats:
            return stats[exact]
    assert len(hits) <= 1, f"several stats match {prefix}*{suffix}: {hits}"
    return stats[hits[0]] if hits else None


# ------------------------------------------------------------------------------------------
# The process, from /proc


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def mapped_images(pid, shas):
    """Executable mappings in PID of files whose sha256 is in SHAS, plus any executable mapping of
    a deleted shared object (a retired private copy still mapped): [(path, sha or None)]."""
    images = []
    cache = {}
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        fields = line.split(None, 5)
        if len(fields) < 6 or "x" not in fields[1]:
            continue
        path = fields[5]
        if path.endswith(" (deleted)"):
            if ".so" in path:
                images.append((path, None))
            continue
        if not path.startswith("/") or path.startswith(("/usr/", "/lib")):
            continue
        if path not in cache:
            try:
                cache[path] = sha256_file(path)
            except OSError:
                cache[path] = None
        if cache[path] in shas:
            images.append((path, cache[path]))
    return images

"""A native module that crashes the process: the crash handler names the module, generation and
callback in the log and in a crash record; the next start does not load that sha256 again, but
the previous good generation (on_module_crash: previous, the default), or fails with a clear
message (refuse); /modules shows the record; another sha256, or deleting the record, loads
normally. The fixture is tests/abi/fx_segfault.c: v1 is good, v2 segfaults on request."""
import re
import shutil
import signal

import pytest

from harness import RawClient, raw_request, request
from modules_util import (fixture_file, module_entry, reload_module, replace_atomically,
                          sha256_file, with_filters)

pytestmark = pytest.mark.crashes_on_purpose

NAME = "fx_segfault"
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def crash_config(upstream_port, path, state_dir, on_crash=None):
    cfg = with_filters(upstream_port, [{"module": NAME}],
                       modules=[{"name": NAME, "path": str(path)}])
    cfg["state_dir"] = str(state_dir)
    if on_crash:
        cfg["on_module_crash"] = on_crash
    return cfg


def served_version(port):
    r = request(port, "GET", "/echo")
    assert r.status == 200, r
    return r.header("x-fx-segfault")


def crash(sy, how):
    """Sends the request that makes v2 crash; returns the proxy's exit status."""
    with RawClient(sy.port("ingress"), timeout=30) as c:
        c.send(raw_request("GET", "/echo", headers=[("x-crash", how)]))
        assert c.read_until_close() == b"", "the crashing request got an answer"
    return sy.wait_exit(30)


def record_fields(path):
    lines = path.read_text().splitlines()
    assert lines[0] == "switchyard crash record 1", lines
    return dict(line.split("=", 1) for line in lines[1:])


def log_since(sy, offset):
    return sy.log_path.read_bytes()[offset:].decode(errors="replace")


def log_size(sy):
    return sy.log_path.stat().st_size if sy.log_path.exists() else 0


def crash_after_a_swap(upstream, switchyard, tmp_path):
    """v1 serves, then v2 is deployed over the same file and swapped in, then crashed: v1 is the
    previous good generation. Returns (sy, deployed file, state dir, v2's generation)."""
    v1, v2 = fixture_file("segfault_v1"), fixture_file("segfault_v2")
    deployed = tmp_path / "deploy" / f"libsy_{NAME}.so"
    deployed.parent.mkdir()
    shutil.copyfile(v1, deployed)
    state = tmp_path / "state"
    sy = switchyard(crash_config(upstream.port, deployed, state))
    port = sy.port("ingress")
    assert served_version(port) == "1"
    replace_atomically(v2, deployed)
    resp = reload_module(sy, NAME)
    assert resp.status == 200, resp
    generation = resp.json()["generation"]
    assert served_version(port) == "2"
    assert crash(sy, "headers") == -signal.SIGSEGV
    return sy, deployed, state, generation


def test_a_crash_is_recorded_and_the_next_start_loads_the_previous_generation(
        upstream, switchyard, tmp_path):
    sha1 = sha256_file(fixture_file("segfault_v1"))
    sha2 = sha256_file(fixture_file("segfault_v2"))
    sy, _, state, generation = crash_after_a_swap(upstream, switchyard, tmp_path)

    record = state / "modules" / NAME / f"{sha2}.crash"
    lines = [x for x in sy.log_path.read_text(errors="replace").splitlines()
             if "crashed the process" in x]
    assert len(lines) == 1, lines
    assert (f"module {NAME} generation {generation} (sha256 {sha2}) crashed the process: "
            f"signal 11 (SIGSEGV) in its on_request_headers callback; crash record: {record}"
            in lines[0]), lines[0]
    fields = record_fields(record)
    assert fields["module"] == NAME and fields["sha256"] == sha2, fields
    assert fields["generation"] == str(generation), fields
    assert fields["callback"] == "on_request_headers", fields
    assert fields["signal"] == "11" and fields["signal_name"] == "SIGSEGV", fields
    assert ISO_UTC.match(fields["time"]), fields

    # The same config again: the file there is v2, which crashed, so v1 stands in for it.
    offset = log_size(sy)
    sy.start()
    port = sy.port("ingress")
    assert served_version(port) == "1"
    text = log_since(sy, offset)
    assert "SKIPPING" in text and sha2 in text and sha1 in text and str(record) in text, text
    entry = module_entry(sy, NAME)
    assert entry["sha256"] == sha1 and entry["stands_in_for"] == sha2, entry
    assert len(entry["crashes"]) == 1, entry
    shown = entry["crashes"][0]
    assert shown["sha256"] == sha2 and shown["generation"] == generation, shown
    assert shown["callback"] == "on_request_headers", shown
    assert shown["signal"] == 11 and shown["signal_name"] == "SIGSEGV", shown
    assert shown["when"] == fields["time"] and shown["record"] == str(record), shown

    # A reload of the same config keeps the stand-in rather than trying the crashed file again.
    assert sy.reload().status == 200
    assert module_entry(sy, NAME)["generation"] == entry["generation"]
    assert served_version(port) == "1"


def test_refuse_fails_the_start_naming_module_sha_callback_and_the_fix(
        upstream, switchyard, tmp_path):
    v1 = fixture_file("segfault_v1")
    sha2 = sha256_file(fixture_file("segfault_v2"))
    sy, deployed, state, generation = crash_after_a_swap(upstream, switchyard, tmp_path)
    record = state / "modules" / NAME / f"{sha2}.crash"

    sy.write_config(crash_config(upstream.port, deployed, state, on_crash="refuse"))
    offset = log_size(sy)
    sy.start(wait_ready=False)
    assert sy.wait_exit(30) == 1
    text = log_since(sy, offset)
    assert f"{sy.config_path}:" in text, text  # the error has the filter's location
    for part in (f"module '{NAME}'", f"sha256 {sha2}", f"generation {generation}",
                 "signal 11 (SIGSEGV)", "in its on_request_headers callback",
                 "on_module_crash is refuse",
                 f"to load this file again, delete its crash record {record}",
                 "a file with another sha256 loads normally"):
        assert part in text, f"{part!r} not in:\n{text}"

    # A crash record for another sha256 does not block a file: v1 loads, even under refuse.
    replace_atomically(v1, deployed)
    sy.start()
    assert served_version(sy.port("ingress")) == "1"
    sy.stop()

    # Deleting the record clears it: v2 loads again.
    replace_atomically(fixture_file("segfault_v2"), deployed)
    record.unlink()
    sy.start()
    assert served_version(sy.port("ingress")) == "2"
    assert module_entry(sy, NAME)["crashes"] == []


def test_a_crash_in_a_posted_task_names_it_and_previous_needs_a_good_generation(
        upstream, switchyard, tmp_path):
    v2 = fixture_file("segfault_v2")
    sha2 = sha256_file(v2)
    state = tmp_path / "state"
    sy = switchyard(crash_config(upstream.port, v2, state))
    assert served_version(sy.port("ingress")) == "2"
    assert crash(sy, "task") == -signal.SIGSEGV
    fields = record_fields(state / "modules" / NAME / f"{sha2}.crash")
    assert fields["callback"] == "stream task" and fields["generation"] == "1", fields
    assert "in its stream task callback" in sy.log_path.read_text(errors="replace")

    # Nothing served before v2, so there is no previous good generation to fall back to.
    offset = log_size(sy)
    sy.start(wait_ready=False)
    assert sy.wait_exit(30) == 1
    text = log_since(sy, offset)
    assert (f"on_module_crash is previous, but no earlier good generation of '{NAME}' is kept "
            f"in {state}") in text, text


def test_a_state_dir_change_waits_for_a_restart(upstream, switchyard, tmp_path):
    v1 = fixture_file("segfault_v1")
    sy = switchyard(crash_config(upstream.port, v1, tmp_path / "state"))
    offset = log_size(sy)
    sy.write_config(crash_config(upstream.port, v1, tmp_path / "elsewhere"))
    assert sy.reload().status == 200
    assert ("config reload: a 'state_dir' change takes effect at the next restart"
            in log_since(sy, offset))
    assert served_version(sy.port("ingress")) == "1"

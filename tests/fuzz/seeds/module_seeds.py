#!/usr/bin/env python3
"""Writes the hand-made seeds of the module targets' corpora in tests/fuzz/corpus: for ext_proc
and ext_authz, stream shapes and the servers' answers (ProcessingResponse and CheckResponse in
protobuf text, encoded with protoc against modules/proto) in the input format of
fuzzhost::run_ops (module_stream.h); for the Wasm module, serialized header maps, PluginConfig
JSON and small .wasm modules (encoded here, byte by byte).

    tests/fuzz/seeds/module_seeds.py
"""
import base64
import os
import struct
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
PROCESSING = ("envoy.service.ext_proc.v3.ProcessingResponse",
              "envoy/service/ext_proc/v3/external_processor.proto")
CHECK = ("envoy.service.auth.v3.CheckResponse", "envoy/service/auth/v3/external_auth.proto")


def encode(text, msg):
    name, proto = msg
    return subprocess.run(
        ["protoc", f"--encode={name}", "-I", os.path.join(ROOT, "modules/proto"), "-I",
         "/usr/include", proto], input=text.encode(), capture_output=True, check=True).stdout


def frame(text, msg):
    data = encode(text, msg)
    return b"\0" + struct.pack(">I", len(data)) + data


NEXT = b"\x00"           # the stream's next phase
TIMER = b"\x06"
OK_END = b"\x03\x00"     # trailers grpc-status 0, the side stream ends


def answer(text, msg=PROCESSING):
    """Operation 1 with the framed message, split in pieces of at most 255 bytes."""
    data, out = frame(text, msg), b""
    while data:
        out += b"\x01" + bytes([min(len(data), 255)]) + data[:255]
        data = data[255:]
    return out


MUT = ('header_mutation { set_headers { header { key: "x-set" raw_value: "v" } } '
       'set_headers { header { key: "x-app" raw_value: "w" } append_action: ADD_IF_ABSENT } '
       'remove_headers: "x-a" }')
EXT_PROC = {
    # config 0: headers both ways, mutated.
    "headers-mutated": bytes([0, 0]) + NEXT + answer(f"request_headers {{ response {{ {MUT} }} }}")
    + NEXT + answer(f"response_headers {{ response {{ {MUT} }} }}") + OK_END,
    # config 1: buffered bodies and trailers, bodies replaced, trailers mutated.
    "buffered-replace": bytes([1, 0x1f]) + NEXT + answer("request_headers {}") + NEXT * 3
    + answer('request_body { response { body_mutation { body: "new" } } }') + NEXT
    + answer(f"request_trailers {{ {MUT} }}") + NEXT
    + answer("response_headers { response { status: CONTINUE_AND_REPLACE "
             'body_mutation { body: "replaced" } } }') + NEXT * 4 + OK_END,
    # config 2: streamed bodies, chunks answered one by one, a mode override.
    "streamed-chunks": bytes([2, 0x35]) + NEXT + answer(
        "request_headers {} mode_override { response_header_mode: SKIP }") + NEXT * 3
    + answer('request_body { response { body_mutation { streamed_response { body: "s" } } } }')
    + answer("request_body { response { body_mutation { clear_body: true } } }") + NEXT * 3
    + OK_END,
    # config 3: BUFFERED_PARTIAL over its 16-byte limit.
    "partial": bytes([3, 0x45]) + NEXT + answer("request_headers {}") + NEXT * 2
    + answer("request_body {}") + NEXT * 2 + answer("response_headers {}") + NEXT * 2
    + answer("response_body {}") + OK_END,
    # config 0: an immediate response with headers and a body.
    "immediate": bytes([0, 1]) + NEXT + answer(
        'immediate_response { status { code: 429 } headers { set_headers { header { '
        'key: "retry-after" raw_value: "1" } } } body: "slow down" details: "d" '
        "grpc_status { status: 8 } }"),
    # config 6: dynamic metadata into the receiving namespaces; an immediate response refused.
    "metadata": bytes([6, 0]) + NEXT + answer(
        'request_headers {} dynamic_metadata { fields { key: "ns" value { struct_value { '
        'fields { key: "k" value { string_value: "v" } } } } } }') + NEXT
    + answer("immediate_response { status { code: 403 } }"),
    # config 5: a timeout override, then the message timeout fires.
    "timeout-override": bytes([5, 1]) + NEXT + answer(
        "override_message_timeout { seconds: 1 }") + TIMER + NEXT,
    # config 4: the processor fails the call; failure_mode_allow lets the stream go on.
    "grpc-error": bytes([4, 0x0c]) + NEXT + b"\x03\x0e" + NEXT * 4,
    # config 0: an HTTP error for the side stream, and a reset.
    "side-503": bytes([0, 0]) + NEXT + b"\x02\x01",
    "side-reset": bytes([7, 0x15]) + NEXT + b"\x05\x00" + NEXT * 4,
    # config 0: garbage where a message should be.
    "bad-message": bytes([0, 0]) + NEXT + b"\x01\x08\x00\x00\x00\x00\x03\xff\xff\xff",
    # config 2: a spurious answer (nothing is pending for the response), then a good one.
    "spurious": bytes([2, 0]) + NEXT + answer("response_body {}") + answer("request_headers {}"),
}




def check(text):
    return answer(text, CHECK)


def http(status_index, text):
    """Operation 8: the answer to the unary callout (status by index, see run_ops)."""
    return b"\x08" + bytes([status_index, len(text)]) + text


OK_HEADERS = ('ok_response { headers { header { key: "x-user" value: "u" } } '
              'headers { header { key: "x-tag" value: "t" } append { value: true } } '
              'headers_to_remove: "x-a" response_headers_to_add { header { key: "x-r" value: "1" } } '
              'query_parameters_to_set { key: "b" value: "d" } query_parameters_to_remove: "z" }')
EXT_AUTHZ = {
    # gRPC mode (configs 0-2): allowed with mutations, then the response passes.
    "grpc-ok": bytes([0, 0]) + NEXT + check("status { code: 0 } " + OK_HEADERS) + OK_END + NEXT,
    "grpc-ok-metadata": bytes([1, 0x11]) + NEXT * 2 + check(
        'status { code: 0 } dynamic_metadata { fields { key: "k" value { number_value: 1 } } } '
        + OK_HEADERS) + OK_END + NEXT * 2,
    "grpc-denied": bytes([0, 0]) + NEXT + check(
        'status { code: 7 } denied_response { status { code: 401 } headers { header { '
        'key: "www-authenticate" value: "Basic" } } body: "no" }') + OK_END,
    "grpc-error-response": bytes([2, 0]) + NEXT + check(
        'status { code: 0 } error_response { status { code: 500 } body: "too long a body" }')
    + OK_END + NEXT,
    "grpc-unavailable": bytes([2, 0]) + NEXT + b"\x03\x0e" + NEXT,
    "grpc-trailers-only": bytes([0, 0]) + NEXT + b"\x02\x06",
    "grpc-connect-failure": bytes([0, 0]) + NEXT + b"\x05\x02",
    "grpc-two-messages": bytes([0, 0]) + NEXT + check("status { code: 0 }")
    + check("status { code: 0 }") + OK_END,
    # HTTP mode (configs 3-5).
    "http-ok": bytes([3, 0]) + NEXT + http(1, b"x-user: u\nx-tag: t\nx-ok: 1\n\n") + b"\x06" + NEXT,
    "http-denied": bytes([3, 0]) + NEXT + http(2, b"www-authenticate: Basic\nx-why: no\n\nbody"),
    "http-body": bytes([4, 0x11]) + NEXT * 3 + http(1, b"x-user: u\n\n") + b"\x06" + NEXT,
    "http-failure": bytes([5, 0]) + NEXT + http(0, b"") + b"\x06" + NEXT,
    "http-redirect": bytes([3, 0]) + NEXT + http(5, b"location: /login\n\n") + b"\x06",
}


# ---- Wasm: header maps, configs and modules ----

def pairs(kv):
    out = struct.pack("<I", len(kv))
    for k, v in kv:
        out += struct.pack("<II", len(k), len(v))
    for k, v in kv:
        out += k + b"\0" + v + b"\0"
    return out


WASM_PAIRS = {
    "empty": b"",
    "empty-nul": b"\0",
    "zero-count": pairs([]),
    "headers": pairs([(b":status", b"200"), (b"content-type", b"text/plain"), (b"x-a", b"")]),
    "count-too-large": struct.pack("<I", 0x20000000) + b"\0" * 12,
    "length-past-end": struct.pack("<III", 1, 100, 1) + b"a\0b\0",
}


def leb(n):
    out = b""
    while True:
        byte, n = n & 0x7F, n >> 7
        out += bytes([byte | (0x80 if n else 0)])
        if not n:
            return out


def vec(items):
    return leb(len(items)) + b"".join(items)


def name(s):
    return leb(len(s)) + s


def section(sid, body):
    return bytes([sid]) + leb(len(body)) + body


I32, I64 = 0x7F, 0x7E


def wasm(imports=(), exports=(b"proxy_abi_version_0_2_1",), memory=True):
    """A module: IMPORTS as (module, field, params, results), one empty function () -> () per
    name in EXPORTS, and an exported memory."""
    types = [b"\x60" + vec([]) + vec([])]
    for _, _, params, results in imports:
        types.append(b"\x60" + vec([bytes([t]) for t in params]) + vec([bytes([t]) for t in results]))
    out = b"\0asm" + struct.pack("<I", 1) + section(1, vec(types))
    if imports:
        out += section(2, vec([name(m) + name(f) + b"\x00" + leb(i + 1)
                               for i, (m, f, _, _) in enumerate(imports)]))
    out += section(3, vec([b"\x00" for _ in exports]))
    if memory:
        out += section(5, vec([b"\x00\x01"]))
    funcs = len(imports)
    ex = [name(e) + b"\x00" + leb(funcs + i) for i, e in enumerate(exports)]
    if memory:
        ex.append(name(b"memory") + b"\x02\x00")
    out += section(7, vec(ex))
    body = vec([]) + b"\x0b"
    out += section(10, vec([leb(len(body)) + body for _ in exports]))
    return out


WASM_LOAD = {
    "minimal": wasm(),
    "abi-0-1-0": wasm(exports=(b"proxy_abi_version_0_1_0", b"proxy_on_memory_allocate")),
    "imports": wasm(imports=[(b"env", b"proxy_log", [I32, I32, I32], [I32]),
                             (b"wasi_snapshot_preview1", b"fd_write", [I32] * 4, [I32]),
                             (b"env", b"unknown_returns_i32", [], [I32])]),
    "import-wrong-type": wasm(imports=[(b"env", b"proxy_log", [I64], [I64])]),
    "import-unknown-i64": wasm(imports=[(b"env", b"nope", [], [I64])]),
    "no-abi-export": wasm(exports=(b"main",)),
    "truncated": wasm()[:20],
    "bad-section": b"\0asm\x01\0\0\0\xff\x01\x00",
}


def wasm_config(code_json, extra=""):
    return ('{"name": "p", "root_id": "r", "vm_config": {"vm_id": "v", "runtime": '
            '"envoy.wasm.runtime.v8", "code": {"local": ' + code_json + '}}' + extra + "}").encode()


B64 = base64.b64encode(wasm()).decode()
WASM_CONFIG = {
    "inline-bytes": wasm_config('{"inline_bytes": "%s"}' % B64),
    "inline-string": wasm_config('{"inline_string": "abc"}',
                                 ', "configuration": "x", "failure_policy": "FAIL_OPEN"'),
    "any": wasm_config('{"inline_bytes": "%s"}' % B64,
                       ', "configuration": {"@type": "type.googleapis.com/google.protobuf.'
                       'StringValue", "value": "{\\"k\\": 1}"}, "callback_deadline_ms": 5, '
                       '"memory_limit_mb": 16, "watch": false'),
    "object-configuration": wasm_config('{"inline_string": "abc"}',
                                        ', "configuration": {"a": [1, 2.5e3, null, true]}'),
    "envoy-wrapper": b'{"config": ' + wasm_config('{"inline_string": "abc"}',
                                                  ', "failure_policy": "FAIL_RELOAD"') + b"}",
    "missing-file": wasm_config('{"filename": "/nonexistent/x.wasm"}'),
    "bad-base64": wasm_config('{"inline_bytes": "a=b"}'),
    "unknown-key": wasm_config('{"inline_string": "abc"}', ', "bogus": 1'),
    "env": wasm_config('{"inline_string": "abc"}').replace(
        b'"vm_id"', b'"environment_variables": {"key_values": {"A": "1"}}, "vm_id"'),
}


def write(corpus, seeds):
    out = os.path.join(ROOT, "tests/fuzz/corpus", corpus)
    os.makedirs(out, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(out, "seed-" + name), "wb") as f:
            f.write(data)
    print(f"{len(seeds)} seeds in {out}")


def main():
    write("ext_proc", EXT_PROC)
    write("ext_authz", EXT_AUTHZ)
    write("wasm_pairs", WASM_PAIRS)
    write("wasm_load", WASM_LOAD)
    write("wasm_config", WASM_CONFIG)


if __name__ == "__main__":
    main()

"""ABI 1.1 skip_body, seen from the wire: a filter with body callbacks that steps out of a
stream's body leaves the message's framing alone (Content-Length stays, no chunked encoding),
and one that stays in still gets a correctly framed body. Driven through the Lua module, whose
handlers step out when they finish without touching the body."""
from harness import RawClient, echo_headers, raw_request, request
from modules_util import module_file, with_filters

HEADERS_ONLY = """
function envoy_on_request(h) h:headers():add("x-seen", "1") end
function envoy_on_response(h) h:headers():add("x-lua", "1") end
"""

BODY_REWRITE = """
function envoy_on_request(h)
  local b = h:body()
  if b then b:setBytes(b:getBytes(0, b:length()) .. "+lua") end
end
function envoy_on_response(h)
  h:headers():add("x-lua", "1")
end
"""


def lua(upstream, switchyard, code):
    module_file("lua")
    return switchyard(with_filters(upstream.port, [
        {"module": "lua", "config": {"default_source_code": {"inline_string": code}}}]))


def test_headers_only_script_keeps_content_length_both_ways(upstream, switchyard):
    sy = lua(upstream, switchyard, HEADERS_ONLY)
    r = request(sy.port("ingress"), "POST", "/echo", body=b"x" * 5000)
    assert r.status == 200, r
    echo = r.json()
    # The upstream got the client's framing, not a re-chunked body.
    assert echo_headers(echo, "content-length") == ["5000"], echo["headers"]
    assert echo_headers(echo, "transfer-encoding") == [], echo["headers"]
    assert echo_headers(echo, "x-seen") == ["1"]
    assert echo["body_length"] == 5000
    # The client gets the upstream's Content-Length back.
    assert r.header("x-lua") == "1"
    assert r.header("content-length") == str(len(r.body)), r
    assert r.header("transfer-encoding") is None, r


def test_body_rewriting_script_still_frames_the_new_body(upstream, switchyard):
    sy = lua(upstream, switchyard, BODY_REWRITE)
    with RawClient(sy.port("ingress")) as c:
        c.send(raw_request("POST", "/echo", [("content-length", "5")], b"hello"))
        r = c.read_response()
        assert r.status == 200, r
        echo = r.json()
        assert echo["body_length"] == len(b"hello+lua"), echo
        assert echo_headers(echo, "content-length") == [str(len(b"hello+lua"))], echo["headers"]
        # The connection stays usable: the framing on both sides was right.
        c.send(raw_request("GET", "/echo"))
        assert c.read_response().status == 200

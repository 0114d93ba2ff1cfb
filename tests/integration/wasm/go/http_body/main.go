// http_body: rewrites a whole body once it has been buffered. The request header
// buffer-operation (append, prepend, replace; anything else means replace) says how, and
// buffer-replace-at: response moves the rewrite from the request body to the response body.
// A request without content-length gets a local 400.
package main

import (
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() {
	proxywasm.SetHttpContext(func(uint32) types.HttpContext { return &stream{} })
}

type stream struct {
	types.DefaultHttpContext
	atResponse bool
	op         string
}

func (s *stream) OnHttpRequestHeaders(int, bool) types.Action {
	if at, err := proxywasm.GetHttpRequestHeader("buffer-replace-at"); err == nil && at == "response" {
		s.atResponse = true
	}
	if _, err := proxywasm.GetHttpRequestHeader("content-length"); err != nil {
		_ = proxywasm.SendHttpResponse(400, nil, []byte("content must be provided"), -1)
		return types.ActionPause
	}
	// The body changes length, so the proxy has to frame it anew.
	_ = proxywasm.RemoveHttpRequestHeader("content-length")
	s.op, _ = proxywasm.GetHttpRequestHeader("buffer-operation")
	if s.op != "append" && s.op != "prepend" {
		s.op = "replace"
	}
	return types.ActionContinue
}

func (s *stream) OnHttpRequestBody(size int, eos bool) types.Action {
	if s.atResponse {
		return types.ActionContinue
	}
	if !eos {
		return types.ActionPause
	}
	body, err := proxywasm.GetHttpRequestBody(0, size)
	if err != nil {
		proxywasm.LogErrorf("failed to get request body: %v", err)
		return types.ActionContinue
	}
	proxywasm.LogInfof("original request body: %s", body)
	rewrite(s.op, proxywasm.AppendHttpRequestBody, proxywasm.PrependHttpRequestBody,
		proxywasm.ReplaceHttpRequestBody)
	return types.ActionContinue
}

func (s *stream) OnHttpResponseHeaders(int, bool) types.Action {
	if s.atResponse {
		_ = proxywasm.RemoveHttpResponseHeader("content-length")
	}
	return types.ActionContinue
}

func (s *stream) OnHttpResponseBody(size int, eos bool) types.Action {
	if !s.atResponse {
		return types.ActionContinue
	}
	if !eos {
		return types.ActionPause
	}
	body, err := proxywasm.GetHttpResponseBody(0, size)
	if err != nil {
		proxywasm.LogErrorf("failed to get response body: %v", err)
		return types.ActionContinue
	}
	proxywasm.LogInfof("original response body: %s", body)
	rewrite(s.op, proxywasm.AppendHttpResponseBody, proxywasm.PrependHttpResponseBody,
		proxywasm.ReplaceHttpResponseBody)
	return types.ActionContinue
}

func rewrite(op string, appendBody, prependBody, replaceBody func([]byte) error) {
	var err error
	switch op {
	case "append":
		err = appendBody([]byte("[this is appended body]"))
	case "prepend":
		err = prependBody([]byte("[this is prepended body]"))
	default:
		err = replaceBody([]byte("[this is replaced body]"))
	}
	if err != nil {
		proxywasm.LogErrorf("failed to %s body: %v", op, err)
	}
}

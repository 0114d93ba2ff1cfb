// panic: not an SDK example but the SDK's way to fail: a request with the header x-panic
// makes the plugin panic in proxy_on_request_headers (the Go runtime then aborts, a trap for
// the host). Every response of a live plugin gets x-plugin: alive, so a test can tell a
// request that went through the plugin from one the host let pass without it.
package main

import (
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() {
	proxywasm.SetHttpContext(func(uint32) types.HttpContext { return &stream{} })
}

type stream struct{ types.DefaultHttpContext }

func (s *stream) OnHttpRequestHeaders(int, bool) types.Action {
	if _, err := proxywasm.GetHttpRequestHeader("x-panic"); err == nil {
		panic("asked to by x-panic")
	}
	return types.ActionContinue
}

func (s *stream) OnHttpResponseHeaders(int, bool) types.Action {
	_ = proxywasm.AddHttpResponseHeader("x-plugin", "alive")
	return types.ActionContinue
}

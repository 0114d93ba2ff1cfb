// multiple_dispatches: holds every response in its headers while it sends ten HTTP callouts
// to the cluster "httpbin" (GET /dispatch/<i>); the last answer adds x-dispatches: <answers
// with a 2xx or 4xx status>/10 to the response and resumes it.
package main

import (
	"fmt"
	"strings"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

const calls = 10

func main() {}

func init() {
	proxywasm.SetHttpContext(func(uint32) types.HttpContext { return &stream{} })
}

type stream struct {
	types.DefaultHttpContext
	pending, answered int
}

func (s *stream) OnHttpResponseHeaders(int, bool) types.Action {
	for i := 0; i < calls; i++ {
		headers := [][2]string{{":method", "GET"}, {":authority", "httpbin"},
			{":path", fmt.Sprintf("/dispatch/%d", i)}, {"accept", "*/*"}}
		if _, err := proxywasm.DispatchHttpCall("httpbin", headers, nil, nil, 5000, s.onAnswer); err != nil {
			proxywasm.LogCriticalf("dispatch httpcall failed: %v", err)
			continue
		}
		s.pending++
	}
	if s.pending == 0 {
		return types.ActionContinue
	}
	return types.ActionPause
}

func (s *stream) onAnswer(int, int, int) {
	s.pending--
	hs, _ := proxywasm.GetHttpCallResponseHeaders()
	for _, h := range hs {
		if h[0] == ":status" && (strings.HasPrefix(h[1], "2") || strings.HasPrefix(h[1], "4")) {
			s.answered++
		}
	}
	proxywasm.LogInfof("pending dispatched requests: %d", s.pending)
	if s.pending > 0 {
		return
	}
	_ = proxywasm.AddHttpResponseHeader("x-dispatches", fmt.Sprintf("%d/%d", s.answered, calls))
	proxywasm.LogInfof("response resumed after processed %d dispatched request", calls)
	_ = proxywasm.ResumeHttpResponse()
}

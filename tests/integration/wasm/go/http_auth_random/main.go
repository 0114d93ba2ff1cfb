// http_auth_random: every request is held while its own headers are sent to the cluster
// "httpbin" (an HTTP callout); the FNV-1a hash of the callout's response body decides: even
// lets the request go on, odd answers a local 403 "access forbidden". A callout that fails
// (no answer, or one that is not a 2xx) is answered with that 403 too. Every response, the
// plugin's own 403 included, gets x-auth-random-response: seen.
package main

import (
	"hash/fnv"
	"strings"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

const cluster = "httpbin"

func main() {}

func init() {
	proxywasm.SetHttpContext(func(uint32) types.HttpContext { return &stream{} })
}

type stream struct{ types.DefaultHttpContext }

func (s *stream) OnHttpRequestHeaders(int, bool) types.Action {
	hs, err := proxywasm.GetHttpRequestHeaders()
	if err != nil {
		proxywasm.LogCriticalf("failed to get request headers: %v", err)
		return types.ActionContinue
	}
	if _, err := proxywasm.DispatchHttpCall(cluster, hs, nil, nil, 5000, onCallResponse); err != nil {
		proxywasm.LogCriticalf("dispatch httpcall failed: %v", err)
		return types.ActionContinue
	}
	proxywasm.LogInfof("http call dispatched to %s", cluster)
	return types.ActionPause
}

func (s *stream) OnHttpResponseHeaders(int, bool) types.Action {
	_ = proxywasm.AddHttpResponseHeader("x-auth-random-response", "seen")
	return types.ActionContinue
}

func onCallResponse(_, bodySize, _ int) {
	hs, _ := proxywasm.GetHttpCallResponseHeaders()
	ok := false
	for _, h := range hs {
		proxywasm.LogInfof("response header from %s: %s: %s", cluster, h[0], h[1])
		if h[0] == ":status" && strings.HasPrefix(h[1], "2") {
			ok = true
		}
	}
	if ok && granted(bodySize) {
		proxywasm.LogInfo("access granted")
		_ = proxywasm.ResumeHttpRequest()
		return
	}
	proxywasm.LogInfo("access forbidden")
	if err := proxywasm.SendHttpResponse(403, [][2]string{{"powered-by", "proxy-wasm-go-sdk!!"}},
		[]byte("access forbidden"), -1); err != nil {
		proxywasm.LogErrorf("failed to send local response: %v", err)
		_ = proxywasm.ResumeHttpRequest()
	}
}

// granted says whether the callout's body hashes even. A body that cannot be read is an
// empty one.
func granted(bodySize int) bool {
	body, err := proxywasm.GetHttpCallResponseBody(0, bodySize)
	if err != nil {
		proxywasm.LogInfof("no callout body: %v", err)
		body = nil
	}
	h := fnv.New32a()
	_, _ = h.Write(body)
	return h.Sum32()%2 == 0
}

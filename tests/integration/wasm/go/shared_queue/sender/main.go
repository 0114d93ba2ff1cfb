// shared_queue sender: resolves the queue "http_request_headers" of the VM "receiver" and
// enqueues every request header as {"key": "<name>","value": "<value>"}.
package main

import (
	"fmt"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() {
	proxywasm.SetHttpContext(func(uint32) types.HttpContext { return &stream{} })
}

type stream struct{ types.DefaultHttpContext }

func (s *stream) OnHttpRequestHeaders(int, bool) types.Action {
	queue, err := proxywasm.ResolveSharedQueue("receiver", "http_request_headers")
	if err != nil {
		proxywasm.LogCriticalf("resolve queue: %v", err)
		_ = proxywasm.AddHttpRequestHeader("x-queue-error", err.Error())
		return types.ActionContinue
	}
	headers, _ := proxywasm.GetHttpRequestHeaders()
	for _, h := range headers {
		msg := fmt.Sprintf("{\"key\": \"%s\",\"value\": \"%s\"}", h[0], h[1])
		if err := proxywasm.EnqueueSharedQueue(queue, []byte(msg)); err != nil {
			proxywasm.LogCriticalf("enqueue: %v", err)
		} else {
			proxywasm.LogInfof("enqueued data: %s", msg)
		}
	}
	return types.ActionContinue
}

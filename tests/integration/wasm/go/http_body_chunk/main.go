// http_body_chunk: reads the request body chunk by chunk as it streams in (only the bytes not
// read before) and answers 403 "pattern found in chunk: N" as soon as a chunk contains
// "pattern"; a body without it goes upstream unchanged.
package main

import (
	"fmt"
	"strings"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() {
	proxywasm.SetHttpContext(func(uint32) types.HttpContext { return &stream{} })
}

type stream struct {
	types.DefaultHttpContext
	read, chunks int
}

func (s *stream) OnHttpRequestBody(size int, eos bool) types.Action {
	if fresh := size - s.read; fresh > 0 {
		s.chunks++
		chunk, err := proxywasm.GetHttpRequestBody(s.read, fresh)
		if err != nil {
			proxywasm.LogCriticalf("failed to get request body: %v", err)
			return types.ActionContinue
		}
		if len(chunk) != fresh {
			proxywasm.LogErrorf("read %d bytes, expected %d", len(chunk), fresh)
		}
		s.read += len(chunk)
		if strings.Contains(string(chunk), "pattern") {
			msg := fmt.Sprintf("pattern found in chunk: %d", s.chunks)
			proxywasm.LogInfo(msg)
			if err := proxywasm.SendHttpResponse(403,
				[][2]string{{"powered-by", "proxy-wasm-go-sdk"}}, []byte(msg), -1); err != nil {
				proxywasm.LogCriticalf("failed to send local response: %v", err)
				_ = proxywasm.ResumeHttpRequest()
			}
			return types.ActionPause
		}
	}
	if !eos {
		return types.ActionPause
	}
	if s.read != size {
		proxywasm.LogErrorf("read %d bytes in all, expected %d", s.read, size)
	}
	proxywasm.LogInfo("pattern not found")
	return types.ActionContinue
}

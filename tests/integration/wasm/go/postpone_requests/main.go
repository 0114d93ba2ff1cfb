// postpone_requests: every request is held in its headers; the next tick (every 100 ms)
// switches to each held stream (proxy_set_effective_context), adds x-resumed-by: tick to its
// request headers and resumes it.
package main

import (
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

const tickMilliseconds = 100

func main() {}

func init() {
	proxywasm.SetPluginContext(func(uint32) types.PluginContext { return &plugin{} })
}

type plugin struct {
	types.DefaultPluginContext
	held []uint32
}

func (p *plugin) OnPluginStart(int) types.OnPluginStartStatus {
	if err := proxywasm.SetTickPeriodMilliSeconds(tickMilliseconds); err != nil {
		proxywasm.LogCriticalf("failed to set tick period: %v", err)
		return types.OnPluginStartStatusFailed
	}
	return types.OnPluginStartStatusOK
}

func (p *plugin) OnTick() {
	held := p.held
	p.held = nil
	for _, id := range held {
		proxywasm.LogInfof("resume request with contextID=%d", id)
		if err := proxywasm.SetEffectiveContext(id); err != nil {
			proxywasm.LogErrorf("set effective context %d: %v", id, err)
			continue
		}
		_ = proxywasm.AddHttpRequestHeader("x-resumed-by", "tick")
		_ = proxywasm.ResumeHttpRequest()
	}
}

func (p *plugin) NewHttpContext(id uint32) types.HttpContext { return &stream{plugin: p, id: id} }

type stream struct {
	types.DefaultHttpContext
	plugin *plugin
	id     uint32
}

func (s *stream) OnHttpRequestHeaders(int, bool) types.Action {
	proxywasm.LogInfof("postpone request with contextID=%d", s.id)
	s.plugin.held = append(s.plugin.held, s.id)
	return types.ActionPause
}

// dispatch_call_on_tick: every 100 ms the root context sends GET /tick to the cluster
// "web_service" and counts the answers it gets back; each HTTP response carries that count
// as x-tick-responses, and the statuses seen so far as x-tick-statuses.
package main

import (
	"sort"
	"strconv"
	"strings"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

const tickMilliseconds = 100

func main() {}

func init() {
	proxywasm.SetPluginContext(func(id uint32) types.PluginContext {
		return &plugin{id: id, statuses: map[string]bool{}}
	})
}

type plugin struct {
	types.DefaultPluginContext
	id       uint32
	answers  int
	statuses map[string]bool
}

func (p *plugin) OnPluginStart(int) types.OnPluginStartStatus {
	if err := proxywasm.SetTickPeriodMilliSeconds(tickMilliseconds); err != nil {
		proxywasm.LogCriticalf("failed to set tick period: %v", err)
		return types.OnPluginStartStatusFailed
	}
	return types.OnPluginStartStatusOK
}

func (p *plugin) OnTick() {
	headers := [][2]string{{":method", "GET"}, {":authority", "web_service"}, {":path", "/tick"},
		{"accept", "*/*"}}
	if _, err := proxywasm.DispatchHttpCall("web_service", headers, nil, nil, 5000, p.onAnswer); err != nil {
		proxywasm.LogCriticalf("dispatch httpcall failed: %v", err)
	}
}

func (p *plugin) onAnswer(int, int, int) {
	p.answers++
	proxywasm.LogInfof("called %d for contextID=%d", p.answers, p.id)
	hs, _ := proxywasm.GetHttpCallResponseHeaders()
	for _, h := range hs {
		if h[0] == ":status" {
			p.statuses[h[1]] = true
		}
	}
}

func (p *plugin) NewHttpContext(uint32) types.HttpContext { return &stream{plugin: p} }

type stream struct {
	types.DefaultHttpContext
	plugin *plugin
}

func (s *stream) OnHttpResponseHeaders(int, bool) types.Action {
	_ = proxywasm.AddHttpResponseHeader("x-tick-responses", strconv.Itoa(s.plugin.answers))
	var seen []string
	for st := range s.plugin.statuses {
		seen = append(seen, st)
	}
	sort.Strings(seen)
	_ = proxywasm.AddHttpResponseHeader("x-tick-statuses", strings.Join(seen, ","))
	return types.ActionContinue
}

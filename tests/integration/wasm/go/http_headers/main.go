// http_headers: the plugin configuration names one response header ({"header": ..., "value":
// ...}, JSON); every response gets it plus x-proxy-wasm-go-sdk-example: http_headers, and
// every request gets `test: best` (replacing any value it had). Headers are logged both ways.
package main

import (
	"encoding/json"
	"strings"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() {
	proxywasm.SetPluginContext(func(uint32) types.PluginContext { return &plugin{} })
}

type plugin struct {
	types.DefaultPluginContext
	name, value string
}

func (p *plugin) OnPluginStart(int) types.OnPluginStartStatus {
	data, err := proxywasm.GetPluginConfiguration()
	if err != nil || len(data) == 0 {
		return types.OnPluginStartStatusOK
	}
	var cfg struct{ Header, Value string }
	if err := json.Unmarshal(data, &cfg); err != nil {
		proxywasm.LogCriticalf("invalid plugin configuration: %v", err)
		return types.OnPluginStartStatusFailed
	}
	p.name, p.value = strings.TrimSpace(cfg.Header), strings.TrimSpace(cfg.Value)
	if p.name == "" || p.value == "" {
		proxywasm.LogCritical(`expected {"header": "<name>", "value": "<value>"}`)
		return types.OnPluginStartStatusFailed
	}
	proxywasm.LogInfof("header from config: %s = %s", p.name, p.value)
	return types.OnPluginStartStatusOK
}

func (p *plugin) NewHttpContext(id uint32) types.HttpContext { return &stream{plugin: p, id: id} }

type stream struct {
	types.DefaultHttpContext
	plugin *plugin
	id     uint32
}

func (s *stream) OnHttpRequestHeaders(int, bool) types.Action {
	if err := proxywasm.ReplaceHttpRequestHeader("test", "best"); err != nil {
		proxywasm.LogCriticalf("failed to set request header test: %v", err)
	}
	hs, _ := proxywasm.GetHttpRequestHeaders()
	for _, h := range hs {
		proxywasm.LogInfof("request header --> %s: %s", h[0], h[1])
	}
	return types.ActionContinue
}

func (s *stream) OnHttpResponseHeaders(int, bool) types.Action {
	if err := proxywasm.AddHttpResponseHeader("x-proxy-wasm-go-sdk-example", "http_headers"); err != nil {
		proxywasm.LogCriticalf("failed to add response header: %v", err)
	}
	if s.plugin.name != "" {
		if err := proxywasm.AddHttpResponseHeader(s.plugin.name, s.plugin.value); err != nil {
			proxywasm.LogCriticalf("failed to add response header: %v", err)
		}
	}
	hs, _ := proxywasm.GetHttpResponseHeaders()
	for _, h := range hs {
		proxywasm.LogInfof("response header <-- %s: %s", h[0], h[1])
	}
	return types.ActionContinue
}

func (s *stream) OnHttpStreamDone() { proxywasm.LogInfof("%d finished", s.id) }

// shared_queue receiver: registers the queue its plugin configuration names (in its own VM,
// vm_id "receiver"), drains it on every proxy_on_queue_ready and appends what it dequeued to
// the VM's shared data, which every worker's copy of the VM sees. As an HTTP filter it
// answers whether an item equal to the value of the request header x-queue-ask was dequeued
// (response header x-queue-seen: 1 or 0) and how many were (x-queue-dequeued).
package main

import (
	"errors"
	"strconv"
	"strings"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

const key = "dequeued"

func main() {}

func init() {
	proxywasm.SetPluginContext(func(uint32) types.PluginContext { return &plugin{} })
}

type plugin struct {
	types.DefaultPluginContext
	queue string
}

func (p *plugin) OnPluginStart(int) types.OnPluginStartStatus {
	cfg, err := proxywasm.GetPluginConfiguration()
	if err != nil || len(cfg) == 0 {
		proxywasm.LogCriticalf("the plugin configuration must name a queue: %v", err)
		return types.OnPluginStartStatusFailed
	}
	p.queue = string(cfg)
	id, err := proxywasm.RegisterSharedQueue(p.queue)
	if err != nil {
		proxywasm.LogCriticalf("register queue %s: %v", p.queue, err)
		return types.OnPluginStartStatusFailed
	}
	proxywasm.LogInfof("queue %q registered as queueID=%d", p.queue, id)
	return types.OnPluginStartStatusOK
}

func (p *plugin) OnQueueReady(id uint32) {
	for {
		data, err := proxywasm.DequeueSharedQueue(id)
		if errors.Is(err, types.ErrorStatusEmpty) {
			return
		}
		if err != nil {
			proxywasm.LogCriticalf("dequeue from %d: %v", id, err)
			return
		}
		proxywasm.LogInfof("dequeued data from %s: %s", p.queue, data)
		record(string(data))
	}
}

func record(item string) {
	for {
		old, cas, err := proxywasm.GetSharedData(key)
		if err != nil && !errors.Is(err, types.ErrorStatusNotFound) {
			proxywasm.LogCriticalf("get shared data: %v", err)
			return
		}
		err = proxywasm.SetSharedData(key, append(old, []byte(item+"\n")...), cas)
		if !errors.Is(err, types.ErrorStatusCasMismatch) {
			return
		}
	}
}

func (p *plugin) NewHttpContext(uint32) types.HttpContext { return &stream{} }

type stream struct {
	types.DefaultHttpContext
	ask string
}

func (s *stream) OnHttpRequestHeaders(int, bool) types.Action {
	s.ask, _ = proxywasm.GetHttpRequestHeader("x-queue-ask")
	return types.ActionContinue
}

func (s *stream) OnHttpResponseHeaders(int, bool) types.Action {
	data, _, _ := proxywasm.GetSharedData(key)
	items := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(data) == 0 {
		items = nil
	}
	seen := "0"
	for _, item := range items {
		if s.ask != "" && item == s.ask {
			seen = "1"
		}
	}
	_ = proxywasm.AddHttpResponseHeader("x-queue-seen", seen)
	_ = proxywasm.AddHttpResponseHeader("x-queue-dequeued", strconv.Itoa(len(items)))
	return types.ActionContinue
}

// network: a TCP filter that lets the bytes through and counts what it sees in metrics:
// network_go.connections (new connections), network_go.downstream_bytes and
// network_go.upstream_bytes (the data callbacks' new bytes), network_go.downstream_closed
// and network_go.completed (proxy_on_done). It also logs the upstream's address.
package main

import (
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

type metrics struct {
	connections, downstream, upstream, closed, completed proxywasm.MetricCounter
}

func init() {
	proxywasm.SetPluginContext(func(uint32) types.PluginContext {
		return &plugin{m: metrics{
			connections: proxywasm.DefineCounterMetric("network_go.connections"),
			downstream:  proxywasm.DefineCounterMetric("network_go.downstream_bytes"),
			upstream:    proxywasm.DefineCounterMetric("network_go.upstream_bytes"),
			closed:      proxywasm.DefineCounterMetric("network_go.downstream_closed"),
			completed:   proxywasm.DefineCounterMetric("network_go.completed"),
		}}
	})
}

type plugin struct {
	types.DefaultPluginContext
	m metrics
}

func (p *plugin) NewTcpContext(uint32) types.TcpContext { return &conn{m: &p.m} }

type conn struct {
	types.DefaultTcpContext
	m *metrics
}

func (c *conn) OnNewConnection() types.Action {
	proxywasm.LogInfo("new connection!")
	c.m.connections.Increment(1)
	return types.ActionContinue
}

func (c *conn) OnDownstreamData(size int, eos bool) types.Action {
	if size > 0 {
		data, err := proxywasm.GetDownstreamData(0, size)
		if err != nil {
			proxywasm.LogCriticalf("failed to get downstream data: %v", err)
		}
		c.m.downstream.Increment(uint64(len(data)))
		proxywasm.LogInfof(">>>>>> downstream data received >>>>>>\n%s", data)
	}
	return types.ActionContinue
}

func (c *conn) OnUpstreamData(size int, eos bool) types.Action {
	if size > 0 {
		if addr, err := proxywasm.GetProperty([]string{"upstream", "address"}); err == nil {
			proxywasm.LogInfof("remote address: %s", addr)
		}
		data, err := proxywasm.GetUpstreamData(0, size)
		if err != nil {
			proxywasm.LogCriticalf("failed to get upstream data: %v", err)
		}
		c.m.upstream.Increment(uint64(len(data)))
		proxywasm.LogInfof("<<<<<< upstream data received <<<<<<\n%s", data)
	}
	return types.ActionContinue
}

func (c *conn) OnDownstreamClose(types.PeerType) {
	proxywasm.LogInfo("downstream connection close!")
	c.m.closed.Increment(1)
}

func (c *conn) OnStreamDone() {
	proxywasm.LogInfo("connection complete!")
	c.m.completed.Increment(1)
}

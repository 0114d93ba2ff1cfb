// metrics: counts requests per value of the request header my-custom-header in a counter
// named custom_header_value_counts_value=<value>_reporter=wasmgosdk, keeps the last value's
// length in the gauge custom_header_last_length and records every length in the histogram
// custom_header_length.
package main

import (
	"fmt"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

var (
	counters  = map[string]proxywasm.MetricCounter{}
	gauge     proxywasm.MetricGauge
	histogram proxywasm.MetricHistogram
	defined   bool
)

func init() {
	proxywasm.SetHttpContext(func(uint32) types.HttpContext { return &stream{} })
}

type stream struct{ types.DefaultHttpContext }

func (s *stream) OnHttpRequestHeaders(int, bool) types.Action {
	if !defined {
		gauge = proxywasm.DefineGaugeMetric("custom_header_last_length")
		histogram = proxywasm.DefineHistogramMetric("custom_header_length")
		defined = true
	}
	value, err := proxywasm.GetHttpRequestHeader("my-custom-header")
	if err != nil {
		return types.ActionContinue
	}
	counter, ok := counters[value]
	if !ok {
		counter = proxywasm.DefineCounterMetric(
			fmt.Sprintf("custom_header_value_counts_value=%s_reporter=wasmgosdk", value))
		counters[value] = counter
	}
	counter.Increment(1)
	gauge.Add(int64(len(value)) - gauge.Value())
	histogram.Record(uint64(len(value)))
	return types.ActionContinue
}

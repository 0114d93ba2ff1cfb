// properties: reads request and plugin attributes through proxy_get_property and returns
// each as a response header x-prop-<path with dots>: the string value, the decimal value of
// an integer attribute, or "missing" when the host has none.
package main

import (
	"encoding/binary"
	"strconv"
	"strings"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() {
	proxywasm.SetHttpContext(func(uint32) types.HttpContext { return &stream{} })
}

var (
	stringProps = [][]string{
		{"request", "path"}, {"request", "url_path"}, {"request", "host"},
		{"request", "method"}, {"request", "scheme"}, {"request", "protocol"},
		{"request", "query"}, {"source", "address"}, {"destination", "address"},
		{"plugin_name"}, {"plugin_root_id"}, {"plugin_vm_id"},
	}
	intProps = [][]string{{"source", "port"}, {"destination", "port"}, {"request", "size"}}
)

type stream struct {
	types.DefaultHttpContext
	found [][2]string
}

func (s *stream) OnHttpRequestHeaders(int, bool) types.Action {
	for _, path := range stringProps {
		s.found = append(s.found, [2]string{name(path), get(path, false)})
	}
	for _, path := range intProps {
		s.found = append(s.found, [2]string{name(path), get(path, true)})
	}
	return types.ActionContinue
}

func (s *stream) OnHttpResponseHeaders(int, bool) types.Action {
	for _, f := range s.found {
		_ = proxywasm.AddHttpResponseHeader(f[0], f[1])
	}
	return types.ActionContinue
}

func name(path []string) string { return "x-prop-" + strings.Join(path, ".") }

func get(path []string, integer bool) string {
	v, err := proxywasm.GetProperty(path)
	if err != nil {
		return "missing"
	}
	if integer {
		if len(v) != 8 {
			return "bad-size-" + strconv.Itoa(len(v))
		}
		return strconv.FormatInt(int64(binary.LittleEndian.Uint64(v)), 10)
	}
	return string(v)
}

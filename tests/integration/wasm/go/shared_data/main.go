// shared_data: every request increments a counter in the VM's shared key-value store with
// compare-and-swap (retrying on CAS_MISMATCH) and sees the value it stored as the response
// header x-shared-value, so concurrent requests on several workers each get a distinct value.
package main

import (
	"encoding/binary"
	"errors"
	"strconv"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

const key = "shared_data_key"

func main() {}

func init() { proxywasm.SetVMContext(&vm{}) }

type vm struct{ types.DefaultVMContext }

func (*vm) OnVMStart(int) types.OnVMStartStatus {
	// Empty means not counted yet. Every worker's VM runs this; only the first store wins,
	// the later ones fail their CAS against it, which is fine.
	if err := proxywasm.SetSharedData(key, []byte{}, 0); err != nil {
		proxywasm.LogWarnf("initial shared data: %v", err)
	}
	return types.OnVMStartStatusOK
}

func (*vm) NewPluginContext(uint32) types.PluginContext { return &plugin{} }

type plugin struct{ types.DefaultPluginContext }

func (*plugin) NewHttpContext(uint32) types.HttpContext { return &stream{} }

type stream struct {
	types.DefaultHttpContext
	value uint64
}

func (s *stream) OnHttpRequestHeaders(int, bool) types.Action {
	for {
		v, err := increment()
		if errors.Is(err, types.ErrorStatusCasMismatch) {
			continue
		}
		if err == nil {
			s.value = v
			proxywasm.LogInfof("shared value: %d", v)
		}
		break
	}
	return types.ActionContinue
}

func (s *stream) OnHttpResponseHeaders(int, bool) types.Action {
	_ = proxywasm.AddHttpResponseHeader("x-shared-value", strconv.FormatUint(s.value, 10))
	return types.ActionContinue
}

func increment() (uint64, error) {
	data, cas, err := proxywasm.GetSharedData(key)
	if err != nil {
		proxywasm.LogWarnf("get shared data: %v", err)
		return 0, err
	}
	next := uint64(1)
	if len(data) == 8 {
		next = binary.LittleEndian.Uint64(data) + 1
	}
	buf := binary.LittleEndian.AppendUint64(nil, next)
	return next, proxywasm.SetSharedData(key, buf, cas)
}

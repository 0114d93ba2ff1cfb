// Project-written Proxy-Wasm filters on the third-party Go SDK, one per example the SDK
// documents. The SDK's own examples are separate Go modules (each with `replace ../..`) that
// the module proxy does not serve, so the tests build these equivalents instead: same
// behaviour, made visible to the client or the upstream where the example only logs.
module switchyard.test/wasm/go

go 1.24

require github.com/proxy-wasm/proxy-wasm-go-sdk v0.0.0-20260105142703-44c7d5847745

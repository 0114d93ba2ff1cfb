//go:build tools

// Package tools pins h2spec, the HTTP/2 conformance tester the integration suite runs
// (tests/integration/test_h2spec.py), with every module it needs, so that each machine builds
// the same h2spec: tools/install-h2spec builds it from this module.
package tools

import _ "github.com/summerwind/h2spec/cmd/h2spec"

package fakeservers

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzDecodeFaults feeds the admin endpoint's decoder and validator (PUT
// /faults) what a user or a scenario file could send: it must not panic
// or hang, and refuses bad input with one line naming the field.
func FuzzDecodeFaults(f *testing.F) {
	for _, seed := range []string{
		`{"kind": "status", "status": 503, "probability": 0.5, "retry_after": "1"}`,
		`[{"kind": "delay", "delay": "250ms", "route": "/v1/items/{sku}", "method": "GET"}, {"kind": "slow_body", "bytes_per_second": 40}]`,
		`[{"kind": "cut_body", "cut_after_bytes": 5}, {"kind": "process_then_fail", "then": "status", "status": 500}, {"kind": "close_after_headers"}]`,
		`{"kind": "status", "status": 418}`,
		`[]`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		faults, err := decodeFaults(bytes.NewReader(data))
		if err == nil {
			for _, service := range Services {
				if err = validateFaults(routesFor(service), faults); err != nil {
					break
				}
			}
		}
		if err == nil {
			return
		}
		require.True(t, errors.Is(err, ErrInvalidFault), err.Error())
		require.NotContains(t, err.Error(), "\n", "an error is one line")
		require.True(t, strings.HasPrefix(err.Error(), "invalid fault: faults"), "the error names the field: %s", err)
	})
}

package driver

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAppendCallIsTheJSONOfTheCall(t *testing.T) {
	req, err := http.NewRequest(http.MethodPost, "https://127.0.0.1:1/v1/charges?q=\"x\"", nil)
	require.NoError(t, err)
	req.Header.Set("X-Request-ID", "a\"b\\c\n\x01é")
	req.Header.Add("Accept", "x")
	req.Header.Add("Accept", "y")
	b := appendCall(nil, 17, "payment", req, []byte("{\"amount\":1}\x00\xff"))
	require.True(t, strings.HasSuffix(string(b), "}\n"), "one line")
	require.Equal(t, 1, strings.Count(string(b), "\n"))

	var got struct {
		Type    string              `json:"type"`
		ID      int64               `json:"id"`
		Service string              `json:"service"`
		Method  string              `json:"method"`
		URL     string              `json:"url"`
		Headers map[string][]string `json:"headers"`
		Body    []byte              `json:"body"`
	}
	require.NoError(t, json.Unmarshal(b, &got), "%s", b)
	assert.Equal(t, "call", got.Type)
	assert.Equal(t, int64(17), got.ID)
	assert.Equal(t, "payment", got.Service)
	assert.Equal(t, "POST", got.Method)
	assert.Equal(t, req.URL.String(), got.URL)
	assert.Equal(t, map[string][]string(req.Header), got.Headers)
	assert.Equal(t, []byte("{\"amount\":1}\x00\xff"), got.Body)

	without := appendCall(nil, 1, "inventory", req, nil)
	assert.NotContains(t, string(without), `"body"`, "no body, no field")
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "quote\" backslash\\ newline\n tab\t nul\x00 del\x7f", "é ✓ \U0001F600", "\xff\xfe bad", "\u2028\u2029"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := appendString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%q encodes to %s, not JSON: %v", s, b, err)
		}
		if want := string([]rune(s)); got != want {
			t.Fatalf("%q came back as %q, want %q", s, got, want)
		}
	})
}

package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestToxiproxyServesItsAPIUntilCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- dispatch(ctx, []string{"toxiproxy", "-listen", "127.0.0.1:0"}, &stdout, &stderr)
	}()
	if !assert.Eventually(t, func() bool { return keyValues(stdout.String())["url"] != "" }, 10*time.Second, 5*time.Millisecond, "url printed") {
		t.Fatalf("stderr: %s", stderr.String())
	}
	url := keyValues(stdout.String())["url"]
	require.True(t, strings.HasPrefix(url, "http://127.0.0.1:"), url)

	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	resp, err := c.Get(url + "/proxies")
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.JSONEq(t, `{}`, string(body), "a fresh Toxiproxy has no proxies")
	tr.CloseIdleConnections()

	cancel()
	select {
	case code := <-done:
		assert.Equal(t, 0, code, "stderr: %s", stderr.String())
	case <-time.After(10 * time.Second):
		t.Fatal("toxiproxy did not stop within 10s of cancel")
	}
	_, err = net.DialTimeout("tcp", strings.TrimPrefix(url, "http://"), time.Second)
	assert.Error(t, err, "%s is closed", url)
}

func TestToxiproxyRejectsBadFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", []string{"-colour"}, "flag provided but not defined: -colour"},
		{"stray argument", []string{"payment"}, `unexpected argument "payment"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr syncBuffer
			assert.Equal(t, 2, dispatch(context.Background(), append([]string{"toxiproxy"}, tt.args...), &stdout, &stderr))
			assert.Empty(t, stdout.String())
			msg := stderr.String()
			assert.True(t, strings.HasPrefix(msg, "poolproof toxiproxy: "), msg)
			assert.Contains(t, msg, tt.want)
		})
	}
}

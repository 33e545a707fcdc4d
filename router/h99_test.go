package router

import (
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPlatformError: a panic in the request path is recovered, answered
// with 503 and an H99 line, and the router keeps serving.
func TestPlatformError(t *testing.T) {
	d := okDyno(t, "ok")
	tr := startRouter(t, oneApp("", d.addr()))
	var panics atomic.Bool
	panics.Store(true)
	tr.hookHandle = func() {
		if panics.Load() {
			panic("boom")
		}
	}
	resp, body := tr.roundTrip(t, "GET /p HTTP/1.1\r\nHost: shop.test\r\n\r\n", "GET")
	assert.Equal(t, 503, resp.StatusCode)
	assert.Contains(t, body, "Application Error")
	line := tr.lines.wait(t, 0)
	assert.Contains(t, line, `at=error code=H99 desc="Platform error" method=GET path="/p"`)
	assert.Equal(t, "503", field(line, "status"))
	panics.Store(false)
	resp, body = tr.roundTrip(t, "GET /q HTTP/1.1\r\nHost: shop.test\r\n\r\n", "GET")
	require.Equal(t, 200, resp.StatusCode, "the router serves on after a panic")
	assert.Equal(t, "ok", body)
}

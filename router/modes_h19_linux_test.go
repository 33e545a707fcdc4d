package router

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestModesH19: a connect that takes longer than timeouts.connect is H19
// with 503 in every mode; the line names the dyno, fills connect= and
// leaves service= empty (dyUnansweredAddr: a backlog-0 listener whose
// queue is full, so SYNs are dropped).
func TestModesH19(t *testing.T) {
	runModes(t, func(t *testing.T, m mode) {
		addr := dyUnansweredAddr(t)
		mr := startModeRouter(t, m, "timeouts: {connect: 200ms}", "", addr)
		start := time.Now()
		resp := mr.do(t, mreq{method: "GET", path: "/h19"})
		took := time.Since(start)
		assert.Equal(t, 503, resp.status)
		assert.Contains(t, string(resp.body), "Application Error")
		assert.True(t, took >= 190*time.Millisecond && took < 2*time.Second, "503 after %v; want about connect: 200ms", took)
		mAssertErrorLine(t, mr, resp, `at=error code=H19 desc="Backend connection timeout"`, 503)
		assert.Equal(t, "web.1", field(resp.line, "dyno"), "line %q", resp.line)
		dyAssertMillis(t, resp.line, "connect", 190*time.Millisecond, 2*time.Second)
		assert.Contains(t, resp.line, " service= status=503 ", "service= is empty: no request was sent")
	}, modesNotParallel{})
}

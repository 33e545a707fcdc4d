package router

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spacerouter/spacerouter/config"
)

func TestAppsShowTrafficAndMaintenance(t *testing.T) {
	d := okDyno(t, "hello")
	tr := startRouter(t, oneApp("", d.addr()))
	expectAnswer(t, tr, 0, 200, "")
	expectAnswer(t, tr, 1, 200, "")
	require.NoError(t, tr.SetMaintenance("shop", ptr(true), "alice"))
	expectAnswer(t, tr, 2, 503, "H80")

	apps := tr.Apps(time.Now())
	require.Len(t, apps, 1)
	a := apps[0]
	assert.Equal(t, "shop", a.Name)
	assert.Equal(t, []string{"shop.test", "*.shop.test"}, a.Domains)
	assert.Equal(t, []config.Dyno{{Name: "web.1", Address: d.addr(), State: config.StateUp}}, a.Dynos)
	assert.True(t, a.Maintenance)
	assert.Equal(t, ptr(true), a.Override)
	assert.Equal(t, "off", a.MTLSMode)
	assert.Equal(t, "none", a.TLS)
	assert.Equal(t, uint64(3), a.Traffic.Requests)
	assert.Equal(t, map[string]uint64{"2xx": 2, "5xx": 1}, a.Traffic.Classes)
	assert.Equal(t, map[string]uint64{"H80": 1}, a.Traffic.Codes)

	_, err := tr.App("nope", time.Now())
	assert.True(t, errors.Is(err, ErrUnknownApp))
}

func TestRecentLinesOfAnApp(t *testing.T) {
	d := okDyno(t, "hello")
	tr := startRouter(t, oneApp("", d.addr()))
	rec, err := tr.RecentLines("shop")
	require.NoError(t, err)
	sub := rec.Subscribe()
	defer sub.Close()

	expectAnswer(t, tr, 0, 200, "")
	written := tr.lines.wait(t, 0)
	select {
	case l := <-sub.Lines():
		assert.Equal(t, written, l+"\n", "the live line is the router line written")
	case <-time.After(5 * time.Second):
		t.Fatal("the request's line did not reach the live reader")
	}
	assert.Len(t, rec.Last(1000), 1)

	// A request for an unknown host is no app's line.
	resp, _ := tr.roundTrip(t, "GET / HTTP/1.1\r\nHost: other.test\r\n\r\n", "GET")
	assert.Equal(t, 404, resp.StatusCode)
	assert.True(t, strings.Contains(tr.lines.wait(t, 1), "other.test"))
	assert.Len(t, rec.Last(1000), 1)

	_, err = tr.RecentLines("nope")
	assert.True(t, errors.Is(err, ErrUnknownApp))
}

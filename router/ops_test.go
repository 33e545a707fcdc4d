package router

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spacerouter/spacerouter/config"
	"github.com/spacerouter/spacerouter/logging"
)

// startRouterWithRegistry is startRouter with metrics on reg and the admin
// listener on 127.0.0.1:0.
func startRouterWithRegistry(t testing.TB, yamlText string, reg *prometheus.Registry) *testRouter {
	t.Helper()
	yamlText = "listen: {http: \"127.0.0.1:0\", admin: \"127.0.0.1:0\"}\n" + yamlText
	cfg, err := config.Parse("test.yaml", []byte(yamlText))
	require.NoError(t, err, "config:\n%s", yamlText)
	sink := newLineSink()
	r, err := New(cfg, Options{Lines: logging.NewRouterLog(sink, "heroku[router]", nil), Registry: reg})
	require.NoError(t, err)
	require.NoError(t, r.Start())
	t.Cleanup(func() {
		ctx, cancel := contextWithTimeout(2 * time.Second)
		defer cancel()
		r.Shutdown(ctx)
	})
	return &testRouter{Router: r, lines: sink, addr: r.HTTPAddr().String()}
}

// metricValue returns the value of the series name{labels} in reg (0 when
// absent); for a histogram, its sample count.
func metricValue(t testing.TB, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if labelsMatch(m, labels) {
				switch {
				case m.Counter != nil:
					return m.Counter.GetValue()
				case m.Gauge != nil:
					return m.Gauge.GetValue()
				case m.Histogram != nil:
					return float64(m.Histogram.GetSampleCount())
				}
			}
		}
	}
	return 0
}

func labelsMatch(m *dto.Metric, want map[string]string) bool {
	n := 0
	for _, lp := range m.GetLabel() {
		if v, ok := want[lp.GetName()]; ok {
			if v != lp.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(want)
}

// TestMetricsCount: /metrics moves by exactly the requests sent, per app,
// status class and H code; an unknown Host counts as _other.
func TestMetricsCount(t *testing.T) {
	reg := prometheus.NewRegistry()
	d := okDyno(t, "ok")
	crashed := "  - name: down\n    domains: [down.test]\n    dynos: [{name: web.1, address: \"127.0.0.1:9\", state: crashed}]\n"
	tr := startRouterWithRegistry(t, oneApp("", d.addr())+crashed, reg)
	for i := 0; i < 3; i++ {
		resp, _ := tr.roundTrip(t, "GET / HTTP/1.1\r\nHost: shop.test\r\n\r\n", "GET")
		require.Equal(t, 200, resp.StatusCode)
	}
	for i := 0; i < 2; i++ {
		resp, _ := tr.roundTrip(t, "GET / HTTP/1.1\r\nHost: down.test\r\n\r\n", "GET")
		require.Equal(t, 503, resp.StatusCode)
	}
	resp, _ := tr.roundTrip(t, "GET / HTTP/1.1\r\nHost: nobody.test\r\n\r\n", "GET")
	require.Equal(t, 404, resp.StatusCode)
	tr.lines.wait(t, 5)
	assert.Equal(t, 3.0, metricValue(t, reg, "spacerouter_requests_total", map[string]string{"app": "shop", "status_class": "2xx", "code": "none"}))
	assert.Equal(t, 2.0, metricValue(t, reg, "spacerouter_requests_total", map[string]string{"app": "down", "status_class": "5xx", "code": "H10"}))
	assert.Equal(t, 2.0, metricValue(t, reg, "spacerouter_router_errors_total", map[string]string{"app": "down", "code": "H10"}))
	assert.Equal(t, 1.0, metricValue(t, reg, "spacerouter_requests_total", map[string]string{"app": "_other", "status_class": "4xx", "code": "none"}))
	assert.Equal(t, 3.0, metricValue(t, reg, "spacerouter_service_duration_seconds", map[string]string{"app": "shop"}))
	assert.Equal(t, 3.0, metricValue(t, reg, "spacerouter_buffer_flushes_total", map[string]string{"reason": "end"}))
	assert.Equal(t, 0.0, metricValue(t, reg, "spacerouter_requests_in_flight", map[string]string{"app": "shop"}))

	// The same numbers over the admin listener, in Prometheus text.
	body := httpGet(t, "http://"+tr.AdminAddr().String()+"/metrics", 200)
	assert.Contains(t, body, `spacerouter_requests_total{app="shop",code="none",status_class="2xx"} 3`)
	assert.Contains(t, body, `spacerouter_config_reloads_total{result="ok"} 0`)
}

func httpGet(t testing.TB, url string, want int) string {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	require.Equal(t, want, resp.StatusCode, "GET %s: %s", url, b)
	return string(b)
}

// TestHealthzDraining: /healthz says 200 while serving and 503 while the
// router drains.
func TestHealthzDraining(t *testing.T) {
	release := make(chan struct{})
	slow := startRawDyno(t, func(c net.Conn) {
		if readRequestHead(bufio.NewReader(c)) == "" {
			return
		}
		<-release
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	})
	tr := startRouterWithRegistry(t, oneApp("", slow.addr()), prometheus.NewRegistry())
	admin := "http://" + tr.AdminAddr().String() + "/healthz"
	httpGet(t, admin, 200)
	c := tr.dial(t)
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: shop.test\r\n\r\n")
	require.Eventually(t, func() bool { return slow.accepted() == 1 }, 2*time.Second, 5*time.Millisecond)
	done := make(chan struct{})
	go func() {
		ctx, cancel := contextWithTimeout(3 * time.Second)
		defer cancel()
		tr.Shutdown(ctx)
		close(done)
	}()
	require.Eventually(t, func() bool {
		resp, err := http.Get(admin)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 503
	}, 2*time.Second, 5*time.Millisecond, "/healthz turns 503 while draining")
	close(release)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err)
	assert.Equal(t, 200, resp.StatusCode, "the request in flight completes")
	<-done
}

// TestReloadDynoState: a dyno state change applied by Reload takes effect
// for the next request (H10 when none is left up), and counts as ok.
func TestReloadDynoState(t *testing.T) {
	reg := prometheus.NewRegistry()
	d := okDyno(t, "ok")
	tr := startRouterWithRegistry(t, oneApp("", d.addr()), reg)
	resp, _ := tr.roundTrip(t, "GET / HTTP/1.1\r\nHost: shop.test\r\n\r\n", "GET")
	require.Equal(t, 200, resp.StatusCode)
	// A line is written once its response went out: wait for it, so the
	// next request's line comes second.
	tr.lines.wait(t, 0)
	text := "listen: {http: \"127.0.0.1:0\", admin: \"127.0.0.1:0\"}\n" +
		strings.Replace(oneApp("", d.addr()), "}\n", ", state: crashed}\n", 1)
	cfg, err := config.Parse("test.yaml", []byte(text))
	require.NoError(t, err)
	require.NoError(t, tr.Reload(cfg))
	resp, _ = tr.roundTrip(t, "GET / HTTP/1.1\r\nHost: shop.test\r\n\r\n", "GET")
	assert.Equal(t, 503, resp.StatusCode)
	assert.Contains(t, tr.lines.wait(t, 1), `code=H10 desc="App crashed"`)
	assert.Equal(t, 1.0, metricValue(t, reg, "spacerouter_config_reloads_total", map[string]string{"result": "ok"}))
	tr.ReloadFailed(fmt.Errorf("test: a bad file"))
	assert.Equal(t, 1.0, metricValue(t, reg, "spacerouter_config_reloads_total", map[string]string{"result": "error"}))
}

// TestReloadUnderLoad: clients send requests without pause while the
// config is reloaded 50 times, adding and removing dynos and apps: no
// request fails and none is lost (counted at the dynos).
func TestReloadUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("a load test")
	}
	var served atomic.Int64
	counting := func() *rawDyno {
		return startRawDyno(t, func(c net.Conn) {
			br := bufio.NewReader(c)
			for readRequestHead(br) != "" {
				served.Add(1)
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			}
		})
	}
	d1, d2 := counting(), counting()
	spaces := []string{
		oneApp("", d1.addr()),
		oneApp("", d1.addr(), d2.addr()) + "  - name: blog\n    domains: [blog.test]\n    dynos: [{name: web.1, address: \"" + d2.addr() + "\"}]\n",
	}
	reg := prometheus.NewRegistry()
	tr := startRouterWithRegistry(t, spaces[0], reg)
	stop := make(chan struct{})
	var sent, failed atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", tr.addr)
			if err != nil {
				failed.Add(1)
				return
			}
			defer c.Close()
			br := bufio.NewReader(c)
			for {
				select {
				case <-stop:
					return
				default:
				}
				sent.Add(1)
				c.SetDeadline(time.Now().Add(5 * time.Second))
				if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: shop.test\r\n\r\n"); err != nil {
					failed.Add(1)
					return
				}
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					failed.Add(1)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
				}
			}
		}()
	}
	const reloads = 50
	for i := 0; i < reloads; i++ {
		cfg, err := config.Parse("test.yaml", []byte("listen: {http: \"127.0.0.1:0\", admin: \"127.0.0.1:0\"}\n"+spaces[(i+1)%2]))
		require.NoError(t, err)
		require.NoError(t, tr.Reload(cfg))
		time.Sleep(5 * time.Millisecond) // let requests run on each config
	}
	close(stop)
	wg.Wait()
	t.Logf("reload under load: %d requests sent, %d failed, %d served by dynos, %d reloads",
		sent.Load(), failed.Load(), served.Load(), reloads)
	assert.Zero(t, failed.Load(), "requests failed during reloads")
	assert.Equal(t, sent.Load(), served.Load(), "every request sent reached a dyno")
	assert.Equal(t, float64(reloads), metricValue(t, reg, "spacerouter_config_reloads_total", map[string]string{"result": "ok"}))
}

package router

// Routing, admission and error-page tests (SPEC.md 4.3–4.5, 6, 9).

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rqTaggedDyno answers every request with 200 and the body tag.
func rqTaggedDyno(t testing.TB, tag string) *rqDyno {
	return rqRecordingDyno(t, func(rqReq) string {
		return fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", len(tag), tag)
	})
}

// TestReqRoute: Host picks the app, exact domains before wildcards, with
// the port dropped, case folded and a trailing dot dropped; a wildcard
// matches one or more labels; an unknown Host gets 404 (SPEC.md 4.3).
func TestReqRoute(t *testing.T) {
	t.Parallel()
	wild := rqTaggedDyno(t, "wild")
	api := rqTaggedDyno(t, "api")
	tr := startRouter(t, fmt.Sprintf(`apps:
  - name: wild
    domains: ["*.example.test"]
    dynos: [{name: web.1, address: "%s"}]
  - name: api
    domains: [api.example.test]
    dynos: [{name: web.1, address: "%s"}]
`, wild.addr(), api.addr()))

	cases := []struct {
		host     string
		wantBody string // "" means 404
		wantHost string // host= in the router line
	}{
		{"api.example.test", "api", "api.example.test"},
		{"www.example.test", "wild", "www.example.test"},
		{"deep.er.example.test", "wild", "deep.er.example.test"},
		{"xapi.example.test", "wild", "xapi.example.test"},
		{"API.Example.TEST", "api", "api.example.test"},
		{"api.example.test:8080", "api", "api.example.test"},
		{"api.example.test.", "api", "api.example.test"},
		{"Api.Example.Test.:80", "api", "api.example.test"},
		{"WWW.EXAMPLE.TEST:81", "wild", "www.example.test"},
		{"example.test", "", "example.test"},
		{"evilexample.test", "", "evilexample.test"},
		{"nope.test", "", "nope.test"},
	}
	for i, tc := range cases {
		path := fmt.Sprintf("/r%d", i)
		raw := "GET " + path + " HTTP/1.1\r\nHost: " + tc.host + "\r\n\r\n"
		resp, body := tr.roundTrip(t, raw, "GET")
		line := rqLineWithPath(t, tr, path)
		if tc.wantBody == "" {
			assert.Equal(t, 404, resp.StatusCode, "Host %q matches no domain; body %q", tc.host, body)
			assert.Contains(t, line, " dyno= connect=0ms service=0ms status=404 ", "Host %q: the 404 line has no dyno and 0ms timings; got %q", tc.host, line)
			assert.True(t, strings.HasPrefix(rqLinePart(line), "at=info method=GET"), "Host %q: a 404 is no router error; line %q", tc.host, line)
		} else {
			assert.Equal(t, 200, resp.StatusCode, "Host %q", tc.host)
			assert.Equal(t, tc.wantBody, body, "Host %q must route to app %q", tc.host, tc.wantBody)
			assert.Equal(t, "web.1", field(line, "dyno"), "line %q", line)
		}
		assert.Equal(t, tc.wantHost, field(line, "host"), "Host %q: host= in the line %q", tc.host, line)
	}
}

// rqCrashedApp is an app whose only dynos are crashed.
func rqCrashedApp(extra string) string {
	var b strings.Builder
	b.WriteString("apps:\n  - name: shop\n    domains: [shop.test]\n")
	for _, ln := range strings.Split(strings.TrimRight(extra, "\n"), "\n") {
		if ln != "" {
			b.WriteString("    " + ln + "\n")
		}
	}
	b.WriteString("    dynos:\n")
	b.WriteString("      - {name: web.1, address: \"127.0.0.1:1\", state: crashed}\n")
	b.WriteString("      - {name: web.2, address: \"127.0.0.1:2\", state: crashed}\n")
	return b.String()
}

// TestReqAdmitNoDynoUp: an app with no dyno up gets 503 with the built-in
// error page and an H10 line with no dyno (SPEC.md 4.4, 6).
func TestReqAdmitNoDynoUp(t *testing.T) {
	t.Parallel()
	tr := startRouter(t, rqCrashedApp(""))
	raw := "GET /x HTTP/1.1\r\nHost: shop.test\r\n\r\n"
	c := rqOpen(t, tr)
	resp, body := c.roundTrip(raw, "GET")
	assert.Equal(t, 503, resp.StatusCode)
	assert.Equal(t, string(builtinErrorPage.body), body, "the H10 response carries the error page")
	assert.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
	line := tr.lines.wait(t, 0)
	assert.True(t, strings.HasPrefix(rqLinePart(line), `at=error code=H10 desc="App crashed" method=GET path="/x" host=shop.test `), "line %q", line)
	rqAssertNoDynoFields(t, line, raw)
	assert.Equal(t, "503", field(line, "status"), "line %q", line)
	assert.Equal(t, fmt.Sprint(len(builtinErrorPage.body)), field(line, "bytes"), "bytes= is the page body; line %q", line)
	// A router-made 503 on a request without body keeps the connection.
	resp, _ = c.roundTrip(raw, "GET")
	assert.Equal(t, 503, resp.StatusCode, "a second request on the same connection")
}

// TestReqAdmitMaintenance: maintenance mode answers 503 with the
// maintenance page and an H80 info line, reaching no dyno, also when no
// dyno is up (SPEC.md 9).
func TestReqAdmitMaintenance(t *testing.T) {
	t.Parallel()
	t.Run("dyno up", func(t *testing.T) {
		t.Parallel()
		d := rqRecordingDyno(t, nil)
		tr := startRouter(t, oneApp("maintenance: true", d.addr()))
		raw := "GET /m HTTP/1.1\r\nHost: shop.test\r\n\r\n"
		resp, body := tr.roundTrip(t, raw, "GET")
		assert.Equal(t, 503, resp.StatusCode)
		assert.Equal(t, string(builtinMaintenancePage.body), body, "the maintenance page")
		line := tr.lines.wait(t, 0)
		assert.True(t, strings.HasPrefix(rqLinePart(line), `at=info code=H80 desc="Maintenance mode" method=GET path="/m"`), "line %q", line)
		rqAssertNoDynoFields(t, line, raw)
		assert.Equal(t, "503", field(line, "status"), "line %q", line)
		assert.Zero(t, d.accepted(), "maintenance mode must not contact a dyno")
	})
	t.Run("no dyno up", func(t *testing.T) {
		t.Parallel()
		tr := startRouter(t, rqCrashedApp("maintenance: true"))
		raw := "GET /m HTTP/1.1\r\nHost: shop.test\r\n\r\n"
		resp, body := tr.roundTrip(t, raw, "GET")
		assert.Equal(t, 503, resp.StatusCode)
		assert.Equal(t, string(builtinMaintenancePage.body), body, "the maintenance page, not the error page")
		line := tr.lines.wait(t, 0)
		assert.True(t, strings.HasPrefix(rqLinePart(line), `at=info code=H80 desc="Maintenance mode" `), "H80 wins over H10; line %q", line)
	})
}

// TestReqAdmitBacklog: with concurrency_per_dyno 1 and one dyno holding a
// request, the next request gets 503 H11 at once with the error page
// (SPEC.md 4.4: no queue).
func TestReqAdmitBacklog(t *testing.T) {
	t.Parallel()
	arrived := make(chan string, 4)
	d, release := rqHoldingDyno(t, "held", arrived)
	tr := startRouter(t, "limits: {concurrency_per_dyno: 1}\n"+oneApp("", d.addr()))
	defer release()

	first := rqOpen(t, tr)
	first.send("GET /first HTTP/1.1\r\nHost: shop.test\r\n\r\n")
	select {
	case <-arrived:
	case <-time.After(rqIOTimeout):
		t.Fatal("the first request did not reach the dyno")
	}
	raw := "GET /second HTTP/1.1\r\nHost: shop.test\r\n\r\n"
	begin := time.Now()
	resp, body := tr.roundTrip(t, raw, "GET")
	took := time.Since(begin)
	assert.Equal(t, 503, resp.StatusCode, "the second concurrent request is over the limit")
	assert.Equal(t, string(builtinErrorPage.body), body, "H11 carries the error page")
	assert.Less(t, took, time.Second, "H11 is answered at once, not queued")
	line := tr.lines.wait(t, 0)
	assert.True(t, strings.HasPrefix(rqLinePart(line), `at=error code=H11 desc="Backlog too deep" method=GET path="/second"`), "line %q", line)
	rqAssertNoDynoFields(t, line, raw)

	release()
	resp, body = first.response("GET", "GET /first")
	assert.Equal(t, 200, resp.StatusCode, "the held request completes")
	assert.Equal(t, "held", body)
	// The slot is free again once the first request has ended.
	assert.Eventually(t, func() bool {
		resp, _ := tr.roundTrip(t, "GET /third HTTP/1.1\r\nHost: shop.test\r\n\r\n", "GET")
		return resp.StatusCode == 200
	}, rqIOTimeout, 5*time.Millisecond, "after the first request ended the app is under its limit")
}

// TestReqAdmitBacklogCountsUpDynos: the limit is concurrency_per_dyno ×
// the up dynos; crashed dynos do not count (SPEC.md 4.4).
func TestReqAdmitBacklogCountsUpDynos(t *testing.T) {
	t.Parallel()
	for _, crashed := range []bool{false, true} {
		t.Run(fmt.Sprintf("second dyno crashed=%v", crashed), func(t *testing.T) {
			t.Parallel()
			arrived := make(chan string, 4)
			d1, rel1 := rqHoldingDyno(t, "web.1", arrived)
			d2, rel2 := rqHoldingDyno(t, "web.2", arrived)
			state := "up"
			if crashed {
				state = "crashed"
			}
			tr := startRouter(t, fmt.Sprintf(`limits: {concurrency_per_dyno: 1}
apps:
  - name: shop
    domains: [shop.test]
    dynos:
      - {name: web.1, address: "%s"}
      - {name: web.2, address: "%s", state: %s}
`, d1.addr(), d2.addr(), state))
			defer rel1()
			defer rel2()
			held := 2
			if crashed {
				held = 1
			}
			for i := range held {
				c := rqOpen(t, tr)
				c.send(fmt.Sprintf("GET /held%d HTTP/1.1\r\nHost: shop.test\r\n\r\n", i))
				select {
				case <-arrived:
				case <-time.After(rqIOTimeout):
					t.Fatalf("held request %d did not reach a dyno; lines %q", i, rqLines(tr))
				}
			}
			resp, _ := tr.roundTrip(t, "GET /over HTTP/1.1\r\nHost: shop.test\r\n\r\n", "GET")
			assert.Equal(t, 503, resp.StatusCode, "with %d requests in flight and %d up dynos × 1 the next is over the limit", held, held)
			line := rqLineWithPath(t, tr, "/over")
			assert.Equal(t, "H11", field(line, "code"), "line %q", line)
		})
	}
}

// TestReqAdmitTwoChoice: with two dynos, a new request goes to the one
// with fewer requests in flight (SPEC.md 4.5).
func TestReqAdmitTwoChoice(t *testing.T) {
	t.Parallel()
	arrived := make(chan string, 64)
	d1, release1 := rqHoldingDyno(t, "web.1", arrived)
	d2, release2 := rqHoldingDyno(t, "web.2", arrived)
	tr := startRouter(t, oneApp("", d1.addr(), d2.addr()))
	defer release1()
	defer release2()

	const n = 4
	counts := map[string]int{}
	for i := range 2 * n {
		c := rqOpen(t, tr)
		c.send(fmt.Sprintf("GET /h%d HTTP/1.1\r\nHost: shop.test\r\n\r\n", i))
		select {
		case tag := <-arrived:
			counts[tag]++
		case <-time.After(rqIOTimeout):
			t.Fatalf("request %d reached no dyno", i)
		}
		diff := counts["web.1"] - counts["web.2"]
		require.LessOrEqual(t, diff*diff, 1,
			"after %d held requests the less loaded dyno must get each new one; in flight %v", i+1, counts)
	}
	assert.Equal(t, map[string]int{"web.1": n, "web.2": n}, counts)

	// web.2 finishes its requests and answers new ones at once; web.1
	// still holds n. Every new request must go to web.2.
	release2()
	require.Eventually(t, func() bool { return tr.lines.count() == n }, rqIOTimeout, time.Millisecond,
		"the %d requests held by web.2 finish", n)
	for i := range 10 {
		raw := fmt.Sprintf("GET /n%d HTTP/1.1\r\nHost: shop.test\r\n\r\n", i)
		resp, body := tr.roundTrip(t, raw, "GET")
		assert.Equal(t, 200, resp.StatusCode)
		assert.Equal(t, "web.2", body, "request %d: web.1 has %d in flight, web.2 at most 1", i, n)
		line := rqLineWithPath(t, tr, fmt.Sprintf("/n%d", i))
		assert.Equal(t, "web.2", field(line, "dyno"), "line %q", line)
	}
	for len(arrived) > 0 {
		<-arrived
	}
}

// TestReqErrorPages: ERROR_PAGE_URL and MAINTENANCE_PAGE_URL are served as
// the body with their Content-Type; an unreachable URL falls back to the
// built-in page (SPEC.md 9).
func TestReqErrorPages(t *testing.T) {
	t.Parallel()
	pageSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/error.json":
			io.WriteString(w, `{"error":"app down"}`)
		case "/maintenance.json":
			io.WriteString(w, `{"error":"maintenance"}`)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(pageSrv.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	deadURL := "http://" + ln.Addr().String() + "/gone.html"
	ln.Close()

	cases := []struct {
		name, vars, extra string
		wantBody, wantCT  string
		wantCode          string
	}{
		{"H10 with ERROR_PAGE_URL", "ERROR_PAGE_URL: " + pageSrv.URL + "/error.json", "",
			`{"error":"app down"}`, "application/json", "H10"},
		{"H10 with an unreachable ERROR_PAGE_URL", "ERROR_PAGE_URL: " + deadURL, "",
			string(builtinErrorPage.body), "text/html; charset=utf-8", "H10"},
		{"H10 with an ERROR_PAGE_URL that answers 404", "ERROR_PAGE_URL: " + pageSrv.URL + "/missing", "",
			string(builtinErrorPage.body), "text/html; charset=utf-8", "H10"},
		{"H80 with MAINTENANCE_PAGE_URL", "MAINTENANCE_PAGE_URL: " + pageSrv.URL + "/maintenance.json", "maintenance: true",
			`{"error":"maintenance"}`, "application/json", "H80"},
		{"H80 with an unreachable MAINTENANCE_PAGE_URL", "MAINTENANCE_PAGE_URL: " + deadURL, "maintenance: true",
			string(builtinMaintenancePage.body), "text/html; charset=utf-8", "H80"},
		{"H80 with both URLs", "ERROR_PAGE_URL: " + pageSrv.URL + "/error.json\n  MAINTENANCE_PAGE_URL: " + pageSrv.URL + "/maintenance.json", "maintenance: true",
			`{"error":"maintenance"}`, "application/json", "H80"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			extra := "config_vars:\n  " + tc.vars
			if tc.extra != "" {
				extra += "\n" + tc.extra
			}
			tr := startRouter(t, rqCrashedApp(extra))
			resp, body := tr.roundTrip(t, "GET / HTTP/1.1\r\nHost: shop.test\r\n\r\n", "GET")
			assert.Equal(t, 503, resp.StatusCode)
			assert.Equal(t, tc.wantBody, body, "the page is the response body itself")
			assert.Equal(t, tc.wantCT, resp.Header.Get("Content-Type"), "the page's Content-Type")
			line := tr.lines.wait(t, 0)
			assert.Equal(t, tc.wantCode, field(line, "code"), "line %q", line)
		})
	}
}

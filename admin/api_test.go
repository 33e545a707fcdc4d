package admin

import (
	"archive/tar"
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zapcore"

	"github.com/spacerouter/spacerouter/admin/view"
)

// TestRoutesByRole: each role against each route of SPEC.md section 13,
// on the app shop: admins and shop's owners may do everything, shop's
// collaborators only read, blog's owners do not see shop at all (404, as
// for an app that does not exist).
func TestRoutesByRole(t *testing.T) {
	p := startIDP(t, nil)
	e := newEnv(t, p, envOptions{})
	callers := []struct {
		name   string
		groups []string
	}{{"admin", []string{"ops"}}, {"owner", []string{"shop-owners"}}, {"collaborator", []string{"shop-devs"}}, {"other app's owner", []string{"blog-owners"}}}
	routes := []struct {
		method, path, body string
		want               [4]int // by caller, in the order above
	}{
		{"GET", "/api/apps", "", [4]int{200, 200, 200, 200}},
		{"GET", "/api/apps/shop", "", [4]int{200, 200, 200, 404}},
		{"PUT", "/api/apps/shop/maintenance", `{"maintenance":true}`, [4]int{200, 200, 403, 404}},
		{"GET", "/api/apps/shop/clients", "", [4]int{200, 200, 200, 404}},
		{"POST", "/api/apps/shop/clients", `{"name":"laptop"}`, [4]int{201, 201, 403, 404}},
		{"GET", "/api/apps/shop/clients/00000000000000a1/download", "", [4]int{200, 200, 403, 404}},
		{"DELETE", "/api/apps/shop/clients/00000000000000a1", "", [4]int{200, 200, 403, 404}},
		{"GET", "/api/tls/connections?app=shop", "", [4]int{200, 200, 200, 404}},
		{"GET", "/api/tls/connections", "", [4]int{200, 200, 200, 200}},
		{"GET", "/api/tls/summary", "", [4]int{200, 200, 200, 200}},
		{"GET", "/api/lines?app=shop", "", [4]int{200, 200, 200, 404}},
		{"GET", "/", "", [4]int{200, 200, 200, 200}},
		// An app nobody has: 404 for everyone, admins too.
		{"GET", "/api/apps/nosuch", "", [4]int{404, 404, 404, 404}},
		{"PUT", "/api/apps/nosuch/maintenance", `{"maintenance":true}`, [4]int{404, 404, 404, 404}},
		{"GET", "/api/lines?app=nosuch", "", [4]int{404, 404, 404, 404}},
		// A certificate of another app, or none, through shop: 404.
		{"DELETE", "/api/apps/shop/clients/00000000000000ff", "", [4]int{404, 404, 403, 404}},
		{"GET", "/api/apps/shop/clients/not-an-id/download", "", [4]int{404, 404, 403, 404}},
	}
	var notFound string
	for i, c := range callers {
		tok := e.token("user-"+c.groups[0], c.groups...)
		for _, r := range routes {
			t.Run(c.name+" "+r.method+" "+r.path, func(t *testing.T) {
				resp, body := e.do(r.method, r.path, tok, r.body)
				assert.Equal(t, r.want[i], resp.StatusCode, "%s %s as %s: %s", r.method, r.path, c.name, body)
				if resp.StatusCode == 404 {
					if notFound == "" {
						notFound = body
					}
					assert.Equal(t, notFound, body, "every 404 says the same")
				}
			})
		}
	}
	assert.Equal(t, "{\"error\":\"not found\"}\n", notFound)
}

// TestListsByRole: lists hold only what the caller may see.
func TestListsByRole(t *testing.T) {
	p := startIDP(t, nil)
	e := newEnv(t, p, envOptions{})
	names := func(tok string) []string {
		resp, body := e.do("GET", "/api/apps", tok, "")
		require.Equal(t, 200, resp.StatusCode, body)
		var apps []view.App
		require.NoError(t, json.Unmarshal([]byte(body), &apps))
		var out []string
		for _, a := range apps {
			out = append(out, a.Name+":"+a.Role)
		}
		return out
	}
	assert.Equal(t, []string{"shop:admin", "blog:admin", "intranet:admin"}, names(e.token("a", "ops")))
	assert.Equal(t, []string{"shop:owner"}, names(e.token("b", "shop-devs", "shop-owners")), "the strongest role of the groups")
	assert.Equal(t, []string{"shop:collaborator", "blog:owner"}, names(e.token("c", "shop-devs", "blog-owners")))

	conns := func(tok, path string) string {
		resp, body := e.do("GET", path, tok, "")
		require.Equal(t, 200, resp.StatusCode, body)
		return body
	}
	var all, own []view.TLSConnection
	require.NoError(t, json.Unmarshal([]byte(conns(e.token("a", "ops"), "/api/tls/connections")), &all))
	assert.Len(t, all, 3, "an admin sees every connection, those of no app too")
	require.NoError(t, json.Unmarshal([]byte(conns(e.token("b", "shop-devs"), "/api/tls/connections")), &own))
	require.Len(t, own, 1)
	assert.Equal(t, "shop", own[0].App)
	var sum view.TLSSummary
	require.NoError(t, json.Unmarshal([]byte(conns(e.token("c", "blog-owners"), "/api/tls/summary")), &sum))
	assert.Equal(t, 1, sum.Connections, "a summary counts only the caller's apps")
	require.Len(t, sum.ByClientCA, 1)
	assert.Equal(t, "CN=space CA", sum.ByClientCA[0].CA)
}

// TestChangesNeedCSRF: a change made with the session cookie needs the
// page's CSRF token (else 403, and nothing changes); each change is one
// audit line; a bearer call needs no token.
func TestChangesNeedCSRF(t *testing.T) {
	p := startIDP(t, nil)
	e := newEnv(t, p, envOptions{})
	b := e.signIn(newUser("olga", "shop-owners"))

	for _, hdr := range [][]string{nil, {"X-CSRF-Token", "wrong"}} {
		resp, body := e.doWith(b.c, "PUT", "/api/apps/shop/maintenance", "", `{"maintenance":true}`, hdr...)
		assert.Equal(t, 403, resp.StatusCode, "PUT with %v: %s", hdr, body)
		assert.Contains(t, body, "CSRF")
		resp, _ = e.doWith(b.c, "POST", "/api/apps/shop/clients", "", `{"name":"x"}`, hdr...)
		assert.Equal(t, 403, resp.StatusCode)
		resp, _ = e.doWith(b.c, "DELETE", "/api/apps/shop/clients/00000000000000a1", "", "", hdr...)
		assert.Equal(t, 403, resp.StatusCode)
	}
	assert.Empty(t, e.backend.maintenanceLog(), "nothing changed without the token")
	assert.Zero(t, e.logs.FilterMessage("admin change").Len())

	resp, body := e.doWith(b.c, "PUT", "/api/apps/shop/maintenance", "", `{"maintenance":true}`, "X-CSRF-Token", b.csrf)
	require.Equal(t, 200, resp.StatusCode, body)
	assert.Contains(t, body, `"maintenance":true`)
	assert.Contains(t, body, `"maintenance_override":true`)
	resp, body = e.do("PUT", "/api/apps/shop/maintenance", e.token("svc", "ops"), `{"maintenance":null}`)
	require.Equal(t, 200, resp.StatusCode, "bearer calls need no CSRF token: %s", body)
	assert.Equal(t, []string{"shop=on by olga@example.com (olga)", "shop=clear by svc@example.com (svc)"}, e.backend.maintenanceLog())

	lines := e.logs.FilterMessage("admin change").All()
	require.Len(t, lines, 2, "one audit line per change")
	f := lines[0].ContextMap()
	assert.Equal(t, map[string]any{"subject": "olga", "user": "olga@example.com", "role": "owner", "app": "shop", "action": "maintenance.on"}, f)
	assert.Equal(t, zapcore.InfoLevel, lines[0].Level)
	assert.Equal(t, "maintenance.clear", lines[1].ContextMap()["action"])
	assert.Equal(t, "admin", lines[1].ContextMap()["role"])
}

// TestBodies: bodies are bounded (413) and checked (400).
func TestBodies(t *testing.T) {
	p := startIDP(t, nil)
	e := newEnv(t, p, envOptions{})
	tok := e.token("a", "ops")
	cases := []struct {
		name, path, body string
		status           int
	}{
		{"oversized", "/api/apps/shop/maintenance", `{"maintenance":true,"pad":"` + strings.Repeat("x", 5000) + `"}`, 413},
		{"oversized issue", "/api/apps/shop/clients", `{"name":"` + strings.Repeat("x", 1<<20) + `"}`, 413},
		{"not JSON", "/api/apps/shop/maintenance", `maintenance=true`, 400},
		{"empty", "/api/apps/shop/maintenance", ``, 400},
		{"unknown key", "/api/apps/shop/maintenance", `{"maintenance":true,"until":"tomorrow"}`, 400},
		{"no maintenance key", "/api/apps/shop/maintenance", `{}`, 400},
		{"not a bool", "/api/apps/shop/maintenance", `{"maintenance":"yes"}`, 400},
		{"name not a string", "/api/apps/shop/clients", `{"name":7}`, 400},
		{"bad name", "/api/apps/shop/clients", `{"name":"my laptop"}`, 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			method := "PUT"
			if strings.HasSuffix(tc.path, "clients") {
				method = "POST"
			}
			resp, body := e.do(method, tc.path, tok, tc.body)
			assert.Equal(t, tc.status, resp.StatusCode, "%s %s %.60s: %s", method, tc.path, tc.body, body)
			assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
		})
	}
	assert.Empty(t, e.backend.maintenanceLog())
	resp, body := e.do("PUT", "/api/apps/shop/maintenance", tok, `{"maintenance":false}`)
	assert.Equal(t, 200, resp.StatusCode, body)
}

// TestPaths: dot segments, empty segments and names that are not app
// names answer 404 with nothing about any app, never a redirect to the
// cleaned path.
func TestPaths(t *testing.T) {
	p := startIDP(t, nil)
	e := newEnv(t, p, envOptions{})
	tok := e.token("a", "ops")
	for _, path := range []string{
		"/api/apps/../apps/shop", "/api/apps/blog/../shop", "/api/apps/%2e%2e/apps/shop", "/api/apps/shop/.",
		"/api//apps/shop", "/api/apps/SHOP", "/api/apps/shop%2fclients", "/api/nosuch", "/api/apps/shop/clients/00000000000000a1/../../..",
		"/static/../api/apps", "/api/apps/sh\\op",
	} {
		t.Run(path, func(t *testing.T) {
			status, body := rawGet(t, e.url, path, tok)
			assert.Equal(t, 404, status, "GET %s: %s", path, body)
			assert.NotContains(t, body, "shop.example.com")
			assert.NotContains(t, body, "Location")
		})
	}
}

// rawGet sends a request line as written (no client cleaning) and returns
// the status and the whole answer.
func rawGet(t *testing.T, base, path, tok string) (int, string) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	require.NoError(t, err)
	defer c.Close()
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: admin\r\nAuthorization: Bearer %s\r\nConnection: close\r\n\r\n", path, tok)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	var dump bytes.Buffer
	resp.Header.Write(&dump)
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, dump.String() + string(b)
}

// TestInternalError: a backend failure answers 500 with no detail; the
// detail goes to the log.
func TestInternalError(t *testing.T) {
	p := startIDP(t, nil)
	e := newEnv(t, p, envOptions{})
	e.backend.mu.Lock()
	e.backend.failApps = true
	e.backend.mu.Unlock()
	resp, body := e.do("GET", "/api/apps/shop", e.token("a", "ops"), "")
	assert.Equal(t, 500, resp.StatusCode)
	assert.Equal(t, "{\"error\":\"internal error\"}\n", body)
	require.Equal(t, 1, e.logs.FilterMessage("admin API: backend failed").Len())
	assert.Contains(t, e.logs.FilterMessage("admin API: backend failed").All()[0].ContextMap()["error"], "secret-state")
}

// TestDownloadAndRevoke: the download is a tar of the backend's files;
// the download and the revocation are audit lines.
func TestDownloadAndRevoke(t *testing.T) {
	p := startIDP(t, nil)
	e := newEnv(t, p, envOptions{})
	tok := e.token("olga", "shop-owners")
	resp, body := e.do("POST", "/api/apps/shop/clients", tok, `{"name":"laptop"}`)
	require.Equal(t, 201, resp.StatusCode, body)
	var issued view.Client
	require.NoError(t, json.Unmarshal([]byte(body), &issued))
	require.NotEmpty(t, issued.ID)

	resp, body = e.do("GET", "/api/apps/shop/clients/"+issued.ID+"/download", tok, "")
	require.Equal(t, 200, resp.StatusCode, body)
	assert.Equal(t, "application/x-tar", resp.Header.Get("Content-Type"))
	assert.Equal(t, `attachment; filename="shop-`+issued.ID+`.tar"`, resp.Header.Get("Content-Disposition"))
	tr := tar.NewReader(strings.NewReader(body))
	got := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		b, _ := io.ReadAll(tr)
		got[h.Name] = fmt.Sprintf("%o %s", h.Mode, b)
	}
	assert.Equal(t, map[string]string{"client.crt": "644 CERT shop " + issued.ID, "client.key": "600 KEY"}, got)

	resp, body = e.do("DELETE", "/api/apps/shop/clients/"+issued.ID, tok, "")
	require.Equal(t, 200, resp.StatusCode, body)
	assert.Contains(t, body, `"status":"revoked"`)
	var actions []string
	for _, l := range e.logs.FilterMessage("admin change").All() {
		actions = append(actions, l.ContextMap()["action"].(string)+" "+l.ContextMap()["cert_id"].(string))
	}
	assert.Equal(t, []string{"client.issue " + issued.ID, "client.download " + issued.ID, "client.revoke " + issued.ID}, actions)
}

// TestLines: the recent lines as JSON, and a live stream that delivers a
// new line and ends when the caller's decision does.
func TestLines(t *testing.T) {
	p := startIDP(t, nil)
	e := newEnv(t, p, envOptions{})
	for i := range 1200 {
		e.backend.hub.Publish("shop", fmt.Appendf(nil, "line %d", i))
	}
	e.backend.hub.Publish("blog", []byte("a blog line"))
	tok := e.token("d", "shop-devs")
	resp, body := e.do("GET", "/api/lines?app=shop", tok, "")
	require.Equal(t, 200, resp.StatusCode, body)
	var got []string
	require.NoError(t, json.Unmarshal([]byte(body), &got))
	require.Len(t, got, 1000, "the last 1,000 lines")
	assert.Equal(t, "line 200", got[0])
	assert.Equal(t, "line 1199", got[999])
	resp, body = e.do("GET", "/api/lines", tok, "")
	assert.Equal(t, 400, resp.StatusCode, body)

	// A token issued 298 s ago under a 5 m authz_ttl (iat in whole
	// seconds): the stream may last one or two more seconds.
	c := p.claims(e.clock.Now().Add(-298*time.Second), "d", "shop-devs")
	old := p.sign(t, c)
	req, err := http.NewRequest("GET", e.url+"/api/lines?app=shop", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+old)
	req.Header.Set("Accept", "text/event-stream")
	sresp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer sresp.Body.Close()
	require.Equal(t, 200, sresp.StatusCode)
	assert.Equal(t, "text/event-stream", sresp.Header.Get("Content-Type"))
	require.Eventually(t, func() bool { return e.backend.hub.Viewers("shop") == 1 }, 5*time.Second, time.Millisecond)
	e.backend.hub.Publish("blog", []byte("not for this stream"))
	e.backend.hub.Publish("shop", []byte("at=info path=/live status=200"))
	rd := bufio.NewReader(sresp.Body)
	var events []string
	start := time.Now()
	for {
		l, err := rd.ReadString('\n')
		if err != nil {
			break
		}
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, ":") && !strings.HasPrefix(l, "retry:") {
			events = append(events, l)
		}
	}
	assert.Equal(t, []string{"data: at=info path=/live status=200", "event: reauth", "data: authorisation to be checked again"}, events)
	assert.Less(t, time.Since(start), 4*time.Second, "the stream ends with the decision")
	require.Eventually(t, func() bool { return e.backend.hub.Viewers("shop") == 0 }, 5*time.Second, time.Millisecond, "the feed is closed")
}

// TestDashboardPage: the page and its files are served from the binary,
// with a content security policy that allows nothing from elsewhere.
func TestDashboardPage(t *testing.T) {
	p := startIDP(t, nil)
	e := newEnv(t, p, envOptions{})
	resp, body := e.do("GET", "/", e.token("a", "ops"), "")
	require.Equal(t, 200, resp.StatusCode, body)
	assert.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
	assert.Contains(t, resp.Header.Get("Content-Security-Policy"), "default-src 'self'")
	assert.Contains(t, body, "a@example.com (a)")
	assert.NotContains(t, body, "http://", "no external asset")
	assert.NotContains(t, body, "https://")
	for _, f := range []string{"/static/app.js", "/static/app.css"} {
		resp, body := e.do("GET", f, "", "")
		assert.Equal(t, 200, resp.StatusCode, f)
		assert.NotContains(t, body, "http://", f)
		assert.NotContains(t, body, "https://", f)
	}
	resp, _ = e.do("GET", "/", "", "", "Accept", "text/html")
	assert.Equal(t, 302, resp.StatusCode, "a browser without a session is sent to sign-in")
	assert.Equal(t, "/auth/login?next=%2F", resp.Header.Get("Location"))
}

// TestWrongMethod: a method an admin route does not take answers 405 with
// the methods it does take in Allow (RFC 9110 section 15.5.6), before any
// sign-in and the same for every app name, so it tells nothing about
// apps; a path that is no route stays 404.
func TestWrongMethod(t *testing.T) {
	p := startIDP(t, nil)
	e := newEnv(t, p, envOptions{})
	tok := e.token("a", "ops")
	cases := []struct{ method, path, allow string }{
		{"POST", "/api/apps", "GET, HEAD"},
		{"DELETE", "/api/apps/shop", "GET, HEAD"},
		{"DELETE", "/api/apps/nosuch", "GET, HEAD"},
		{"POST", "/api/apps/shop/maintenance", "PUT"},
		{"GET", "/api/apps/shop/maintenance", "PUT"},
		{"PUT", "/api/apps/shop/clients", "GET, HEAD, POST"},
		{"POST", "/api/apps/shop/clients/00000000000000a1/download", "GET, HEAD"},
		{"GET", "/api/apps/shop/clients/00000000000000a1", "DELETE"},
		{"POST", "/api/tls/connections", "GET, HEAD"},
		{"DELETE", "/api/tls/summary", "GET, HEAD"},
		{"POST", "/api/lines?app=shop", "GET, HEAD"},
		{"POST", "/", "GET, HEAD"},
		{"POST", "/auth/login", "GET, HEAD"},
		{"GET", "/auth/logout", "POST"},
	}
	for _, tc := range cases {
		for _, token := range []string{"", tok} {
			resp, body := e.do(tc.method, tc.path, token, "")
			assert.Equal(t, 405, resp.StatusCode, "%s %s (token %v): %s", tc.method, tc.path, token != "", body)
			assert.Equal(t, tc.allow, resp.Header.Get("Allow"), "%s %s", tc.method, tc.path)
			assert.NotContains(t, body, "shop.example.com")
		}
	}
	resp, body := e.do("DELETE", "/api/apps/shop", tok, "")
	_, body2 := e.do("DELETE", "/api/apps/nosuch", tok, "")
	assert.Equal(t, body, body2, "the same answer for an app and no app")
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	resp, _ = e.do("POST", "/api/nosuch", tok, "")
	assert.Equal(t, 404, resp.StatusCode)
	resp, _ = e.do("POST", "/healthz", "", "")
	assert.NotEqual(t, 200, resp.StatusCode)
}
